//! The data API, `/data/v1/groups/{groupId}/clusters/{clusterName}/action/{action}`: documents in
//! a cluster's encrypted storage, with the same API keys and project data-access roles.

use atrest_core::clusters::{Provider, State as ClusterState};
use atrest_core::roles::Operation;
use atrest_core::Error;
use atrest_dataplane::{DataError, FindOptions};
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::conventions::ok;

/// Data API requests carry documents in bulk: up to 16 MiB per request.
pub const MAX_DATA_BODY: usize = 16 * 1024 * 1024;
use crate::conventions::RequestTarget;
use crate::errors::ApiResult;
use crate::replicas::{self, Forwarded};
use crate::{projects, AppState, Routes};

pub fn routes() -> Routes {
    Routes::new().post("/groups/{groupId}/clusters/{clusterName}/action/{action}", action)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    database: String,
    collection: String,
    #[serde(default)]
    document: Option<Value>,
    #[serde(default)]
    documents: Option<Value>,
    #[serde(default)]
    filter: Option<Value>,
    #[serde(default)]
    update: Option<Value>,
    #[serde(default)]
    sort: Option<Value>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    skip: Option<usize>,
    /// Accepted for compatibility with the Atlas Data API; atrest has one data source per cluster.
    #[serde(default, rename = "dataSource")]
    #[allow(dead_code)]
    data_source: Option<String>,
}

fn data_error(e: DataError) -> Error {
    match e {
        DataError::KeyInaccessible(_) | DataError::KeyUnavailable { .. } => {
            Error::KeyInaccessible { detail: e.to_string() }
        }
        DataError::KeyDenied { .. } | DataError::KeyDestroyed(_) => Error::KeyInaccessible { detail: e.to_string() },
        DataError::InvalidName { .. }
        | DataError::InvalidFilter(_)
        | DataError::InvalidDocument(_)
        | DataError::InvalidUpdate(_)
        | DataError::DuplicateKey(_)
        | DataError::NotFound(_) => Error::DataRequest(e.to_string()),
        DataError::Busy { cluster, reason } => Error::ClusterMoving { name: cluster, detail: reason },
        other => Error::internal(other),
    }
}

async fn action(
    State(s): State<AppState>,
    who: Principal,
    Path((group, name, action)): Path<(String, String, String)>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let method = req.method().clone();
    let target = req.extensions().get::<RequestTarget>().map(|t| t.0.clone()).unwrap_or_default();
    let forwarded = req.extensions().get::<Forwarded>().is_some();
    let bytes = axum::body::to_bytes(req.into_body(), MAX_DATA_BODY).await.map_err(|_| Error::PayloadTooLarge)?;
    let body: ActionBody = crate::conventions::parse_body(&bytes)?;
    let reads = matches!(action.as_str(), "find" | "findOne");
    let op = if reads { Operation::ReadData } else { Operation::WriteData };
    let project = projects::load(&s, &who, op, &group).await?;
    let cluster = s.control.cluster(&project.id, &name).await?;
    if matches!(cluster.state, ClusterState::Creating | ClusterState::Deleting) {
        return Err(Error::ClusterBusy { name: cluster.name, state: cluster.state.as_str().into() }.into());
    }
    if let Some(answer) = replicas::to_owner(&s, &who, &cluster, forwarded, &method, &target, bytes.clone()).await? {
        return Ok(answer);
    }
    let id = cluster.id.to_string();
    if !s.control.data.is_open(&id) {
        let detail = if cluster.provider == Provider::Aws {
            s.control.inaccessible_reason(&project.id)
        } else {
            "the cluster's keys are not loaded yet".into()
        };
        return Err(Error::KeyInaccessible { detail }.into());
    }
    let data = s.control.data.clone();
    let (db, coll) = (body.database.clone(), body.collection.clone());
    let filter = body.filter.clone().unwrap_or_else(|| json!({}));
    let result = tokio::task::spawn_blocking(move || -> Result<Value, Error> {
        let r = match action.as_str() {
            "insertOne" => {
                let doc = body.document.ok_or(Error::MissingAttribute { name: "document".into() })?;
                json!({"insertedId": data.insert_one(&id, &db, &coll, doc).map_err(data_error)?})
            }
            "insertMany" => {
                let docs = body.documents.ok_or(Error::MissingAttribute { name: "documents".into() })?;
                json!({"insertedIds": data.insert_many(&id, &db, &coll, docs).map_err(data_error)?})
            }
            "findOne" => json!({"document": data.find_one(&id, &db, &coll, &filter).map_err(data_error)?}),
            "find" => {
                let mut opts = FindOptions::default();
                if let Some(sort) = body.sort {
                    opts = opts.sort(sort);
                }
                if let Some(l) = body.limit {
                    opts = opts.limit(l);
                }
                if let Some(k) = body.skip {
                    opts = opts.skip(k);
                }
                json!({"documents": data.find(&id, &db, &coll, &filter, &opts).map_err(data_error)?})
            }
            "updateOne" => {
                let update = body.update.ok_or(Error::MissingAttribute { name: "update".into() })?;
                let r = data.update_one(&id, &db, &coll, &filter, &update).map_err(data_error)?;
                json!({"matchedCount": r.matched, "modifiedCount": r.modified})
            }
            "deleteOne" => json!({"deletedCount": data.delete_one(&id, &db, &coll, &filter).map_err(data_error)?}),
            "deleteMany" => json!({"deletedCount": data.delete_many(&id, &db, &coll, &filter).map_err(data_error)?}),
            other => return Err(Error::ResourceNotFound { path: format!("action/{other}") }),
        };
        Ok(r)
    })
    .await
    .map_err(Error::internal)??;
    Ok(ok(result))
}
