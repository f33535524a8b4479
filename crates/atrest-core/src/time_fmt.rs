//! Dates as Atlas writes them: ISO-8601 in UTC with second precision, `2026-08-10T03:03:36Z`.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

pub fn format(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_like_atlas() {
        let t = super::parse("2026-08-10T03:03:36.123Z").unwrap();
        assert_eq!(super::format(t), "2026-08-10T03:03:36Z");
    }
}
