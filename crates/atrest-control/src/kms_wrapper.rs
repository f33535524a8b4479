//! The customer's CMK as the data plane's master-key wrapper: KMS Encrypt/Decrypt with an
//! encryption context naming the project, cluster and region, through the project's route.

use std::collections::{BTreeMap, HashMap};

use std::sync::Arc;

use atrest_core::encryption_at_rest::{is_multi_region_key, CheckOutcome, KeyCredentials};
use atrest_core::private_endpoints::Status;
use atrest_core::{regions, ObjectId};
use atrest_dataplane::{MasterKeyWrapper, WrapError, WrapperId};
use atrest_keys::aws::{Aws, AwsError, Kms, StaticKeys};
use zeroize::Zeroizing;

use crate::Control;

/// Wraps with the project's CMK. A multi-region key (`mrk-`) is used in each cluster region through
/// that region's replica (same key id, that region in the ARN) and, when private networking is
/// required, through that region's ACTIVE endpoint; any other key is used in its own region.
pub struct KmsWrapper {
    aws: Arc<Aws>,
    creds: StaticKeys,
    /// The key's ARN in its home region.
    key: String,
    home_region: String,
    home_route: Option<String>,
    multi_region: bool,
    require_private_networking: bool,
    /// AWS region → ACTIVE private endpoint URL.
    endpoints: HashMap<String, String>,
    group: String,
}

/// The same key ARN with another region: a multi-region key's replica there.
fn arn_in_region(arn: &str, region: &str) -> String {
    let mut parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 {
        parts[3] = region;
    }
    parts.join(":")
}

fn wrap_error(e: AwsError) -> WrapError {
    match e {
        AwsError::NotFound(m) => WrapError::Denied(format!(
            "the customer master key no longer exists, so the data it protects can never be read again ({m})"
        )),
        AwsError::AccessDenied(m)
        | AwsError::Disabled(m)
        | AwsError::InvalidState(m)
        | AwsError::InvalidCredentials(m) => WrapError::Denied(m),
        AwsError::Throttled(m) | AwsError::Unavailable(m) | AwsError::Other(m) => WrapError::Unavailable(m),
    }
}

impl KmsWrapper {
    /// The key ARN and KMS client for the region a wrap names in its context.
    fn client_for(&self, context: &BTreeMap<String, String>) -> Result<(String, Kms), WrapError> {
        let region = context.get("region").and_then(|r| regions::to_aws(r));
        match region {
            Some(r) if self.multi_region && r != self.home_region => {
                let route = if self.require_private_networking {
                    Some(self.endpoints.get(&r).cloned().ok_or_else(|| {
                        WrapError::Unavailable(format!(
                            "private networking is required and {r} has no ACTIVE private endpoint"
                        ))
                    })?)
                } else {
                    None
                };
                Ok((arn_in_region(&self.key, &r), self.aws.kms(&r, &self.creds, route.as_deref())))
            }
            _ => Ok((self.key.clone(), self.aws.kms(&self.home_region, &self.creds, self.home_route.as_deref()))),
        }
    }

    fn context(&self, context: &BTreeMap<String, String>) -> HashMap<String, String> {
        let mut ctx: HashMap<String, String> = context.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        ctx.insert("project".into(), self.group.clone());
        ctx
    }
}

#[async_trait::async_trait]
impl MasterKeyWrapper for KmsWrapper {
    fn describe(&self) -> WrapperId {
        WrapperId { provider: "AWS".into(), key: self.key.clone(), version: 1 }
    }

    async fn wrap(&self, plaintext: &[u8], context: &BTreeMap<String, String>) -> Result<Vec<u8>, WrapError> {
        let (key, kms) = self.client_for(context)?;
        kms.encrypt(&key, plaintext, &self.context(context)).await.map_err(wrap_error)
    }

    async fn unwrap(&self, blob: &[u8], context: &BTreeMap<String, String>) -> Result<Zeroizing<Vec<u8>>, WrapError> {
        let (key, kms) = self.client_for(context)?;
        kms.decrypt(&key, blob, &self.context(context)).await.map_err(wrap_error)
    }
}

impl Control {
    /// A wrapper for the project's current CMK, reached as the configuration says (assumed role
    /// or access keys, private endpoint when required).
    pub async fn kms_wrapper(&self, group: &ObjectId) -> Result<KmsWrapper, WrapError> {
        let stored = self
            .store
            .get_encryption_at_rest(group)
            .await
            .map_err(|e| WrapError::Unavailable(e.to_string()))?
            .filter(|s| s.aws_kms.enabled)
            .ok_or_else(|| WrapError::Denied("customer key management is not enabled for the project".into()))?;
        self.kms_wrapper_for(group, &stored.aws_kms, stored.sealed_secret.as_deref()).await
    }

    /// A wrapper for the CMK a given configuration names (the current one, or one about to be saved).
    pub async fn kms_wrapper_for(
        &self,
        group: &ObjectId,
        cfg: &atrest_core::encryption_at_rest::AwsKms,
        sealed_secret: Option<&[u8]>,
    ) -> Result<KmsWrapper, WrapError> {
        let target = self
            .target_of(group, cfg)
            .await
            .map_err(|p| WrapError::Denied(atrest_core::encryption_at_rest::problem_error(&p, "").to_string()))?;
        let creds = match &target.credentials {
            KeyCredentials::Role { role_arn, external_id } => {
                self.aws.assume_role(role_arn, external_id, &format!("atrest-{group}")).await.map_err(wrap_error)?
            }
            KeyCredentials::AccessKeys { access_key_id } => {
                let secret = self
                    .open_secret(group, sealed_secret)
                    .ok_or_else(|| WrapError::Denied("no secret access key".into()))?;
                StaticKeys::new(access_key_id, &secret)
            }
        };
        let home_route = self.kms_route(group, cfg).await.map_err(|p| WrapError::Unavailable(format!("{p:?}")))?;
        let key = cfg.key_arn.clone().unwrap_or_else(|| target.key_id.clone());
        let endpoints = self
            .store
            .all_private_endpoints(group)
            .await
            .map_err(|e| WrapError::Unavailable(e.to_string()))?
            .into_iter()
            .filter(|e| e.status == Status::Active)
            .filter_map(|e| Some((regions::to_aws(&e.region)?, e.endpoint_url?)))
            .collect();
        Ok(KmsWrapper {
            aws: self.aws.clone(),
            creds,
            multi_region: is_multi_region_key(&key),
            key,
            home_region: target.aws_region.clone(),
            home_route,
            require_private_networking: cfg.require_private_networking,
            endpoints,
            group: group.to_string(),
        })
    }

    /// Whether the project's key works right now (used before serving data again).
    pub async fn project_key_valid(&self, group: &ObjectId) -> bool {
        match self.store.get_encryption_at_rest(group).await {
            Ok(Some(s)) if s.aws_kms.enabled => {
                s.aws_kms.valid && !matches!(self.check_stored(&s).await, CheckOutcome::Invalid(_))
            }
            _ => false,
        }
    }
}
