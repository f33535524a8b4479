//! Bearer credentials issued by atrest itself: console sessions (a cookie) and OAuth access
//! tokens. The token is random and shown to its holder only; the store keeps its SHA-256.

use time::{Duration, OffsetDateTime};

use crate::ObjectId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A web console sign-in with an API key; the subject is the API key.
    Console,
    /// An OAuth client-credentials access token; the subject is the service account.
    OAuth,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Console => "console",
            SessionKind::OAuth => "oauth",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "console" => Some(SessionKind::Console),
            "oauth" => Some(SessionKind::OAuth),
            _ => None,
        }
    }

    /// How long a credential of this kind lives: Atlas's access tokens last one hour; a console
    /// sign-in lasts a working day.
    pub fn lifetime(self) -> Duration {
        match self {
            SessionKind::Console => Duration::hours(8),
            SessionKind::OAuth => Duration::seconds(3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Lowercase hex SHA-256 of the token.
    pub token_hash: String,
    pub kind: SessionKind,
    pub subject: ObjectId,
    pub created: OffsetDateTime,
    pub expires: OffsetDateTime,
}

impl Session {
    pub fn new(token_hash: String, kind: SessionKind, subject: ObjectId, now: OffsetDateTime) -> Self {
        Session { token_hash, kind, subject, created: now, expires: now + kind.lifetime() }
    }

    pub fn is_live(&self, kind: SessionKind, now: OffsetDateTime) -> bool {
        self.kind == kind && now < self.expires
    }

    pub fn seconds_left(&self, now: OffsetDateTime) -> i64 {
        (self.expires - now).whole_seconds().max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_live_only_for_its_kind_and_lifetime() {
        let now = OffsetDateTime::now_utc();
        let s = Session::new("h".into(), SessionKind::OAuth, ObjectId::new(), now);
        assert!(s.is_live(SessionKind::OAuth, now));
        assert!(!s.is_live(SessionKind::Console, now));
        assert!(s.is_live(SessionKind::OAuth, now + Duration::seconds(3599)));
        assert!(!s.is_live(SessionKind::OAuth, now + Duration::seconds(3600)));
        assert_eq!(s.seconds_left(now), 3600);
        assert_eq!(SessionKind::parse(SessionKind::Console.as_str()), Some(SessionKind::Console));
    }
}
