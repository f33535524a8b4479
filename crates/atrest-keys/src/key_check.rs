//! Proving a customer's key works: assume the role (or use the access keys), DescribeKey, then an
//! Encrypt/Decrypt round trip whose encryption context names the project. The outcome separates
//! what the customer must fix from what the network did.

use std::collections::HashMap;

use atrest_core::encryption_at_rest::{is_bare_key_id, CheckOutcome, KeyCredentials, KeyProblem, KeyTarget};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::aws::{Aws, AwsError, StaticKeys};

pub struct CheckRequest<'a> {
    pub target: &'a KeyTarget,
    /// The legacy secret access key, when the target uses access keys.
    pub secret_access_key: Option<Zeroizing<String>>,
    pub group_id: String,
    /// A private endpoint to send KMS calls to instead of the public one.
    pub kms_endpoint: Option<String>,
}

fn transient_or(e: AwsError, problem: impl FnOnce(String) -> KeyProblem) -> CheckOutcome {
    match e {
        AwsError::Throttled(m) | AwsError::Unavailable(m) | AwsError::Other(m) => CheckOutcome::Unreachable(m),
        other => CheckOutcome::Invalid(problem(other.to_string())),
    }
}

fn key_error(e: AwsError, key_id: &str) -> CheckOutcome {
    match e {
        AwsError::AccessDenied(m) => CheckOutcome::Invalid(KeyProblem::NoPermission(m)),
        AwsError::NotFound(detail) => {
            CheckOutcome::Invalid(KeyProblem::KeyNotFound { bare_id: is_bare_key_id(key_id), detail })
        }
        AwsError::Disabled(_) => CheckOutcome::Invalid(KeyProblem::KeyDisabled),
        AwsError::InvalidState(_) => CheckOutcome::Invalid(KeyProblem::KeyPendingDeletion),
        AwsError::InvalidCredentials(m) => CheckOutcome::Invalid(KeyProblem::InvalidCredentials(m)),
        AwsError::Throttled(m) | AwsError::Unavailable(m) | AwsError::Other(m) => CheckOutcome::Unreachable(m),
    }
}

/// The region a key ARN names, if it is an ARN.
fn arn_region(key: &str) -> Option<&str> {
    let parts: Vec<&str> = key.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn").then(|| parts[3])
}

pub async fn check(aws: &Aws, req: CheckRequest<'_>) -> CheckOutcome {
    let target = req.target;
    if let Some(r) = arn_region(&target.key_id) {
        if r != target.aws_region {
            return CheckOutcome::Invalid(KeyProblem::WrongKeyType(format!(
                "the key ARN is in region {r} but the configuration names {}",
                target.aws_region
            )));
        }
    }
    let creds = match &target.credentials {
        KeyCredentials::Role { role_arn, external_id } => {
            let session = format!("atrest-{}", req.group_id);
            match aws.assume_role(role_arn, external_id, &session).await {
                Ok(c) => c,
                Err(AwsError::InvalidCredentials(m)) => {
                    return CheckOutcome::Unreachable(format!("atrest's own AWS credentials were refused: {m}"))
                }
                Err(e) => return transient_or(e, KeyProblem::CannotAssumeRole),
            }
        }
        KeyCredentials::AccessKeys { access_key_id } => match &req.secret_access_key {
            Some(secret) => StaticKeys::new(access_key_id, secret),
            None => return CheckOutcome::Invalid(KeyProblem::InvalidCredentials("no secret access key stored".into())),
        },
    };
    let kms = aws.kms(&target.aws_region, &creds, req.kms_endpoint.as_deref());
    let info = match kms.describe(&target.key_id).await {
        Ok(i) => i,
        Err(e) => return key_error(e, &target.key_id),
    };
    match info.state.as_str() {
        "Enabled" => {}
        "Disabled" => return CheckOutcome::Invalid(KeyProblem::KeyDisabled),
        "PendingDeletion" | "PendingReplicaDeletion" => return CheckOutcome::Invalid(KeyProblem::KeyPendingDeletion),
        other => return CheckOutcome::Invalid(KeyProblem::KeyUnavailable(format!("key state {other}"))),
    }
    // An absent KeyUsage/KeySpec means AWS's defaults: ENCRYPT_DECRYPT, SYMMETRIC_DEFAULT.
    let usage_ok = info.usage.is_empty() || info.usage == "ENCRYPT_DECRYPT";
    let spec_ok = info.spec.is_empty() || info.spec == "SYMMETRIC_DEFAULT";
    if !usage_ok || !spec_ok {
        return CheckOutcome::Invalid(KeyProblem::WrongKeyType(format!(
            "the key must be a symmetric ENCRYPT_DECRYPT key, not {} {}",
            info.spec, info.usage
        )));
    }
    let context: HashMap<String, String> = [("atrestGroupId".to_owned(), req.group_id.clone())].into();
    let mut probe = Zeroizing::new(vec![0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut probe);
    let blob = match kms.encrypt(&info.arn, &probe, &context).await {
        Ok(b) => b,
        Err(e) => return key_error(e, &target.key_id),
    };
    match kms.decrypt(&info.arn, &blob, &context).await {
        Ok(plain) if *plain == *probe => CheckOutcome::Valid { key_arn: info.arn },
        Ok(_) => CheckOutcome::Invalid(KeyProblem::KeyUnavailable("Decrypt did not return what was encrypted".into())),
        Err(e) => key_error(e, &target.key_id),
    }
}
