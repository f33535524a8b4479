//! Organizations: read-only; atrest bootstraps one and keys belong to it.

use atrest_core::orgs::Org;
use atrest_core::roles::Operation;
use atrest_core::{time_fmt, Error};
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::conventions::{ok, path_id, Ctx, Paging};
use crate::errors::ApiResult;
use crate::{AppState, Routes};

pub fn routes() -> Routes {
    Routes::new().get("/orgs", list).get("/orgs/{orgId}", read)
}

fn view(ctx: &Ctx, org: &Org) -> Value {
    json!({
        "id": org.id.to_string(),
        "name": org.name,
        "isDeleted": false,
        "created": time_fmt::format(org.created),
        "links": ctx.self_link(&format!("/orgs/{}", org.id)),
    })
}

async fn list(State(s): State<AppState>, who: Principal, ctx: Ctx, paging: Paging) -> ApiResult<Response> {
    who.require(Operation::ListOrgs, None)?;
    let orgs = s.store.list_orgs(&who.org_id).await?;
    let total = orgs.len() as u64;
    let page: Vec<Value> = orgs
        .iter()
        .skip(paging.page.offset() as usize)
        .take(paging.page.items_per_page as usize)
        .map(|o| view(&ctx, o))
        .collect();
    Ok(ok(paging.list(page, total)))
}

async fn read(State(s): State<AppState>, who: Principal, ctx: Ctx, Path(org): Path<String>) -> ApiResult<Response> {
    let org = path_id("orgId", &org)?;
    who.own_org(&org)?;
    who.require(Operation::ReadOrg, None)?;
    let org = s.store.get_org(&org).await?.ok_or(Error::OrgNotFound { id: org.to_string() })?;
    Ok(ok(view(&ctx, &org)))
}
