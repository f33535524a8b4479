//! The customer's CMK as the data plane's master-key wrapper: KMS Encrypt/Decrypt with an
//! encryption context naming the project, cluster and region, through the project's route.

use std::collections::{BTreeMap, HashMap};

use atrest_core::encryption_at_rest::{CheckOutcome, KeyCredentials};
use atrest_core::ObjectId;
use atrest_dataplane::{MasterKeyWrapper, WrapError, WrapperId};
use atrest_keys::aws::{AwsError, Kms, StaticKeys};
use zeroize::Zeroizing;

use crate::Control;

pub struct KmsWrapper {
    kms: Kms,
    key: String,
    group: String,
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
        self.kms.encrypt(&self.key, plaintext, &self.context(context)).await.map_err(wrap_error)
    }

    async fn unwrap(&self, blob: &[u8], context: &BTreeMap<String, String>) -> Result<Zeroizing<Vec<u8>>, WrapError> {
        self.kms.decrypt(&self.key, blob, &self.context(context)).await.map_err(wrap_error)
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
        let route = self.kms_route(group, cfg).await.map_err(|p| WrapError::Unavailable(format!("{p:?}")))?;
        let key = cfg.key_arn.clone().unwrap_or_else(|| target.key_id.clone());
        Ok(KmsWrapper {
            kms: self.aws.kms(&target.aws_region, &creds, route.as_deref()),
            key,
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
