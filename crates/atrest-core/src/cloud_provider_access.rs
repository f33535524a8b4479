//! Cloud provider access roles: atrest's AWS principal, a per-role external id, and the customer's
//! IAM role once authorized by a real AssumeRole.

use crate::{Error, ObjectId, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsIamRole {
    pub role_id: ObjectId,
    pub group_id: ObjectId,
    pub atlas_aws_account_arn: String,
    pub external_id: String,
    pub iam_assumed_role_arn: Option<String>,
    pub created: time::OffsetDateTime,
    pub authorized: Option<time::OffsetDateTime>,
}

impl AwsIamRole {
    pub fn is_authorized(&self) -> bool {
        self.iam_assumed_role_arn.is_some()
    }
}

pub fn new_role(group_id: ObjectId, atlas_arn: &str, external_id: String, now: time::OffsetDateTime) -> AwsIamRole {
    AwsIamRole {
        role_id: ObjectId::new(),
        group_id,
        atlas_aws_account_arn: atlas_arn.to_owned(),
        external_id,
        iam_assumed_role_arn: None,
        created: now,
        authorized: None,
    }
}

/// Only AWS is offered; Azure and GCP are valid Atlas names that atrest does not serve yet.
pub fn check_provider(provider: &str) -> Result<()> {
    match provider {
        "AWS" => Ok(()),
        "AZURE" | "GCP" => Err(Error::ProviderUnsupported { provider: provider.into() }),
        other => Err(Error::InvalidEnumValue { field: "providerName".into(), value: other.into() }),
    }
}

/// `arn:aws:iam::123456789012:role/path/name` (any partition), length 20..2048 as the spec says.
pub fn parse_role_arn(arn: &str) -> Result<RoleArn> {
    let bad = || Error::InvalidAttribute {
        name: "iamAssumedRoleArn".into(),
        reason: "must be an IAM role ARN such as arn:aws:iam::123456789012:role/atlas-kms".into(),
    };
    if !(20..=2048).contains(&arn.len()) {
        return Err(bad());
    }
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6
        || parts[0] != "arn"
        || !parts[1].starts_with("aws")
        || parts[2] != "iam"
        || !parts[3].is_empty()
    {
        return Err(bad());
    }
    let account = parts[4];
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let name = parts[5].strip_prefix("role/").filter(|n| !n.is_empty()).ok_or_else(bad)?;
    Ok(RoleArn { account: account.into(), name: name.rsplit('/').next().unwrap_or(name).into() })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    pub account: String,
    pub name: String,
}

/// Authorizing records the role once AssumeRole has succeeded.
pub fn authorize(mut role: AwsIamRole, arn: &str, now: time::OffsetDateTime) -> AwsIamRole {
    role.iam_assumed_role_arn = Some(arn.to_owned());
    role.authorized = Some(now);
    role
}

/// A role still used by encryption at rest cannot be deauthorized.
pub fn check_deauthorize(role: &AwsIamRole, used_by_encryption_at_rest: bool) -> Result<()> {
    if used_by_encryption_at_rest {
        return Err(Error::RoleInUse { role_id: role.role_id.to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        let a = parse_role_arn("arn:aws:iam::123456789012:role/team/atlas-kms").unwrap();
        assert_eq!(a.account, "123456789012");
        assert_eq!(a.name, "atlas-kms");
        for bad in [
            "arn:aws:iam::123456789012:user/bob",
            "arn:aws:iam::12345678901:role/x",
            "arn:aws:sts::123456789012:role/x",
            "arn:aws:iam::123456789012:role/",
            "not an arn at all, really",
        ] {
            assert!(parse_role_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn in_use_roles_stay() {
        let r = new_role(ObjectId::new(), "arn:aws:iam::000000000000:root", "x".into(), crate::time_fmt::now());
        assert!(check_deauthorize(&r, true).is_err());
        assert!(check_deauthorize(&r, false).is_ok());
    }
}
