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

/// Paths that need no credentials: readiness and (later) the token endpoint and console assets.
pub fn is_public(path: &str) -> bool {
    !(path.starts_with("/api/") || path.starts_with("/data/"))
}

/// Reads and drops the body of a request answered with 401, so that a client still sending it
/// (every Digest client sends its first request unauthenticated) gets the challenge instead of a
/// broken connection.
async fn drain(req: Request) {
    let _ = axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024).await;
}

fn challenge(state: &AppState, stale: bool) -> Response {
    let mut resp = error_response(&Error::Unauthenticated { stale });
    if let Ok(v) = HeaderValue::from_str(&state.digest.challenge(stale)) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn target_of(req: &Request) -> String {
    req.extensions()
        .get::<RequestTarget>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default())
}

/// A request another replica authenticated and forwarded: served as the API key it names.
async fn authenticate_forwarded(state: AppState, req: Request, next: Next) -> Response {
    let target = target_of(&req);
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::data::MAX_DATA_BODY).await else {
        return error_response(&Error::PayloadTooLarge);
    };
    let Some(key_id) = crate::replicas::verify(&state, &parts.method, &target, &parts.headers, &bytes) else {
        return challenge(&state, false);
    };
    let key = match state.store.get_api_key(&key_id).await {
        Ok(Some(key)) => key,
        Ok(None) => return challenge(&state, false),
        Err(e) => return error_response(&e),
    };
    parts.extensions.insert(crate::replicas::Forwarded);
    parts.extensions.insert(Principal {
        key_id: key.id,
        org_id: key.org_id,
        public_key: key.public_key,
        grants: key.grants,
    });
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    if crate::replicas::is_forwarded(req.headers()) {
        return authenticate_forwarded(state, req, next).await;
    }
    let Some(creds) =
        req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).and_then(digest::parse_authorization)
    else {
        drain(req).await;
        return challenge(&state, false);
    };
    let stored = match state.store.find_api_key_by_public(&creds.username).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            drain(req).await;
            return challenge(&state, false);
        }
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
        Outcome::Stale => {
            drain(req).await;
            return challenge(&state, true);
        }
        Outcome::Rejected => {
            drain(req).await;
            return challenge(&state, false);
        }
    }
    let key = stored.key;
    req.extensions_mut().insert(Principal {
        key_id: key.id,
        org_id: key.org_id,
        public_key: key.public_key,
        grants: key.grants,
    });
    next.run(req).await
}
