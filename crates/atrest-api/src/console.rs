//! The web console: its assets, embedded in the binary, and its sign-in. Once signed in, the
//! console calls the same Admin API as every other client, authenticated by a session cookie
//! (`HttpOnly`, `SameSite=Strict`) plus, on every state change, an `X-CSRF-Token` header that only
//! a page of this origin can know.

use atrest_core::sessions::{Session, SessionKind};
use atrest_core::Error;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::auth::{digest::Verifier, Principal};
use crate::conventions::{ok, parse_body};
use crate::errors::ApiResult;
use crate::{AppState, Routes};

pub const COOKIE: &str = "atrest_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

const INDEX_HTML: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const APP_CSS: &str = include_str!("../console/app.css");

/// The page may load and call nothing but this origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn routes() -> Routes {
    Routes::new()
        .get("/", index)
        .get("/console/app.js", app_js)
        .get("/console/app.css", app_css)
        .post("/console/session", sign_in)
        .get("/console/session", current)
        .delete("/console/session", sign_out)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    resp
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random bearer token: 256 bits, URL-safe.
pub fn new_token() -> Zeroizing<String> {
    let raw = Zeroizing::new(rand::random::<[u8; 32]>());
    Zeroizing::new(URL_SAFE_NO_PAD.encode(*raw))
}

/// The session's anti-forgery token: a MAC keyed by the session token, which lives only in the
/// `HttpOnly` cookie, so a page of another origin can neither read nor compute it.
fn csrf_token(session_token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(session_token.as_bytes()).expect("any key length");
    mac.update(b"atrest console csrf v1");
    hex::encode(mac.finalize().into_bytes())
}

pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

fn set_cookie(resp: &mut Response, value: &str, max_age: i64, secure: bool) {
    let cookie = format!(
        "{COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A request that changes state must come from a page of this origin: browsers send `Origin`
/// (and `Sec-Fetch-Site`) on such requests, and other origins cannot set custom headers without
/// a CORS preflight, which atrest never grants.
fn same_origin(headers: &HeaderMap) -> Result<(), Error> {
    let refuse = |reason: &str| Err(Error::CsrfRejected { reason: reason.to_owned() });
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" && site != "none" {
            return refuse("the request came from another site");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
        if origin_host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
            return refuse("the request's Origin is not this server");
        }
    }
    Ok(())
}

/// Authenticates an Admin API request carrying the console's session cookie.
pub async fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    token: &str,
) -> Result<Principal, Error> {
    Ok(session_of(state, method, headers, token).await?.0)
}

/// The live session of `token` and its key's principal, checking CSRF on state changes.
async fn session_of(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    token: &str,
) -> Result<(Principal, Session), Error> {
    let session = state.store.get_session(&token_hash(token)).await?;
    let Some(session) = session.filter(|s| s.is_live(SessionKind::Console, OffsetDateTime::now_utc())) else {
        return Err(Error::Unauthenticated { stale: false });
    };
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        same_origin(headers)?;
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if sent.is_empty() {
            return Err(Error::CsrfRejected { reason: "the X-CSRF-Token header is missing".into() });
        }
        if !bool::from(csrf_token(token).as_bytes().ct_eq(sent.as_bytes())) {
            return Err(Error::CsrfRejected { reason: "the X-CSRF-Token header does not match the session".into() });
        }
    }
    let key = state.store.get_api_key(&session.subject).await?.ok_or(Error::Unauthenticated { stale: false })?;
    Ok((key.into(), session))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SignIn {
    public_key: String,
    private_key: String,
}

fn session_body(principal: &Principal, token: &str, session: &Session) -> serde_json::Value {
    json!({
        "publicKey": principal.public_key,
        "orgId": principal.org_id.to_string(),
        "csrfToken": csrf_token(token),
        "expires": atrest_core::time_fmt::format(session.expires),
    })
}

/// `POST /console/session {publicKey, privateKey}`: checks the key pair against the sealed Digest
/// verifier and starts a session.
async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> ApiResult<Response> {
    same_origin(&headers)?;
    let form: SignIn = parse_body(&body)?;
    let private_key = Zeroizing::new(form.private_key);
    let stored = state.store.find_api_key_by_public(&form.public_key).await?;
    // The same work whether or not the key exists, so timing does not tell which part was wrong.
    let presented = Verifier::new(&form.public_key, &private_key);
    let matches = match &stored {
        Some(stored) => {
            let bytes = state
                .sealer
                .open(&stored.sealed_verifier, stored.key.id.to_string().as_bytes())
                .map_err(Error::internal)?;
            let verifier = Verifier::from_bytes(&bytes).ok_or_else(|| Error::internal("stored verifier is corrupt"))?;
            bool::from(verifier.ha1_sha256.as_bytes().ct_eq(presented.ha1_sha256.as_bytes()))
        }
        None => false,
    };
    let Some(stored) = stored.filter(|_| matches) else {
        return Err(Error::WrongCredentials.into());
    };
    let token = new_token();
    let now = OffsetDateTime::now_utc();
    let session = Session::new(token_hash(&token), SessionKind::Console, stored.key.id, now);
    state.store.insert_session(&session).await?;
    let principal = Principal::from(stored.key);
    let mut resp = ok(session_body(&principal, &token, &session));
    set_cookie(&mut resp, &token, SessionKind::Console.lifetime().whole_seconds(), state.secure_cookies);
    tracing::info!(public_key = %principal.public_key, "console sign-in");
    Ok(resp)
}

/// `GET /console/session`: who is signed in, with the CSRF token for this page load.
async fn current(State(state): State<AppState>, method: Method, headers: HeaderMap) -> ApiResult<Response> {
    let token = session_cookie(&headers).ok_or(Error::Unauthenticated { stale: false })?;
    let (principal, session) = session_of(&state, &method, &headers, &token).await?;
    Ok(ok(session_body(&principal, &token, &session)))
}

/// `DELETE /console/session`: signs out (needs the CSRF token, like every state change).
async fn sign_out(State(state): State<AppState>, method: Method, headers: HeaderMap) -> ApiResult<Response> {
    let token = session_cookie(&headers).ok_or(Error::Unauthenticated { stale: false })?;
    authenticate(&state, &method, &headers, &token).await?;
    state.store.delete_session(&token_hash(&token)).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut resp, "", 0, state.secure_cookies);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; atrest_session=abc; b=2"));
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("atrest_session="));
        assert_eq!(session_cookie(&h), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_are_stable() {
        assert_eq!(csrf_token("a"), csrf_token("a"));
        assert_ne!(csrf_token("a"), csrf_token("b"));
    }

    #[test]
    fn cross_origin_state_changes_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h).is_ok());
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(same_origin(&h).is_err());
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(same_origin(&h).is_err());
    }
}
