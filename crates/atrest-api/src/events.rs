//! `/groups/{groupId}/events`: the project's append-only events log, newest first.

use atrest_core::events::Event;
use atrest_core::roles::Operation;
use atrest_core::time_fmt;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::conventions::{ok, Ctx, Paging};
use crate::errors::ApiResult;
use crate::{projects, AppState, Routes};

pub fn routes() -> Routes {
    Routes::new().get("/groups/{groupId}/events", list)
}

fn view(ctx: &Ctx, e: &Event) -> Value {
    let mut v = json!({
        "id": e.id.to_string(),
        "eventTypeName": e.event_type,
        "created": time_fmt::format(e.created),
        "groupId": e.group_id.to_string(),
        "isGlobalAdmin": false,
        "links": ctx.self_link(&format!("/groups/{}/events/{}", e.group_id, e.id)),
    });
    if let (Some(obj), Some(details)) = (v.as_object_mut(), e.details.as_object()) {
        for (k, val) in details {
            obj.entry(k.clone()).or_insert(val.clone());
        }
    }
    v
}

async fn list(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    paging: Paging,
    Path(group): Path<String>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ListEvents, &group).await?;
    let (events, total) = s.store.list_events(&project.id, &paging.page).await?;
    Ok(ok(paging.list(events.iter().map(|e| view(&ctx, e)).collect(), total)))
}
