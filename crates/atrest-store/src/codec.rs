//! Conversions shared by both backends: ids, dates and JSON are stored as text the same way.

use atrest_core::{time_fmt, Error, ObjectId, Result};

pub(crate) fn id_of(s: &str) -> Result<ObjectId> {
    ObjectId::parse(s).ok_or_else(|| Error::Internal(format!("store: corrupt id {s}")))
}

pub(crate) fn date_of(s: &str) -> Result<time::OffsetDateTime> {
    time_fmt::parse(s).ok_or_else(|| Error::Internal(format!("store: corrupt date {s}")))
}

pub(crate) fn json_of<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Internal(format!("store: corrupt json: {e}")))
}

pub(crate) fn json_text<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::internal)
}

/// Fixed-width UTC with microseconds, so that timestamps compare correctly as text.
pub(crate) fn instant(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}
