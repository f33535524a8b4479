//! Who is calling: Digest authentication on every API path, and the one authorization check.

pub mod digest;

use atrest_core::roles::{Grants, Operation};
use atrest_core::{Error, ObjectId};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::conventions::RequestTarget;
use crate::errors::{error_response, ApiError};
use crate::AppState;
use digest::{Outcome, Verifier};

/// The authenticated caller, with the roles it holds right now.
#[derive(Clone, Debug)]
pub struct Principal {
    pub key_id: ObjectId,
    pub org_id: ObjectId,
    pub public_key: String,
    pub grants: Grants,
}

impl From<atrest_core::api_keys::ApiKey> for Principal {
    fn from(key: atrest_core::api_keys::ApiKey) -> Self {
        Principal { key_id: key.id, org_id: key.org_id, public_key: key.public_key, grants: key.grants }
    }
}

impl From<atrest_core::service_accounts::ServiceAccount> for Principal {
    fn from(account: atrest_core::service_accounts::ServiceAccount) -> Self {
        Principal {
            key_id: account.id,
            public_key: account.client_id(),
            org_id: account.org_id,
            grants: account.grants,
        }
    }
}

impl Principal {
    /// The one authorization decision every handler makes, from `roles::requirement`'s table.
    pub fn require(&self, op: Operation, group: Option<&ObjectId>) -> Result<(), ApiError> {
        if self.grants.allows(op, group) {
            Ok(())
        } else {
            Err(Error::AccessForbidden.into())
        }
    }

    /// An organization id from a path must be the caller's own; others do not exist for it.
    pub fn own_org(&self, org: &ObjectId) -> Result<(), ApiError> {
        if *org == self.org_id {
            Ok(())
        } else {
            Err(Error::OrgNotFound { id: org.to_string() }.into())
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Principal>().cloned().ok_or(ApiError(Error::Unauthenticated { stale: false }))
    }
}

/// Paths that need no Admin API credentials: readiness, the console's assets and sign-in, and the
/// OAuth endpoints (which authenticate the client themselves).
pub fn is_public(path: &str) -> bool {
    path.starts_with("/api/oauth/") || !(path.starts_with("/api/") || path.starts_with("/data/"))
}

/// Reads and drops the body of a request answered with 401, so that a client still sending it
/// (every Digest client sends its first request unauthenticated) gets the challenge instead of a
/// broken connection.
async fn drain(req: Request) {
    let _ = axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024).await;
}

/// The console's requests name themselves so that a 401 carries no Digest challenge, which would
/// make the browser open its own credentials dialog.
const CONSOLE_MARK: (&str, &str) = ("x-requested-with", "atrest-console");

fn challenge(state: &AppState, req: &Request, stale: bool) -> Response {
    let mut resp = error_response(&Error::Unauthenticated { stale });
    let from_console = req.headers().get(CONSOLE_MARK.0).is_some_and(|v| v == CONSOLE_MARK.1);
    if !from_console {
        if let Ok(v) = HeaderValue::from_str(&state.digest.challenge(stale)) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    resp
}

/// Answers 401 after reading the body, so a client still sending it gets the answer.
async fn refuse(state: &AppState, req: Request, stale: bool) -> Response {
    let resp = challenge(state, &req, stale);
    drain(req).await;
    resp
}

fn target_of(req: &Request) -> String {
    req.extensions()
        .get::<RequestTarget>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default())
}

/// The API key or service account with this id, as a principal.
async fn principal_of(state: &AppState, id: &ObjectId) -> Result<Option<Principal>, Error> {
    if let Some(key) = state.store.get_api_key(id).await? {
        return Ok(Some(key.into()));
    }
    Ok(state.store.get_service_account(id).await?.map(Principal::from))
}

/// A request another replica authenticated and forwarded: served as the caller it names.
async fn authenticate_forwarded(state: AppState, req: Request, next: Next) -> Response {
    let target = target_of(&req);
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::data::MAX_DATA_BODY).await else {
        return error_response(&Error::PayloadTooLarge);
    };
    let Some(key_id) = crate::replicas::verify(&state, &parts.method, &target, &parts.headers, &bytes) else {
        return error_response(&Error::Unauthenticated { stale: false });
    };
    let principal = match principal_of(&state, &key_id).await {
        Ok(Some(p)) => p,
        Ok(None) => return error_response(&Error::Unauthenticated { stale: false }),
        Err(e) => return error_response(&e),
    };
    parts.extensions.insert(crate::replicas::Forwarded);
    parts.extensions.insert(principal);
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    if crate::replicas::is_forwarded(req.headers()) {
        return authenticate_forwarded(state, req, next).await;
    }
    if req.headers().get(header::AUTHORIZATION).is_none() {
        if let Some(token) = crate::console::session_cookie(req.headers()) {
            let (method, headers) = (req.method().clone(), req.headers().clone());
            return match crate::console::authenticate(&state, &method, &headers, &token).await {
                Ok(principal) => {
                    req.extensions_mut().insert(principal);
                    next.run(req).await
                }
                Err(Error::Unauthenticated { stale }) => refuse(&state, req, stale).await,
                Err(e) => error_response(&e),
            };
        }
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(|t| zeroize::Zeroizing::new(t.trim().to_owned()));
    if let Some(token) = bearer {
        return match crate::oauth::bearer_principal(&state, &token).await {
            Ok(principal) => {
                req.extensions_mut().insert(principal);
                next.run(req).await
            }
            Err(Error::Unauthenticated { .. }) => {
                drain(req).await;
                let mut resp = error_response(&Error::Unauthenticated { stale: false });
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"atrest\", error=\"invalid_token\""),
                );
                resp
            }
            Err(e) => error_response(&e),
        };
    }
    let Some(creds) =
        req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(digest::parse_authorization)
    else {
        return refuse(&state, req, false).await;
    };
    let stored = match state.store.find_api_key_by_public(&creds.username).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return refuse(&state, req, false).await,
        Err(e) => return error_response(&e),
    };
    let verifier = match state.sealer.open(&stored.sealed_verifier, stored.key.id.to_string().as_bytes()) {
        Ok(bytes) => match Verifier::from_bytes(&bytes) {
            Some(v) => v,
            None => return error_response(&Error::internal("stored verifier is corrupt")),
        },
        Err(e) => return error_response(&Error::internal(e)),
    };
    let target = target_of(&req);
    match state.digest.verify(&creds, &verifier, req.method().as_str(), &target) {
        Outcome::Accepted => {}
        Outcome::Stale => return refuse(&state, req, true).await,
        Outcome::Rejected => return refuse(&state, req, false).await,
    }
    req.extensions_mut().insert(Principal::from(stored.key));
    next.run(req).await
}
