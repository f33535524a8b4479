//! Programmatic API keys: a public key (the Digest username) and a private key (the password),
//! shown once at creation and never stored in plaintext.

use rand::Rng;

use crate::roles::{Grants, OrgRole, ProjectRole};
use crate::{Error, ObjectId, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ObjectId,
    pub org_id: ObjectId,
    pub public_key: String,
    pub description: String,
    pub grants: Grants,
    pub created: time::OffsetDateTime,
}

/// The private key, alive only long enough to be shown once and sealed; zeroized on drop.
pub type PrivateKey = zeroize::Zeroizing<String>;

pub fn generate_public_key() -> String {
    let mut rng = rand::thread_rng();
    (0..8).map(|_| rng.gen_range(b'a'..=b'z') as char).collect()
}

/// A private key in Atlas's format: a random UUID.
pub fn generate_private_key() -> PrivateKey {
    let b: [u8; 16] = rand::random();
    let h = hex::encode(b);
    zeroize::Zeroizing::new(format!(
        "{}-{}-4{}-{:x}{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        (b[8] & 0x3) | 0x8,
        &h[17..20],
        &h[20..32]
    ))
}

pub fn validate_description(desc: &str) -> Result<()> {
    if !(1..=250).contains(&desc.chars().count()) {
        return Err(Error::InvalidAttribute {
            name: "desc".into(),
            reason: "must be between 1 and 250 characters".into(),
        });
    }
    Ok(())
}

pub fn parse_org_roles(roles: &[String]) -> Result<Vec<OrgRole>> {
    if roles.is_empty() {
        return Err(Error::MissingAttribute { name: "roles".into() });
    }
    let mut out = Vec::new();
    for r in roles {
        let role = OrgRole::parse(r).ok_or_else(|| Error::InvalidRole { role: r.clone() })?;
        if !out.contains(&role) {
            out.push(role);
        }
    }
    Ok(out)
}

pub fn parse_project_roles(roles: &[String]) -> Result<Vec<ProjectRole>> {
    if roles.is_empty() {
        return Err(Error::MissingAttribute { name: "roles".into() });
    }
    let mut out = Vec::new();
    for r in roles {
        let role = ProjectRole::parse(r).ok_or_else(|| Error::InvalidRole { role: r.clone() })?;
        if !out.contains(&role) {
            out.push(role);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_formats() {
        let p = generate_public_key();
        assert_eq!(p.len(), 8);
        assert!(p.chars().all(|c| c.is_ascii_lowercase()));
        let k = generate_private_key();
        assert_eq!(k.len(), 36);
        assert_eq!(k.matches('-').count(), 4);
    }

    #[test]
    fn roles_are_checked() {
        assert!(parse_org_roles(&["ORG_OWNER".into()]).is_ok());
        assert_eq!(parse_org_roles(&["GROUP_OWNER".into()]), Err(Error::InvalidRole { role: "GROUP_OWNER".into() }));
        assert!(parse_project_roles(&["GROUP_READ_ONLY".into()]).is_ok());
        assert!(parse_project_roles(&[]).is_err());
    }
}
