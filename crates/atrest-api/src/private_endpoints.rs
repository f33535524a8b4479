//! `/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints`: KMS private endpoints.
//! Project Owner only, reads included, as the official spec says.

use atrest_core::private_endpoints::{check_cloud_provider, PrivateEndpoint};
use atrest_core::roles::Operation;
use atrest_core::Error;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::conventions::{no_content, ok, path_id, AtlasJson, Paging};
use crate::errors::ApiResult;
use crate::{projects, AppState, Routes};

pub fn routes() -> Routes {
    Routes::new()
        .get("/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints", list)
        .post("/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints", create)
        .get("/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints/{endpointId}", read)
        .delete("/groups/{groupId}/encryptionAtRest/{cloudProvider}/privateEndpoints/{endpointId}", delete)
}

/// `EARPrivateEndpoint`: only `regionName` is writable; read-only fields are ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct CreateEndpoint {
    region_name: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    cloud_provider: Option<Value>,
    #[serde(default)]
    error_message: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    private_endpoint_connection_name: Option<Value>,
}

pub fn view(e: &PrivateEndpoint) -> Value {
    json!({
        "cloudProvider": "AWS",
        "errorMessage": e.error_message,
        "id": e.id.to_string(),
        "privateEndpointConnectionName": e.aws_endpoint_id,
        "regionName": e.region,
        "status": e.status.as_str(),
    })
}

async fn create(
    State(s): State<AppState>,
    who: Principal,
    Path((group, provider)): Path<(String, String)>,
    AtlasJson(body): AtlasJson<CreateEndpoint>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ManagePrivateEndpoints, &group).await?;
    check_cloud_provider(&provider)?;
    let region = match body.region_name {
        Some(Value::String(r)) => r,
        Some(other) => {
            return Err(Error::InvalidAttribute {
                name: "regionName".into(),
                reason: format!("must be a string, not {other}"),
            }
            .into())
        }
        None => return Err(Error::MissingAttribute { name: "regionName".into() }.into()),
    };
    let e = s.control.create_private_endpoint(&project.id, &region).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(view(&e))).into_response())
}

async fn list(
    State(s): State<AppState>,
    who: Principal,
    paging: Paging,
    Path((group, provider)): Path<(String, String)>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ManagePrivateEndpoints, &group).await?;
    check_cloud_provider(&provider)?;
    let (list, total) = s.store.list_private_endpoints(&project.id, &paging.page).await?;
    Ok(ok(paging.list(list.iter().map(view).collect(), total)))
}

async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path((group, provider, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ManagePrivateEndpoints, &group).await?;
    check_cloud_provider(&provider)?;
    let e = s.control.private_endpoint(&project.id, &path_id("endpointId", &id)?).await?;
    Ok(ok(view(&e)))
}

/// The product page sends a JSON body with DELETE; it is ignored.
async fn delete(
    State(s): State<AppState>,
    who: Principal,
    Path((group, provider, id)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ManagePrivateEndpoints, &group).await?;
    check_cloud_provider(&provider)?;
    s.control.delete_private_endpoint(&project.id, &path_id("endpointId", &id)?).await?;
    Ok(no_content())
}
