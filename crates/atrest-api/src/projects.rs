//! Projects (`/groups`): create, list, read by id or name, delete.

use atrest_core::projects::{self, NewProject, Project, ResourceTag};
use atrest_core::roles::Operation;
use atrest_core::{time_fmt, Error, ObjectId};
use atrest_store::ProjectScope;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::conventions::{no_content, ok, path_id, query_map, AtlasJson, Ctx, Paging};
use crate::errors::ApiResult;
use crate::{AppState, Routes};

pub fn routes() -> Routes {
    Routes::new()
        .get("/groups", list)
        .post("/groups", create)
        .get("/groups/{groupId}", read)
        .delete("/groups/{groupId}", delete)
        .patch("/groups/{groupId}", update)
        .get("/groups/byName/{groupName}", read_by_name)
}

/// The `Group` schema's writable fields; read-only ones are accepted and ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateGroup {
    name: String,
    org_id: String,
    #[serde(default)]
    with_default_alerts_settings: Option<bool>,
    #[serde(default)]
    tags: Option<Vec<TagBody>>,
    #[serde(default)]
    region_usage_restrictions: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    created: Option<Value>,
    #[serde(default)]
    cluster_count: Option<Value>,
    #[serde(default)]
    links: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagBody {
    key: String,
    value: String,
}

pub fn view(ctx: &Ctx, p: &Project) -> Value {
    json!({
        "clusterCount": p.cluster_count,
        "created": time_fmt::format(p.created),
        "id": p.id.to_string(),
        "links": ctx.self_link(&format!("/groups/{}", p.id)),
        "name": p.name,
        "orgId": p.org_id.to_string(),
        "tags": p.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(),
        "withDefaultAlertsSettings": p.with_default_alerts_settings,
    })
}

/// Loads a project the caller may act on with `op`; another organization's is not found.
pub async fn load(s: &AppState, who: &Principal, op: Operation, group: &str) -> ApiResult<Project> {
    let id = path_id("groupId", group)?;
    who.require(op, Some(&id))?;
    match s.store.get_project(&id).await? {
        Some(p) if p.org_id == who.org_id => Ok(p),
        _ => Err(Error::GroupNotFound { id: id.to_string() }.into()),
    }
}

async fn create(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    uri: Uri,
    AtlasJson(body): AtlasJson<CreateGroup>,
) -> ApiResult<Response> {
    who.require(Operation::CreateProject, None)?;
    if let Some(owner) = query_map(&uri).get("projectOwnerId") {
        if !ObjectId::is_valid(owner) {
            return Err(Error::InvalidQueryParameter { name: "projectOwnerId".into(), value: owner.clone() }.into());
        }
    }
    if body.region_usage_restrictions.is_some() {
        return Err(Error::InvalidAttribute {
            name: "regionUsageRestrictions".into(),
            reason: "applies to Atlas for Government only".into(),
        }
        .into());
    }
    let _read_only = (body.id, body.created, body.cluster_count, body.links);
    let org_id = ObjectId::parse(&body.org_id).ok_or_else(|| Error::InvalidAttribute {
        name: "orgId".into(),
        reason: "must be 24 hexadecimal characters".into(),
    })?;
    who.own_org(&org_id)?;
    let project = projects::create(
        NewProject {
            name: body.name,
            org_id,
            tags: body
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| ResourceTag { key: t.key, value: t.value })
                .collect(),
            with_default_alerts_settings: body.with_default_alerts_settings.unwrap_or(true),
        },
        time_fmt::now(),
    )?;
    s.store.insert_project(&project, Some(&who.key_id)).await?;
    Ok(ok(view(&ctx, &project)))
}

async fn list(State(s): State<AppState>, who: Principal, ctx: Ctx, paging: Paging) -> ApiResult<Response> {
    who.require(Operation::ListProjects, None)?;
    let scope = if who.grants.sees_all_projects() {
        ProjectScope::Org(who.org_id)
    } else {
        ProjectScope::Only { org: who.org_id, ids: who.grants.projects().cloned().collect() }
    };
    let (projects, total) = s.store.list_projects(&scope, &paging.page).await?;
    Ok(ok(paging.list(projects.iter().map(|p| view(&ctx, p)).collect(), total)))
}

async fn read(State(s): State<AppState>, who: Principal, ctx: Ctx, Path(group): Path<String>) -> ApiResult<Response> {
    let project = load(&s, &who, Operation::ReadProject, &group).await?;
    Ok(ok(view(&ctx, &project)))
}

async fn read_by_name(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    who.require(Operation::ListProjects, None)?;
    match s.store.get_project_by_name(&who.org_id, &name).await? {
        Some(p) if who.grants.allows(Operation::ReadProject, Some(&p.id)) => Ok(ok(view(&ctx, &p))),
        _ => Err(Error::GroupNameNotFound { name }.into()),
    }
}

/// `GroupUpdate`: a new name and/or tags.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateGroup {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tags: Option<Vec<TagBody>>,
}

async fn update(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    Path(group): Path<String>,
    AtlasJson(body): AtlasJson<Value>,
) -> ApiResult<Response> {
    let project = load(&s, &who, Operation::UpdateProject, &group).await?;
    let body: UpdateGroup = crate::conventions::parse_body(body.to_string().as_bytes())?;
    let tags = body.tags.map(|t| t.into_iter().map(|t| ResourceTag { key: t.key, value: t.value }).collect());
    let updated = projects::update(project, body.name, tags)?;
    s.store.update_project(&updated).await?;
    Ok(ok(view(&ctx, &updated)))
}

async fn delete(State(s): State<AppState>, who: Principal, Path(group): Path<String>) -> ApiResult<Response> {
    let project = load(&s, &who, Operation::DeleteProject, &group).await?;
    if project.cluster_count > 0 {
        return Err(Error::ProjectHasClusters { count: project.cluster_count }.into());
    }
    s.store.delete_project(&project.id).await?;
    Ok(no_content())
}
