//! `/groups/{groupId}/cloudProviderAccess`: atrest's AWS principal and per-role external ids.

use atrest_core::cloud_provider_access::{check_provider, AwsIamRole};
use atrest_core::roles::Operation;
use atrest_core::{time_fmt, Error};
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::conventions::{no_content, ok, path_id, AtlasJson};
use crate::errors::ApiResult;
use crate::{projects, AppState, Routes};

pub fn routes() -> Routes {
    Routes::new()
        .get("/groups/{groupId}/cloudProviderAccess", list)
        .post("/groups/{groupId}/cloudProviderAccess", create)
        .get("/groups/{groupId}/cloudProviderAccess/{roleId}", read)
        .patch("/groups/{groupId}/cloudProviderAccess/{roleId}", authorize)
        .delete("/groups/{groupId}/cloudProviderAccess/{cloudProvider}/{roleId}", deauthorize)
}

/// `CloudProviderAccessRoleRequest` (POST) and `...RequestUpdate` (PATCH): `providerName`, and
/// `iamAssumedRoleArn` when authorizing; read-only fields are accepted and ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct RoleBody {
    provider_name: String,
    #[serde(default)]
    iam_assumed_role_arn: Option<String>,
    #[serde(default, rename = "atlasAWSAccountArn")]
    atlas_aws_account_arn: Option<Value>,
    #[serde(default)]
    atlas_assumed_role_external_id: Option<Value>,
    #[serde(default)]
    authorized_date: Option<Value>,
    #[serde(default)]
    created_date: Option<Value>,
    #[serde(default)]
    feature_usages: Option<Value>,
    #[serde(default)]
    role_id: Option<Value>,
}

pub fn view(role: &AwsIamRole, in_use: bool) -> Value {
    let usages: Vec<Value> = if in_use {
        vec![json!({"featureType": "ENCRYPTION_AT_REST", "featureId": {"groupId": role.group_id.to_string()}})]
    } else {
        vec![]
    };
    json!({
        "atlasAWSAccountArn": role.atlas_aws_account_arn,
        "atlasAssumedRoleExternalId": role.external_id,
        "authorizedDate": role.authorized.map(time_fmt::format),
        "createdDate": time_fmt::format(role.created),
        "featureUsages": usages,
        "iamAssumedRoleArn": role.iam_assumed_role_arn,
        "providerName": "AWS",
        "roleId": role.role_id.to_string(),
    })
}

async fn render(s: &AppState, role: &AwsIamRole) -> ApiResult<Value> {
    Ok(view(role, s.control.role_in_use(&role.group_id, &role.role_id).await?))
}

async fn create(
    State(s): State<AppState>,
    who: Principal,
    Path(group): Path<String>,
    AtlasJson(body): AtlasJson<RoleBody>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::CreateCloudProviderAccess, &group).await?;
    check_provider(&body.provider_name)?;
    let role = s.control.create_role(&project.id).await?;
    Ok(ok(render(&s, &role).await?))
}

async fn list(State(s): State<AppState>, who: Principal, Path(group): Path<String>) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ListCloudProviderAccess, &group).await?;
    let mut roles = vec![];
    for role in s.control.store.list_roles(&project.id).await? {
        roles.push(render(&s, &role).await?);
    }
    Ok(ok(json!({"awsIamRoles": roles, "azureServicePrincipals": [], "gcpServiceAccounts": []})))
}

async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path((group, role)): Path<(String, String)>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ListCloudProviderAccess, &group).await?;
    let role = s.control.role(&project.id, &path_id("roleId", &role)?).await?;
    Ok(ok(render(&s, &role).await?))
}

async fn authorize(
    State(s): State<AppState>,
    who: Principal,
    Path((group, role)): Path<(String, String)>,
    AtlasJson(body): AtlasJson<RoleBody>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::AuthorizeCloudProviderAccess, &group).await?;
    let role_id = path_id("roleId", &role)?;
    check_provider(&body.provider_name)?;
    let arn = body.iam_assumed_role_arn.ok_or(Error::MissingAttribute { name: "iamAssumedRoleArn".into() })?;
    let role = s.control.authorize_role(&project.id, &role_id, &arn).await?;
    Ok(ok(render(&s, &role).await?))
}

async fn deauthorize(
    State(s): State<AppState>,
    who: Principal,
    Path((group, provider, role)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::DeauthorizeCloudProviderAccess, &group).await?;
    if !["AWS", "AZURE", "GCP"].contains(&provider.as_str()) {
        return Err(Error::InvalidPathParameter { name: "cloudProvider".into(), value: provider }.into());
    }
    check_provider(&provider)?;
    s.control.deauthorize_role(&project.id, &path_id("roleId", &role)?).await?;
    Ok(no_content())
}
