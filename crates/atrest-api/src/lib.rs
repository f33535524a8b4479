//! The Admin API: Atlas v2 (and v1.0) conventions, authentication, and thin handlers that
//! parse, authorize, ask the domain, commit, and respond.

pub mod api_keys;
pub mod auth;
pub mod cloud_provider_access;
pub mod clusters;
pub mod conventions;
pub mod data;
pub mod encryption_at_rest;
pub mod errors;
pub mod events;
pub mod orgs;
pub mod private_endpoints;
pub mod projects;

use std::future::Future;
use std::sync::Arc;

use atrest_core::Error;
use atrest_keys::Sealer;
use atrest_store::Store;
use axum::extract::{Request, State};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::errors::error_response;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub sealer: Arc<Sealer>,
    pub digest: Arc<auth::digest::DigestAuth>,
    pub control: Arc<atrest_control::Control>,
}

fn atlas_routes() -> Router<AppState> {
    Router::new()
        .merge(orgs::routes())
        .merge(api_keys::routes())
        .merge(projects::routes())
        .merge(cloud_provider_access::routes())
        .merge(encryption_at_rest::routes())
        .merge(events::routes())
        .merge(private_endpoints::routes())
        .merge(clusters::routes())
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.get_meta("bootstrapped_org").await {
        Ok(_) => conventions::ok(json!({ "status": "ready" })),
        Err(e) => error_response(&e),
    }
}

async fn not_found(req: Request) -> Response {
    error_response(&Error::ResourceNotFound { path: req.uri().path().to_owned() })
}

async fn method_not_allowed(req: Request) -> Response {
    error_response(&Error::MethodNotAllowed { method: req.method().to_string(), path: req.uri().path().to_owned() })
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .nest(conventions::V2_PREFIX, atlas_routes())
        .nest(conventions::V1_PREFIX, atlas_routes())
        .nest("/data/v1", data::routes())
        .nest("/api/atrest/v1", clusters::extension_routes())
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(conventions::versioning))
        .layer(from_fn_with_state(state.clone(), auth::authenticate))
        .layer(from_fn(conventions::envelope_and_pretty))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = tower::ServiceExt::map_request(router(state), conventions::normalize);
    axum::serve(listener, axum::ServiceExt::<Request>::into_make_service(app)).with_graceful_shutdown(shutdown).await
}
