//! A project's Encryption at Rest with AWS KMS: every rule of `PATCH .../encryptionAtRest`, and
//! what a key check's outcome means for `valid`.

use serde::{Deserialize, Serialize};

use crate::cloud_provider_access::{self, AwsIamRole};
use crate::{regions, Error, ObjectId, Result};

/// The stored AWS KMS configuration. The legacy secret access key is stored apart, sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsKms {
    pub enabled: bool,
    pub customer_master_key_id: Option<String>,
    pub region: Option<String>,
    pub role_id: Option<ObjectId>,
    pub require_private_networking: bool,
    pub access_key_id: Option<String>,
    /// Whether the key passed its last check.
    pub valid: bool,
    /// The key's ARN as KMS reported it at the last successful check.
    pub key_arn: Option<String>,
    /// Once a project has used a role, access keys are refused for good.
    pub role_based_ever: bool,
}

/// The fields a PATCH may carry in `awsKms`; `None` means "not sent".
#[derive(Debug, Clone, Default)]
pub struct AwsKmsPatch {
    pub enabled: Option<bool>,
    pub customer_master_key_id: Option<String>,
    pub region: Option<String>,
    pub role_id: Option<String>,
    pub require_private_networking: Option<bool>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// What the rules need to know beyond the configuration itself.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub project_active: bool,
    pub clusters_using_customer_keys: u64,
    pub private_endpoints: u64,
    /// The role named by the resulting configuration, if any.
    pub role: Option<AwsIamRole>,
    /// Names of the project's clusters that span more than one region.
    pub multi_region_clusters: Vec<String>,
}

/// How atrest reaches the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCredentials {
    Role { role_arn: String, external_id: String },
    AccessKeys { access_key_id: String },
}

/// The check to run before the new configuration may be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTarget {
    pub credentials: KeyCredentials,
    pub key_id: String,
    pub aws_region: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Save `next` after the key passes a check against `target`.
    Validate { next: AwsKms, target: KeyTarget },
    /// Save `next` as is (disabling, or a change that needs no key access).
    Save { next: AwsKms },
}

/// Why a key check failed, as learnt from STS and KMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    CannotAssumeRole(String),
    InvalidCredentials(String),
    KeyNotFound { bare_id: bool, detail: String },
    KeyDisabled,
    KeyPendingDeletion,
    KeyUnavailable(String),
    NoPermission(String),
    WrongKeyType(String),
    RegionNotSupported(String),
    PrivateEndpointMissing(String),
}

/// A check's outcome: the key works, it does not (for a reason that is the customer's to fix),
/// or KMS could not be reached (which says nothing about the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    Valid { key_arn: String },
    Invalid(KeyProblem),
    Unreachable(String),
}

/// `mrk-...`, as a bare id or at the end of a key ARN.
pub fn is_multi_region_key(key: &str) -> bool {
    key.rsplit(['/', ':']).next().is_some_and(|id| id.starts_with("mrk-"))
}

pub fn is_bare_key_id(key: &str) -> bool {
    !key.starts_with("arn:") && !key.starts_with("alias/")
}

/// The account a key ARN names, if it is an ARN.
pub fn key_account(key: &str) -> Option<&str> {
    let parts: Vec<&str> = key.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn" && parts[2] == "kms").then(|| parts[4])
}

fn missing(name: &str) -> Error {
    Error::MissingAttribute { name: format!("awsKms.{name}") }
}

/// Every rule of a PATCH to `awsKms`, deciding what to save and what to check first.
pub fn plan(current: &AwsKms, patch: AwsKmsPatch, facts: &Facts) -> Result<Plan> {
    let uses_keys = patch.access_key_id.is_some() || patch.secret_access_key.is_some();
    if patch.role_id.is_some() && uses_keys {
        return Err(Error::InvalidAttribute {
            name: "awsKms.roleId".into(),
            reason: "give either roleId or accessKeyID and secretAccessKey, not both".into(),
        });
    }
    if uses_keys && (current.role_based_ever || current.role_id.is_some()) {
        return Err(Error::RoleBasedAccessIrreversible);
    }
    if let Some(region) = &patch.region {
        if !regions::is_atlas_region(region) {
            return Err(Error::InvalidEnumValue { field: "awsKms.region".into(), value: region.clone() });
        }
    }
    if let Some(key) = &patch.customer_master_key_id {
        if !(1..=2048).contains(&key.len()) {
            return Err(Error::InvalidAttribute {
                name: "awsKms.customerMasterKeyID".into(),
                reason: "must be 1 to 2048 characters".into(),
            });
        }
    }

    let enabling = patch.enabled.unwrap_or(current.enabled);
    if !enabling {
        return plan_disable(current, &patch, facts);
    }

    let key_changes =
        patch.customer_master_key_id.as_ref().is_some_and(|k| current.customer_master_key_id.as_ref() != Some(k));
    if current.enabled && !current.valid && key_changes {
        return Err(Error::SettingsInvalid);
    }
    if let Some(require) = patch.require_private_networking {
        if require && !facts.project_active {
            return Err(Error::ProjectNotActive);
        }
        // Each region's KMS traffic goes to that region's endpoint: a multi-region cluster needs a
        // multi-region key (`mrk-`) replicated into its regions.
        let key = patch.customer_master_key_id.as_deref().or(current.customer_master_key_id.as_deref()).unwrap_or("");
        if require && !is_multi_region_key(key) {
            if let Some(name) = facts.multi_region_clusters.first() {
                return Err(Error::MultiRegionClusterNeedsMultiRegionKey { cluster: name.clone() });
            }
        }
        if !require && current.require_private_networking && facts.private_endpoints > 0 {
            return Err(Error::PrivateEndpointsExist { count: facts.private_endpoints });
        }
    }

    // First enable: every field of the provider is required; afterwards, only what changes.
    let base = if current.enabled {
        current.clone()
    } else {
        AwsKms { role_based_ever: current.role_based_ever, ..Default::default() }
    };
    let mut next = AwsKms { enabled: true, ..base };
    if let Some(k) = patch.customer_master_key_id {
        next.customer_master_key_id = Some(k);
    }
    if let Some(r) = patch.region {
        next.region = Some(r);
    }
    if let Some(p) = patch.require_private_networking {
        next.require_private_networking = p;
    }
    if let Some(role) = &patch.role_id {
        let id = ObjectId::parse(role).ok_or_else(|| Error::InvalidAttribute {
            name: "awsKms.roleId".into(),
            reason: "must be 24 hexadecimal characters".into(),
        })?;
        next.role_id = Some(id);
        next.access_key_id = None;
    }
    if uses_keys {
        let id = patch.access_key_id.clone().ok_or_else(|| missing("accessKeyID"))?;
        if patch.secret_access_key.is_none() {
            return Err(missing("secretAccessKey"));
        }
        if !(16..=128).contains(&id.len()) {
            return Err(Error::InvalidAttribute {
                name: "awsKms.accessKeyID".into(),
                reason: "must be 16 to 128 characters".into(),
            });
        }
        next.access_key_id = Some(id);
        next.role_id = None;
    }
    let key_id = next.customer_master_key_id.clone().ok_or_else(|| missing("customerMasterKeyID"))?;
    let region = next.region.clone().ok_or_else(|| missing("region"))?;
    let aws_region = regions::to_aws(&region).ok_or(Error::KmsRegionNotSupported { region: region.clone() })?;
    let credentials = match (&next.role_id, &next.access_key_id) {
        (Some(role_id), _) => {
            let role = facts
                .role
                .as_ref()
                .filter(|r| r.role_id == *role_id)
                .ok_or_else(|| Error::RoleNotFound { role_id: role_id.to_string() })?;
            let arn = role
                .iam_assumed_role_arn
                .clone()
                .ok_or_else(|| Error::RoleNotAuthorized { role_id: role_id.to_string() })?;
            cloud_provider_access::parse_role_arn(&arn)?;
            next.role_based_ever = true;
            KeyCredentials::Role { role_arn: arn, external_id: role.external_id.clone() }
        }
        (None, Some(id)) => KeyCredentials::AccessKeys { access_key_id: id.clone() },
        (None, None) => return Err(missing("roleId")),
    };
    if let Some(acct) = key_account(&key_id) {
        if acct.len() != 12 || !acct.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidAttribute {
                name: "awsKms.customerMasterKeyID".into(),
                reason: "the key ARN names no valid account".into(),
            });
        }
    }
    // Requiring private networking (or not) changes where calls go, not the key: a valid key
    // needs no new check, and endpoints can only be created after this is set.
    let only_routing_changed = current.enabled
        && current.valid
        && AwsKms { require_private_networking: current.require_private_networking, ..next.clone() } == *current;
    if only_routing_changed {
        return Ok(Plan::Save { next });
    }
    next.valid = true;
    Ok(Plan::Validate { next, target: KeyTarget { credentials, key_id, aws_region } })
}

fn plan_disable(current: &AwsKms, patch: &AwsKmsPatch, facts: &Facts) -> Result<Plan> {
    if !current.enabled {
        // Already off: only `enabled: false` (and nothing to change) is meaningful.
        return Ok(Plan::Save { next: current.clone() });
    }
    if facts.private_endpoints > 0 {
        return Err(Error::PrivateEndpointsExist { count: facts.private_endpoints });
    }
    if facts.clusters_using_customer_keys > 0 {
        return Err(Error::ClustersUseCustomerKeys { count: facts.clusters_using_customer_keys });
    }
    if !current.valid {
        return Err(Error::SettingsInvalid);
    }
    let _ = patch;
    Ok(Plan::Save {
        next: AwsKms { role_based_ever: current.role_based_ever || current.role_id.is_some(), ..Default::default() },
    })
}

/// What a failed check means for the client that asked: the error for PATCH.
pub fn problem_error(problem: &KeyProblem, key_id: &str) -> Error {
    match problem {
        KeyProblem::CannotAssumeRole(d) => Error::CannotAssumeRole { detail: d.clone() },
        KeyProblem::InvalidCredentials(d) => Error::InvalidAwsCredentials { detail: d.clone() },
        KeyProblem::KeyNotFound { bare_id: true, detail } => Error::InvalidAttribute {
            name: "awsKms.customerMasterKeyID".into(),
            reason: format!(
                "key {key_id} was not found in the role's account ({detail}); a key in another account must be given as its full key ARN"
            ),
        },
        KeyProblem::KeyNotFound { bare_id: false, detail } => {
            Error::KmsKeyNotFound { key_id: key_id.into(), detail: detail.clone() }
        }
        KeyProblem::KeyDisabled => Error::KmsKeyNotEnabled { key_id: key_id.into() },
        KeyProblem::KeyPendingDeletion => Error::KmsKeyPendingDeletion { key_id: key_id.into() },
        KeyProblem::KeyUnavailable(d) => Error::KmsKeyNotEnabled { key_id: format!("{key_id} ({d})") },
        KeyProblem::NoPermission(d) => Error::NoPermissionToEncryptDecrypt { detail: d.clone() },
        KeyProblem::WrongKeyType(d) => Error::InvalidAttribute { name: "awsKms.customerMasterKeyID".into(), reason: d.clone() },
        KeyProblem::RegionNotSupported(r) => Error::KmsRegionNotSupported { region: r.clone() },
        KeyProblem::PrivateEndpointMissing(r) => Error::PrivateEndpointUnavailable { region: r.clone() },
    }
}

/// The event type a periodic check records, and the new `valid`, given the last one.
pub fn after_check(was_valid: bool, outcome: &CheckOutcome) -> (bool, Option<&'static str>) {
    match outcome {
        CheckOutcome::Valid { .. } if was_valid => (true, None),
        CheckOutcome::Valid { .. } => (true, Some("ENCRYPTION_AT_REST_CONFIG_IS_VALID")),
        CheckOutcome::Invalid(_) if was_valid => (false, Some("ENCRYPTION_AT_REST_CONFIG_NO_LONGER_VALID")),
        CheckOutcome::Invalid(_) => (false, None),
        // A network failure says nothing about the key: `valid` stays as it was.
        CheckOutcome::Unreachable(_) => (was_valid, Some("ENCRYPTION_AT_REST_KMS_NETWORK_ACCESS_DENIED")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(authorized: bool) -> AwsIamRole {
        let mut r = cloud_provider_access::new_role(
            ObjectId::new(),
            "arn:aws:iam::000000000001:root",
            "ext".into(),
            crate::time_fmt::now(),
        );
        if authorized {
            r = cloud_provider_access::authorize(r, "arn:aws:iam::123456789012:role/k", crate::time_fmt::now());
        }
        r
    }

    fn enable_patch(role: &AwsIamRole) -> AwsKmsPatch {
        AwsKmsPatch {
            enabled: Some(true),
            customer_master_key_id: Some("1234abcd-12ab-34cd-56ef-1234567890ab".into()),
            region: Some("US_EAST_1".into()),
            role_id: Some(role.role_id.to_string()),
            ..Default::default()
        }
    }

    fn facts(role: &AwsIamRole) -> Facts {
        Facts { project_active: true, role: Some(role.clone()), ..Default::default() }
    }

    #[test]
    fn first_enable_needs_every_field_and_an_authorized_role() {
        let r = role(true);
        let plan = plan(&AwsKms::default(), enable_patch(&r), &facts(&r)).unwrap();
        let Plan::Validate { next, target } = plan else { panic!() };
        assert!(next.enabled && next.valid && next.role_based_ever);
        assert_eq!(target.aws_region, "us-east-1");
        let mut p = enable_patch(&r);
        p.region = None;
        assert_eq!(
            super::plan(&AwsKms::default(), p, &facts(&r)),
            Err(Error::MissingAttribute { name: "awsKms.region".into() })
        );
        let unauth = role(false);
        assert!(matches!(
            super::plan(&AwsKms::default(), enable_patch(&unauth), &facts(&unauth)),
            Err(Error::RoleNotAuthorized { .. })
        ));
    }

    #[test]
    fn roles_are_irreversible_and_invalid_keys_frozen() {
        let r = role(true);
        let Plan::Validate { next, .. } = plan(&AwsKms::default(), enable_patch(&r), &facts(&r)).unwrap() else {
            panic!()
        };
        let keys = AwsKmsPatch {
            access_key_id: Some("AKIAAAAAAAAAAAAAAAAA".into()),
            secret_access_key: Some("s".into()),
            ..Default::default()
        };
        assert_eq!(plan(&next, keys, &facts(&r)), Err(Error::RoleBasedAccessIrreversible));
        let invalid = AwsKms { valid: false, ..next.clone() };
        let change = AwsKmsPatch { customer_master_key_id: Some("other".into()), ..Default::default() };
        assert_eq!(plan(&invalid, change, &facts(&r)), Err(Error::SettingsInvalid));
        let off = AwsKmsPatch { enabled: Some(false), ..Default::default() };
        assert_eq!(plan(&invalid, off.clone(), &facts(&r)), Err(Error::SettingsInvalid));
        let busy = Facts { clusters_using_customer_keys: 2, ..facts(&r) };
        assert_eq!(plan(&next, off.clone(), &busy), Err(Error::ClustersUseCustomerKeys { count: 2 }));
        let pe = Facts { private_endpoints: 1, ..facts(&r) };
        assert_eq!(plan(&next, off.clone(), &pe), Err(Error::PrivateEndpointsExist { count: 1 }));
        let Plan::Save { next: disabled } = plan(&next, off, &facts(&r)).unwrap() else { panic!() };
        assert!(!disabled.enabled && disabled.role_based_ever);
    }

    #[test]
    fn private_networking_needs_a_multi_region_key_for_multi_region_clusters() {
        let r = role(true);
        let Plan::Validate { next, .. } = plan(&AwsKms::default(), enable_patch(&r), &facts(&r)).unwrap() else {
            panic!()
        };
        let f = Facts { multi_region_clusters: vec!["global".into()], ..facts(&r) };
        let require = AwsKmsPatch { require_private_networking: Some(true), ..Default::default() };
        assert_eq!(
            plan(&next, require.clone(), &f),
            Err(Error::MultiRegionClusterNeedsMultiRegionKey { cluster: "global".into() })
        );
        assert!(plan(&next, require.clone(), &facts(&r)).is_ok());
        let mrk =
            AwsKms { customer_master_key_id: Some("arn:aws:kms:us-east-1:123456789012:key/mrk-0123".into()), ..next };
        assert!(plan(&mrk, require, &f).is_ok());
        assert!(is_multi_region_key("mrk-1234abcd") && !is_multi_region_key("1234abcd"));
    }

    #[test]
    fn validity_flips_only_on_key_problems() {
        let valid = CheckOutcome::Valid { key_arn: "a".into() };
        let denied = CheckOutcome::Invalid(KeyProblem::KeyDisabled);
        let net = CheckOutcome::Unreachable("timeout".into());
        assert_eq!(after_check(true, &valid), (true, None));
        assert_eq!(after_check(true, &denied).0, false);
        assert_eq!(after_check(true, &net).0, true);
        assert_eq!(after_check(false, &net).0, false);
        assert_eq!(after_check(false, &valid), (true, Some("ENCRYPTION_AT_REST_CONFIG_IS_VALID")));
    }
}
