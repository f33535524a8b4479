//! The Admin API: Atlas v2 (and v1.0) conventions, authentication, and thin handlers that
//! parse, authorize, ask the domain, commit, and respond.

pub mod api_keys;
pub mod auth;
pub mod cloud_provider_access;
pub mod clusters;
pub mod console;
pub mod conventions;
pub mod data;
pub mod encryption_at_rest;
pub mod errors;
pub mod events;
pub mod oauth;
pub mod openapi;
pub mod orgs;
pub mod private_endpoints;
pub mod projects;
pub mod rate_limit;
pub mod replicas;
pub mod service_accounts;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use atrest_core::Error;
use atrest_keys::Sealer;
use atrest_store::Store;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::MethodFilter;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::json;

use crate::errors::error_response;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub sealer: Arc<Sealer>,
    pub digest: Arc<auth::digest::DigestAuth>,
    pub control: Arc<atrest_control::Control>,
    /// Cookies get `Secure` when the server speaks TLS.
    pub secure_cookies: bool,
    pub limiter: Arc<rate_limit::Limiter>,
    /// Sends a cluster's data requests on to the replica serving it.
    pub forwarder: reqwest::Client,
}

impl AppState {
    /// Plain HTTP with the default rate limits; see [`AppState::with_tls`] and
    /// [`AppState::with_limits`].
    pub fn new(
        store: Arc<dyn Store>,
        sealer: Arc<Sealer>,
        digest: Arc<auth::digest::DigestAuth>,
        control: Arc<atrest_control::Control>,
    ) -> Self {
        let forwarder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap_or_default();
        AppState {
            store,
            sealer,
            digest,
            control,
            secure_cookies: false,
            limiter: Arc::new(rate_limit::Limiter::new(rate_limit::Limits::default())),
            forwarder,
        }
    }

    pub fn with_tls(mut self, tls: bool) -> Self {
        self.secure_cookies = tls;
        self
    }

    pub fn with_limits(mut self, limits: rate_limit::Limits) -> Self {
        self.limiter = Arc::new(rate_limit::Limiter::new(limits));
        self
    }
}

/// Routes and the table of what they are (method, path template), built together: a route is
/// registered only through this builder, so [`route_table`] cannot miss one.
pub struct Routes {
    router: Router<AppState>,
    table: Vec<(&'static str, String)>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Routes { router: Router::new(), table: Vec::new() }
    }

    pub fn on<H, T>(mut self, method: &'static str, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let m = Method::from_bytes(method.as_bytes()).expect("a valid HTTP method");
        let filter = MethodFilter::try_from(m).expect("a routable HTTP method");
        self.router = self.router.route(path, axum::routing::on(filter, handler));
        self.table.push((method, path.to_owned()));
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on("GET", path, handler)
    }
    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on("POST", path, handler)
    }
    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on("PATCH", path, handler)
    }
    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on("DELETE", path, handler)
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    pub fn nest(mut self, prefix: &str, other: Routes) -> Self {
        self.router = self.router.nest(prefix, other.router);
        self.table.extend(other.table.into_iter().map(|(m, p)| (m, format!("{prefix}{p}"))));
        self
    }
}

fn atlas_routes() -> Routes {
    Routes::new()
        .merge(orgs::routes())
        .merge(api_keys::routes())
        .merge(projects::routes())
        .merge(cloud_provider_access::routes())
        .merge(encryption_at_rest::routes())
        .merge(events::routes())
        .merge(private_endpoints::routes())
        .merge(clusters::routes())
        .merge(service_accounts::routes())
}

fn all_routes() -> Routes {
    Routes::new()
        .nest(conventions::V2_PREFIX, atlas_routes())
        .nest(conventions::V1_PREFIX, atlas_routes())
        .nest("/data/v1", data::routes())
        .nest("/api/atrest/v1", clusters::extension_routes())
        .get("/api/atlas/v2/openapi.json", openapi::serve)
        .get("/readyz", readyz)
        .merge(console::routes())
        .merge(oauth::routes())
}

/// Every route the server answers, as (method, path template), from the same builder the router
/// is made of. Public paths (see [`auth::is_public`]) are among them.
pub fn route_table() -> Vec<(&'static str, String)> {
    all_routes().table
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

/// The most request body read (and discarded) before answering 413, so that a client still
/// sending gets the response instead of a reset connection; beyond it the connection is dropped.
const MAX_DRAIN: usize = 64 * 1024 * 1024;

/// The largest request body a route accepts: 16 MiB for the data API, 1 MiB for the rest.
pub fn body_limit(path: &str) -> usize {
    if path.starts_with("/data/") {
        data::MAX_DATA_BODY
    } else {
        conventions::MAX_BODY
    }
}

/// Reads the request body up to the route's limit before anything else looks at it; a larger
/// body (declared or sent) is answered with 413 `PAYLOAD_TOO_LARGE`.
async fn limit_body(req: Request, next: Next) -> Response {
    let max = body_limit(req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (parts, mut body) = req.into_parts();
    let mut buf = bytes::BytesMut::new();
    let mut total: usize = 0;
    let mut over = declared.is_some_and(|n| n > max as u64);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return error_response(&Error::MalformedJson { reason: "the request body could not be read".into() });
        };
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total > max {
                over = true;
                buf = bytes::BytesMut::new();
            } else if !over {
                buf.extend_from_slice(&data);
            }
            if total > MAX_DRAIN {
                break;
            }
        }
    }
    if over {
        let mut resp = error_response(&Error::PayloadTooLarge);
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    next.run(Request::from_parts(parts, Body::from(buf.freeze()))).await
}

pub fn router(state: AppState) -> Router {
    all_routes()
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn(conventions::versioning))
        .layer(from_fn_with_state(state.clone(), rate_limit::limit))
        .layer(from_fn_with_state(state.clone(), auth::authenticate))
        .layer(from_fn(limit_body))
        .layer(from_fn(conventions::envelope_and_pretty))
        .with_state(state)
}

/// How long a client has to send a request's head (request line and headers) once the server
/// starts reading it; a client that stalls longer is disconnected.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, shutdown, HEADER_READ_TIMEOUT, None).await
}

/// How long a client has to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// [`serve`] with a chosen header read timeout, over TLS when `tls` is given. On shutdown it stops
/// accepting, lets requests in flight finish, closes idle connections, and returns once every
/// connection is done.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    header_read_timeout: Duration,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let app = tower::ServiceExt::map_request(router(state), conventions::normalize);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    let shutdown = shutdown;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        while conns.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop_rx.clone();
        let tls = tls.clone();
        conns.spawn(async move {
            match tls {
                None => serve_connection(stream, app, stop, header_read_timeout).await,
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(stream, app, stop, header_read_timeout).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while conns.join_next().await.is_some() {}
    Ok(())
}

async fn serve_connection<S, A>(
    stream: S,
    app: A,
    mut stop: tokio::sync::watch::Receiver<bool>,
    header_read_timeout: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    A: tower::Service<http::Request<Body>, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    A::Future: Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        tower::ServiceExt::oneshot(app.clone(), req.map(Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// A TLS acceptor from PEM files: the certificate chain and its private key.
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_table_is_unique_and_everything_but_readyz_needs_credentials() {
        let table = route_table();
        let mut seen = std::collections::BTreeSet::new();
        for (m, p) in &table {
            assert!(seen.insert((*m, p.clone())), "{m} {p} registered twice");
        }
        let public: Vec<String> =
            table.iter().filter(|(_, p)| auth::is_public(p)).map(|(m, p)| format!("{m} {p}")).collect();
        assert_eq!(
            public,
            [
                "GET /readyz",
                "GET /",
                "GET /console/app.js",
                "GET /console/app.css",
                "POST /console/session",
                "GET /console/session",
                "DELETE /console/session",
                "POST /api/oauth/token",
                "POST /api/oauth/revoke"
            ]
        );
        // The router builds from the same table without panicking on overlaps.
        let _ = all_routes().router;
    }

    #[test]
    fn body_limits() {
        assert_eq!(body_limit("/api/atlas/v2/groups"), 1024 * 1024);
        assert_eq!(body_limit("/data/v1/groups/x/clusters/y/action/find"), 16 * 1024 * 1024);
    }
}
