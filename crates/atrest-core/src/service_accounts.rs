//! OAuth service accounts as Atlas has them: a client id (`mdb_sa_id_` + 24 hex), organization
//! roles, project roles, and at most two secrets (`mdb_sa_sk_...`) that expire. A secret is shown
//! once; atrest keeps its SHA-256 and a masked form.

use rand::Rng;
use time::{Duration, OffsetDateTime};

use crate::roles::Grants;
use crate::{Error, ObjectId, Result};

pub const CLIENT_ID_PREFIX: &str = "mdb_sa_id_";
pub const SECRET_PREFIX: &str = "mdb_sa_sk_";
/// Atlas keeps two secrets per account, so one can be rotated while the other still works.
pub const MAX_SECRETS: usize = 2;
/// Secret lifetimes Atlas allows: from 8 hours to a year.
pub const SECRET_HOURS: std::ops::RangeInclusive<i64> = 8..=8766;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub id: ObjectId,
    pub org_id: ObjectId,
    pub name: String,
    pub description: String,
    pub grants: Grants,
    pub created: OffsetDateTime,
    pub secrets: Vec<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub id: ObjectId,
    /// Lowercase hex SHA-256 of the secret.
    pub hash: String,
    pub masked: String,
    pub created: OffsetDateTime,
    pub expires: OffsetDateTime,
    pub last_used: Option<OffsetDateTime>,
}

impl ServiceAccount {
    pub fn client_id(&self) -> String {
        format!("{CLIENT_ID_PREFIX}{}", self.id)
    }
}

/// The account id inside a client id, if it is one.
pub fn parse_client_id(client_id: &str) -> Option<ObjectId> {
    client_id.strip_prefix(CLIENT_ID_PREFIX).and_then(ObjectId::parse)
}

/// A client id from a path: `mdb_sa_id_` and 24 hex digits, or `INVALID_PATH_PARAMETER`.
pub fn path_client_id(client_id: &str) -> Result<ObjectId> {
    parse_client_id(client_id)
        .ok_or_else(|| Error::InvalidPathParameter { name: "clientId".into(), value: client_id.to_owned() })
}

/// Atlas's pattern for names and descriptions: letters, digits, space and `-_.,'`.
fn check_text(field: &str, value: &str, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n == 0 || n > max {
        return Err(Error::InvalidAttribute {
            name: field.into(),
            reason: format!("must be between 1 and {max} characters"),
        });
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_alphanumeric() || " -_.,'".contains(*c))) {
        return Err(Error::InvalidAttribute {
            name: field.into(),
            reason: format!("may hold letters, digits, spaces and -_.,' only, not {bad:?}"),
        });
    }
    Ok(())
}

pub fn check_name(name: &str) -> Result<()> {
    check_text("name", name, 64)
}

pub fn check_description(description: &str) -> Result<()> {
    check_text("description", description, 250)
}

pub fn check_secret_hours(hours: i64) -> Result<Duration> {
    if !SECRET_HOURS.contains(&hours) {
        return Err(Error::InvalidAttribute {
            name: "secretExpiresAfterHours".into(),
            reason: format!("must be between {} and {} hours", SECRET_HOURS.start(), SECRET_HOURS.end()),
        });
    }
    Ok(Duration::hours(hours))
}

/// A new secret: 192 random bits in Atlas's format. The caller shows it once and stores `hash`.
pub fn new_secret(
    now: OffsetDateTime,
    lifetime: Duration,
    hash: impl Fn(&str) -> String,
) -> (Secret, zeroize::Zeroizing<String>) {
    let mut rng = rand::thread_rng();
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let body: String = (0..40).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    let plain = zeroize::Zeroizing::new(format!("{SECRET_PREFIX}{body}"));
    let masked = format!("{SECRET_PREFIX}****************************{}", &body[body.len() - 4..]);
    let secret = Secret {
        id: ObjectId::new(),
        hash: hash(&plain),
        masked,
        created: now,
        expires: now + lifetime,
        last_used: None,
    };
    (secret, plain)
}

/// Adds a secret, refusing a third.
pub fn add_secret(account: &mut ServiceAccount, secret: Secret) -> Result<()> {
    if account.secrets.len() >= MAX_SECRETS {
        return Err(Error::ServiceAccountSecretLimit { max: MAX_SECRETS });
    }
    account.secrets.push(secret);
    Ok(())
}

/// The live secret whose hash is `hash`, compared in constant time by `same`.
pub fn matching_secret(account: &ServiceAccount, now: OffsetDateTime, same: impl Fn(&str) -> bool) -> Option<&Secret> {
    // Every secret is compared, so timing does not tell which one matched.
    let mut found = None;
    for s in &account.secrets {
        if same(&s.hash) && now < s.expires && found.is_none() {
            found = Some(s);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(s: &str) -> String {
        format!("h:{s}")
    }

    fn account() -> ServiceAccount {
        ServiceAccount {
            id: ObjectId::new(),
            org_id: ObjectId::new(),
            name: "ci".into(),
            description: "CI pipeline".into(),
            grants: Grants::default(),
            created: OffsetDateTime::now_utc(),
            secrets: vec![],
        }
    }

    #[test]
    fn client_ids_and_secrets_have_atlas_formats() {
        let a = account();
        let id = a.client_id();
        assert!(id.starts_with("mdb_sa_id_") && id.len() == 34);
        assert_eq!(parse_client_id(&id), Some(a.id));
        assert_eq!(parse_client_id("mdb_sa_id_xyz"), None);
        assert!(path_client_id("abc").is_err());
        let (s, plain) = new_secret(OffsetDateTime::now_utc(), Duration::hours(8), sha);
        assert!(plain.starts_with("mdb_sa_sk_") && plain.len() == 50);
        assert!(s.masked.ends_with(&plain[plain.len() - 4..]) && !s.masked.contains(&plain[10..40]));
        assert_eq!(s.hash, sha(&plain));
    }

    #[test]
    fn fields_are_checked() {
        assert!(check_name("ci pipeline, v2").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name("<script>").is_err());
        assert!(check_description(&"d".repeat(250)).is_ok());
        assert!(check_secret_hours(7).is_err());
        assert!(check_secret_hours(8).is_ok());
        assert!(check_secret_hours(8766).is_ok());
        assert!(check_secret_hours(8767).is_err());
    }

    #[test]
    fn at_most_two_secrets_and_only_live_ones_match() {
        let now = OffsetDateTime::now_utc();
        let mut a = account();
        let (s1, p1) = new_secret(now, Duration::hours(8), sha);
        let (s2, _) = new_secret(now - Duration::hours(9), Duration::hours(8), sha);
        add_secret(&mut a, s1.clone()).unwrap();
        add_secret(&mut a, s2.clone()).unwrap();
        let (s3, _) = new_secret(now, Duration::hours(8), sha);
        assert_eq!(add_secret(&mut a, s3), Err(Error::ServiceAccountSecretLimit { max: 2 }));
        assert_eq!(matching_secret(&a, now, |h| h == sha(&p1)).map(|s| s.id), Some(s1.id));
        assert!(matching_secret(&a, now, |h| h == s2.hash).is_none(), "an expired secret does not match");
        assert!(matching_secret(&a, now, |_| false).is_none());
    }
}
