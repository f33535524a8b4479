//! Programmatic API keys: the private key is returned once, at creation, and kept only as a
//! sealed Digest verifier.

use atrest_core::api_keys::{self, ApiKey};
use atrest_core::roles::{Grants, Operation};
use atrest_core::{time_fmt, Error, ObjectId};
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::digest::Verifier;
use crate::auth::Principal;
use crate::conventions::{no_content, ok, path_id, AtlasJson, Ctx, Paging};
use crate::errors::ApiResult;
use crate::{projects, AppState, Routes};

pub fn routes() -> Routes {
    Routes::new()
        .get("/orgs/{orgId}/apiKeys", list)
        .post("/orgs/{orgId}/apiKeys", create)
        .get("/orgs/{orgId}/apiKeys/{apiUserId}", read)
        .delete("/orgs/{orgId}/apiKeys/{apiUserId}", delete)
        .patch("/groups/{groupId}/apiKeys/{apiUserId}", assign)
}

const REDACTED: &str = "********-****-****-************";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    desc: String,
    roles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignKey {
    roles: Vec<String>,
}

pub fn view(ctx: &Ctx, key: &ApiKey, private_key: Option<&str>) -> Value {
    let mut roles: Vec<Value> =
        key.grants.org_roles.iter().map(|r| json!({"orgId": key.org_id.to_string(), "roleName": r.as_str()})).collect();
    for (group, rs) in &key.grants.project_roles {
        roles.extend(rs.iter().map(|r| json!({"groupId": group, "roleName": r.as_str()})));
    }
    json!({
        "desc": key.description,
        "id": key.id.to_string(),
        "links": ctx.self_link(&format!("/orgs/{}/apiKeys/{}", key.org_id, key.id)),
        "privateKey": private_key.unwrap_or(REDACTED),
        "publicKey": key.public_key,
        "roles": roles,
    })
}

/// Creates a key and its sealed verifier; the caller shows the private key once.
pub fn mint(
    sealer: &atrest_keys::Sealer,
    org: ObjectId,
    desc: String,
    grants: Grants,
) -> (ApiKey, Vec<u8>, api_keys::PrivateKey) {
    let key = ApiKey {
        id: ObjectId::new(),
        org_id: org,
        public_key: api_keys::generate_public_key(),
        description: desc,
        grants,
        created: time_fmt::now(),
    };
    let private = api_keys::generate_private_key();
    let verifier = Verifier::new(&key.public_key, &private);
    let sealed = sealer.seal(&verifier.to_bytes(), key.id.to_string().as_bytes());
    (key, sealed, private)
}

async fn create(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    Path(org): Path<String>,
    AtlasJson(body): AtlasJson<CreateKey>,
) -> ApiResult<Response> {
    let org = path_id("orgId", &org)?;
    who.own_org(&org)?;
    who.require(Operation::CreateApiKey, None)?;
    api_keys::validate_description(&body.desc)?;
    let org_roles = api_keys::parse_org_roles(&body.roles)?;
    let (key, sealed, private) = mint(&s.sealer, org, body.desc, Grants { org_roles, ..Default::default() });
    s.store.insert_api_key(&key, &sealed).await?;
    Ok(ok(view(&ctx, &key, Some(&private))))
}

async fn list(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    paging: Paging,
    Path(org): Path<String>,
) -> ApiResult<Response> {
    let org = path_id("orgId", &org)?;
    who.own_org(&org)?;
    who.require(Operation::ListApiKeys, None)?;
    let (keys, total) = s.store.list_api_keys(&org, &paging.page).await?;
    Ok(ok(paging.list(keys.iter().map(|k| view(&ctx, k, None)).collect(), total)))
}

async fn load(s: &AppState, who: &Principal, org: &str, key: &str) -> ApiResult<ApiKey> {
    let org = path_id("orgId", org)?;
    who.own_org(&org)?;
    let id = path_id("apiUserId", key)?;
    match s.store.get_api_key(&id).await? {
        Some(k) if k.org_id == org => Ok(k),
        _ => Err(Error::ApiKeyNotFound { id: id.to_string() }.into()),
    }
}

async fn read(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    Path((org, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    who.require(Operation::ReadApiKey, None)?;
    let key = load(&s, &who, &org, &key).await?;
    Ok(ok(view(&ctx, &key, None)))
}

async fn delete(
    State(s): State<AppState>,
    who: Principal,
    Path((org, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    who.require(Operation::DeleteApiKey, None)?;
    let key = load(&s, &who, &org, &key).await?;
    s.store.delete_api_key(&key.id).await?;
    Ok(no_content())
}

async fn assign(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    Path((group, key)): Path<(String, String)>,
    AtlasJson(body): AtlasJson<AssignKey>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::AssignProjectRoles, &group).await?;
    let key_id = path_id("apiUserId", &key)?;
    let mut key = match s.store.get_api_key(&key_id).await? {
        Some(k) if k.org_id == who.org_id => k,
        _ => return Err(Error::ApiKeyNotFound { id: key_id.to_string() }.into()),
    };
    let roles = api_keys::parse_project_roles(&body.roles)?;
    s.store.set_project_roles(&key.id, &project.id, &roles).await?;
    key.grants.project_roles.insert(project.id.to_string(), roles);
    Ok(ok(view(&ctx, &key, None)))
}
