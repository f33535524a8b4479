//! Cloud provider access roles: create with a fresh external id, authorize by a real AssumeRole,
//! deauthorize unless encryption at rest uses the role.

use atrest_core::cloud_provider_access::{self as cpa, AwsIamRole};
use atrest_core::encryption_at_rest::AwsKms;
use atrest_core::events::Event;
use atrest_core::{time_fmt, Error, ObjectId, Result};
use atrest_keys::aws::AwsError;
use serde_json::json;

use crate::Control;

impl Control {
    pub async fn create_role(&self, group: &ObjectId) -> Result<AwsIamRole> {
        let role =
            cpa::new_role(*group, &self.atlas_aws_account_arn, uuid::Uuid::new_v4().to_string(), time_fmt::now());
        let event = Event::new(*group, "CLOUD_PROVIDER_ACCESS_AWS_IAM_ROLE_ADDED", json!({"roleId": role.role_id}));
        self.store.insert_role(&role, &[event]).await?;
        Ok(role)
    }

    pub async fn role(&self, group: &ObjectId, role_id: &ObjectId) -> Result<AwsIamRole> {
        self.store.get_role(group, role_id).await?.ok_or_else(|| Error::RoleNotFound { role_id: role_id.to_string() })
    }

    /// Whether the project's Encryption at Rest uses this role.
    pub async fn role_in_use(&self, group: &ObjectId, role_id: &ObjectId) -> Result<bool> {
        Ok(self.aws_kms(group).await?.is_some_and(|k| k.enabled && k.role_id == Some(*role_id)))
    }

    pub(crate) async fn aws_kms(&self, group: &ObjectId) -> Result<Option<AwsKms>> {
        Ok(self.store.get_encryption_at_rest(group).await?.map(|s| s.aws_kms))
    }

    /// Authorizes a role only after STS lets atrest assume it with the role's external id.
    pub async fn authorize_role(&self, group: &ObjectId, role_id: &ObjectId, arn: &str) -> Result<AwsIamRole> {
        let role = self.role(group, role_id).await?;
        cpa::parse_role_arn(arn)?;
        match self.aws.assume_role(arn, &role.external_id, &format!("atrest-authorize-{role_id}")).await {
            Ok(_) => {}
            Err(AwsError::Throttled(m)) | Err(AwsError::Unavailable(m)) => {
                return Err(Error::KmsUnreachable { detail: m })
            }
            Err(e) => return Err(Error::CannotAssumeRole { detail: e.to_string() }),
        }
        let role = cpa::authorize(role, arn, time_fmt::now());
        let event = Event::new(
            *group,
            "CLOUD_PROVIDER_ACCESS_AWS_IAM_ROLE_UPDATED",
            json!({"roleId": role.role_id, "iamAssumedRoleArn": arn}),
        );
        self.store.update_role(&role, &[event]).await?;
        Ok(role)
    }

    pub async fn deauthorize_role(&self, group: &ObjectId, role_id: &ObjectId) -> Result<()> {
        let role = self.role(group, role_id).await?;
        cpa::check_deauthorize(&role, self.role_in_use(group, role_id).await?)?;
        let event = Event::new(*group, "CLOUD_PROVIDER_ACCESS_AWS_IAM_ROLE_DELETED", json!({"roleId": role.role_id}));
        self.store.delete_role(&role, &[event]).await
    }
}
