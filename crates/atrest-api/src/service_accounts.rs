//! Service accounts (Atlas `2024-08-05`): an organization's OAuth clients, their secrets (shown
//! once), and their project roles.

use atrest_core::api_keys;
use atrest_core::roles::{Grants, Operation};
use atrest_core::service_accounts::{self as sa, ServiceAccount};
use atrest_core::{time_fmt, Error, ObjectId};
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
        .get("/orgs/{orgId}/serviceAccounts", list)
        .post("/orgs/{orgId}/serviceAccounts", create)
        .get("/orgs/{orgId}/serviceAccounts/{clientId}", read)
        .patch("/orgs/{orgId}/serviceAccounts/{clientId}", update)
        .delete("/orgs/{orgId}/serviceAccounts/{clientId}", delete)
        .post("/orgs/{orgId}/serviceAccounts/{clientId}/secrets", create_secret)
        .delete("/orgs/{orgId}/serviceAccounts/{clientId}/secrets/{secretId}", delete_secret)
        .get("/groups/{groupId}/serviceAccounts", list_in_project)
        // Atlas's `{clientId}:invite`: the router takes one parameter per segment, so the handler
        // reads the verb off the end.
        .post("/groups/{groupId}/serviceAccounts/{clientIdAndVerb}", invite)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateAccount {
    name: String,
    description: String,
    roles: Vec<String>,
    secret_expires_after_hours: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateAccount {
    name: Option<String>,
    description: Option<String>,
    roles: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateSecret {
    secret_expires_after_hours: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invite {
    roles: Vec<String>,
}

pub fn secret_hash(secret: &str) -> String {
    crate::console::token_hash(secret)
}

fn secret_view(s: &sa::Secret, plain: Option<&str>) -> Value {
    let mut v = json!({
        "createdAt": time_fmt::format(s.created),
        "expiresAt": time_fmt::format(s.expires),
        "id": s.id.to_string(),
        "maskedSecretValue": s.masked,
    });
    if let Some(t) = s.last_used {
        v["lastUsedAt"] = json!(time_fmt::format(t));
    }
    if let Some(p) = plain {
        v["secret"] = json!(p);
    }
    v
}

/// `OrgServiceAccount`; `fresh` is the one secret to show in full, right after its creation.
fn view(a: &ServiceAccount, fresh: Option<(&ObjectId, &str)>) -> Value {
    json!({
        "clientId": a.client_id(),
        "createdAt": time_fmt::format(a.created),
        "description": a.description,
        "name": a.name,
        "roles": a.grants.org_roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "secrets": a.secrets.iter().map(|s| {
            secret_view(s, fresh.filter(|(id, _)| **id == s.id).map(|(_, p)| p))
        }).collect::<Vec<_>>(),
    })
}

/// `GroupServiceAccount`: the account as one project sees it, with its roles there.
fn project_view(a: &ServiceAccount, group: &ObjectId) -> Value {
    let roles = a.grants.project_roles.get(&group.to_string()).cloned().unwrap_or_default();
    json!({
        "clientId": a.client_id(),
        "createdAt": time_fmt::format(a.created),
        "description": a.description,
        "name": a.name,
        "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "secrets": a.secrets.iter().map(|s| secret_view(s, None)).collect::<Vec<_>>(),
    })
}

async fn load(s: &AppState, org: &ObjectId, client_id: &str) -> ApiResult<ServiceAccount> {
    let id = sa::path_client_id(client_id)?;
    match s.store.get_service_account(&id).await? {
        Some(a) if a.org_id == *org => Ok(a),
        _ => Err(Error::ServiceAccountNotFound { client_id: client_id.to_owned() }.into()),
    }
}

fn own_org(who: &Principal, org: &str, op: Operation) -> ApiResult<ObjectId> {
    let org = path_id("orgId", org)?;
    who.own_org(&org)?;
    who.require(op, None)?;
    Ok(org)
}

async fn create(
    State(s): State<AppState>,
    who: Principal,
    Path(org): Path<String>,
    AtlasJson(body): AtlasJson<CreateAccount>,
) -> ApiResult<Response> {
    let org = own_org(&who, &org, Operation::ManageServiceAccounts)?;
    sa::check_name(&body.name)?;
    sa::check_description(&body.description)?;
    let org_roles = api_keys::parse_org_roles(&body.roles)?;
    let lifetime = sa::check_secret_hours(body.secret_expires_after_hours)?;
    let now = time_fmt::now();
    let (secret, plain) = sa::new_secret(now, lifetime, secret_hash);
    let account = ServiceAccount {
        id: ObjectId::new(),
        org_id: org,
        name: body.name,
        description: body.description,
        grants: Grants { org_roles, ..Default::default() },
        created: now,
        secrets: vec![secret.clone()],
    };
    s.store.insert_service_account(&account).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&account, Some((&secret.id, &plain))))).into_response())
}

async fn list(
    State(s): State<AppState>,
    who: Principal,
    paging: Paging,
    Path(org): Path<String>,
) -> ApiResult<Response> {
    let org = own_org(&who, &org, Operation::ListServiceAccounts)?;
    let (accounts, total) = s.store.list_service_accounts(&org, &paging.page).await?;
    Ok(ok(paging.list(accounts.iter().map(|a| view(a, None)).collect(), total)))
}

async fn read(
    State(s): State<AppState>,
    who: Principal,
    Path((org, client)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = own_org(&who, &org, Operation::ListServiceAccounts)?;
    Ok(ok(view(&load(&s, &org, &client).await?, None)))
}

async fn update(
    State(s): State<AppState>,
    who: Principal,
    Path((org, client)): Path<(String, String)>,
    AtlasJson(body): AtlasJson<UpdateAccount>,
) -> ApiResult<Response> {
    let org = own_org(&who, &org, Operation::ManageServiceAccounts)?;
    let mut account = load(&s, &org, &client).await?;
    if let Some(name) = body.name {
        sa::check_name(&name)?;
        account.name = name;
    }
    if let Some(description) = body.description {
        sa::check_description(&description)?;
        account.description = description;
    }
    if let Some(roles) = body.roles {
        account.grants.org_roles = api_keys::parse_org_roles(&roles)?;
    }
    s.store.update_service_account(&account).await?;
    Ok(ok(view(&account, None)))
}

async fn delete(
    State(s): State<AppState>,
    who: Principal,
    Path((org, client)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = own_org(&who, &org, Operation::ManageServiceAccounts)?;
    let account = load(&s, &org, &client).await?;
    s.store.delete_service_account(&account.id).await?;
    Ok(no_content())
}

async fn create_secret(
    State(s): State<AppState>,
    who: Principal,
    Path((org, client)): Path<(String, String)>,
    AtlasJson(body): AtlasJson<CreateSecret>,
) -> ApiResult<Response> {
    let org = own_org(&who, &org, Operation::ManageServiceAccounts)?;
    let mut account = load(&s, &org, &client).await?;
    let lifetime = sa::check_secret_hours(body.secret_expires_after_hours)?;
    let (secret, plain) = sa::new_secret(time_fmt::now(), lifetime, secret_hash);
    sa::add_secret(&mut account, secret.clone())?;
    s.store.update_service_account(&account).await?;
    Ok((StatusCode::CREATED, axum::Json(secret_view(&secret, Some(&plain)))).into_response())
}

async fn delete_secret(
    State(s): State<AppState>,
    who: Principal,
    Path((org, client, secret)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let org = own_org(&who, &org, Operation::ManageServiceAccounts)?;
    let mut account = load(&s, &org, &client).await?;
    let id = path_id("secretId", &secret)?;
    let before = account.secrets.len();
    account.secrets.retain(|s| s.id != id);
    if account.secrets.len() == before {
        return Err(Error::ServiceAccountSecretNotFound { id: id.to_string() }.into());
    }
    s.store.update_service_account(&account).await?;
    Ok(no_content())
}

async fn list_in_project(
    State(s): State<AppState>,
    who: Principal,
    paging: Paging,
    Path(group): Path<String>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ReadProject, &group).await?;
    let key = project.id.to_string();
    // Every account of the organization is read to find the project's few; organizations have
    // tens of accounts, not thousands.
    let everything = atrest_core::paging::Page { page_num: 1, items_per_page: u32::MAX as u64, include_count: true };
    let (accounts, _) = s.store.list_service_accounts(&project.org_id, &everything).await?;
    let members: Vec<Value> = accounts
        .iter()
        .filter(|a| a.grants.project_roles.contains_key(&key))
        .map(|a| project_view(a, &project.id))
        .collect();
    let total = members.len() as u64;
    let page: Vec<Value> =
        members.into_iter().skip(paging.page.offset() as usize).take(paging.page.items_per_page as usize).collect();
    Ok(ok(paging.list(page, total)))
}

async fn invite(
    State(s): State<AppState>,
    who: Principal,
    Path((group, client)): Path<(String, String)>,
    AtlasJson(body): AtlasJson<Invite>,
) -> ApiResult<Response> {
    let Some(client) = client.strip_suffix(":invite") else {
        return Err(Error::ResourceNotFound { path: format!("/groups/{group}/serviceAccounts/{client}") }.into());
    };
    let project = projects::load(&s, &who, Operation::AssignProjectRoles, &group).await?;
    let mut account = load(&s, &project.org_id, client).await?;
    let roles = api_keys::parse_project_roles(&body.roles)?;
    account.grants.project_roles.insert(project.id.to_string(), roles);
    s.store.update_service_account(&account).await?;
    Ok(ok(project_view(&account, &project.id)))
}
