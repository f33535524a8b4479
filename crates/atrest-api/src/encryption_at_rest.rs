//! `/groups/{groupId}/encryptionAtRest`: AWS KMS customer key management for a project.

use atrest_core::encryption_at_rest::{AwsKms, AwsKmsPatch};
use atrest_core::roles::Operation;
use atrest_core::Error;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::conventions::{ok, AtlasJson};
use crate::errors::ApiResult;
use crate::{projects, AppState, Routes};

pub fn routes() -> Routes {
    Routes::new().get("/groups/{groupId}/encryptionAtRest", read).patch("/groups/{groupId}/encryptionAtRest", update)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EncryptionAtRestBody {
    #[serde(default)]
    aws_kms: Option<AwsKmsBody>,
    #[serde(default)]
    azure_key_vault: Option<OtherProvider>,
    #[serde(default)]
    google_cloud_kms: Option<OtherProvider>,
    #[serde(default)]
    enabled_for_search_nodes: Option<bool>,
}

/// `AWSKMSConfiguration`; `valid` is read-only and ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsKmsBody {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default, rename = "customerMasterKeyID")]
    customer_master_key_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default, rename = "roleId")]
    role_id: Option<String>,
    #[serde(default, rename = "requirePrivateNetworking")]
    require_private_networking: Option<bool>,
    #[serde(default, rename = "accessKeyID")]
    access_key_id: Option<String>,
    #[serde(default, rename = "secretAccessKey")]
    secret_access_key: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    valid: Option<Value>,
}

/// Azure Key Vault and Google Cloud KMS: accepted only as disabled.
#[derive(Deserialize)]
struct OtherProvider {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(flatten)]
    _rest: serde_json::Map<String, Value>,
}

pub fn aws_kms_view(cfg: &AwsKms) -> Value {
    if !cfg.enabled {
        return json!({"enabled": false});
    }
    let mut v = json!({
        "enabled": true,
        "customerMasterKeyID": cfg.customer_master_key_id,
        "region": cfg.region,
        "requirePrivateNetworking": cfg.require_private_networking,
        "valid": cfg.valid,
    });
    if let Some(role) = cfg.role_id {
        v["roleId"] = json!(role.to_string());
    }
    if let Some(id) = &cfg.access_key_id {
        v["accessKeyID"] = json!(id);
    }
    v
}

fn view(cfg: &AwsKms) -> Value {
    json!({
        "awsKms": aws_kms_view(cfg),
        "azureKeyVault": {"enabled": false},
        "googleCloudKms": {"enabled": false},
        "enabledForSearchNodes": false,
    })
}

async fn read(State(s): State<AppState>, who: Principal, Path(group): Path<String>) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ReadEncryptionAtRest, &group).await?;
    Ok(ok(view(&s.control.encryption_at_rest(&project.id).await?)))
}

async fn update(
    State(s): State<AppState>,
    who: Principal,
    Path(group): Path<String>,
    AtlasJson(body): AtlasJson<EncryptionAtRestBody>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::UpdateEncryptionAtRest, &group).await?;
    for (name, other) in [("AZURE", &body.azure_key_vault), ("GCP", &body.google_cloud_kms)] {
        if other.as_ref().and_then(|o| o.enabled) == Some(true) {
            return Err(Error::ProviderUnsupported { provider: name.into() }.into());
        }
    }
    if body.enabled_for_search_nodes == Some(true) {
        return Err(Error::InvalidAttribute {
            name: "enabledForSearchNodes".into(),
            reason: "atrest has no search nodes".into(),
        }
        .into());
    }
    let cfg = match body.aws_kms {
        Some(k) => {
            let patch = AwsKmsPatch {
                enabled: k.enabled,
                customer_master_key_id: k.customer_master_key_id,
                region: k.region,
                role_id: k.role_id,
                require_private_networking: k.require_private_networking,
                access_key_id: k.access_key_id,
                secret_access_key: k.secret_access_key,
            };
            s.control.update_encryption_at_rest(&project, patch).await?
        }
        None => s.control.encryption_at_rest(&project.id).await?,
    };
    Ok(ok(view(&cfg)))
}
