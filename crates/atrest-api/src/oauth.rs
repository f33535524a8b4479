//! OAuth 2.0 for service accounts: the client-credentials grant (`POST /api/oauth/token`, RFC
//! 6749 §4.4) and token revocation (`POST /api/oauth/revoke`, RFC 7009). These endpoints answer
//! in OAuth's own error format (`{"error": "invalid_client", ...}`), which OAuth client libraries
//! parse; everything else in the API answers in Atlas's.

use atrest_core::service_accounts::{self as sa, ServiceAccount};
use atrest_core::sessions::{Session, SessionKind};
use atrest_core::{time_fmt, Error};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::console::{new_token, token_hash};
use crate::service_accounts::secret_hash;
use crate::{AppState, Routes};

pub fn routes() -> Routes {
    Routes::new().post("/api/oauth/token", token).post("/api/oauth/revoke", revoke)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = (status, axum::Json(json!({"error": error, "error_description": description}))).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"atrest\""));
    }
    resp
}

fn invalid_client() -> Response {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "The client id or secret is wrong, or the secret expired.")
}

/// The client's id and secret: from `Authorization: Basic` (percent-decoded as RFC 6749 §2.3.1
/// asks) or, failing that, from the form.
fn client_credentials(headers: &HeaderMap, form: &[(String, String)]) -> Option<(String, Zeroizing<String>)> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .map(Zeroizing::new)
        .and_then(|raw| {
            let s = std::str::from_utf8(&raw).ok()?;
            let (id, secret) = s.split_once(':')?;
            let decode = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " ")).decode_utf8().ok().map(|c| c.into_owned())
            };
            Some((decode(id)?, Zeroizing::new(decode(secret)?)))
        });
    from_header.or_else(|| {
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Some((get("client_id")?, Zeroizing::new(get("client_secret")?)))
    })
}

/// The account whose live secret is `secret`, marking that secret used.
async fn authenticate_client(s: &AppState, client_id: &str, secret: &str) -> Result<Option<ServiceAccount>, Error> {
    let Some(id) = sa::parse_client_id(client_id) else { return Ok(None) };
    let presented = secret_hash(secret);
    let Some(mut account) = s.store.get_service_account(&id).await? else { return Ok(None) };
    let now = time_fmt::now();
    let Some(used) =
        sa::matching_secret(&account, now, |h| bool::from(h.as_bytes().ct_eq(presented.as_bytes()))).map(|s| s.id)
    else {
        return Ok(None);
    };
    if let Some(secret) = account.secrets.iter_mut().find(|s| s.id == used) {
        secret.last_used = Some(now);
    }
    s.store.update_service_account(&account).await?;
    Ok(Some(account))
}

fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, Response> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Send the parameters as application/x-www-form-urlencoded.",
        ));
    }
    Ok(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
}

async fn token(State(s): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let form = match parse_form(&headers, &body) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    match form.iter().find(|(k, _)| k == "grant_type").map(|(_, v)| v.as_str()) {
        Some("client_credentials") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Only client_credentials is supported.",
            )
        }
        None => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is required."),
    }
    let Some((client_id, secret)) = client_credentials(&headers, &form) else { return invalid_client() };
    let account = match authenticate_client(&s, &client_id, &secret).await {
        Ok(Some(a)) => a,
        Ok(None) => return invalid_client(),
        Err(e) => return crate::errors::error_response(&e),
    };
    let token = new_token();
    let session = Session::new(token_hash(&token), SessionKind::OAuth, account.id, time_fmt::now());
    if let Err(e) = s.store.insert_session(&session).await {
        return crate::errors::error_response(&e);
    }
    tracing::info!(client_id = %client_id, "access token issued");
    let mut resp = axum::Json(json!({
        "access_token": token.as_str(),
        "expires_in": SessionKind::OAuth.lifetime().whole_seconds(),
        "token_type": "Bearer",
    }))
    .into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Revokes an access token of the calling client. As RFC 7009 asks, an unknown token is not an
/// error: the answer is 200 either way.
async fn revoke(State(s): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let form = match parse_form(&headers, &body) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let Some((client_id, secret)) = client_credentials(&headers, &form) else { return invalid_client() };
    let account = match authenticate_client(&s, &client_id, &secret).await {
        Ok(Some(a)) => a,
        Ok(None) => return invalid_client(),
        Err(e) => return crate::errors::error_response(&e),
    };
    let Some(token) = form.iter().find(|(k, _)| k == "token").map(|(_, v)| Zeroizing::new(v.clone())) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is required.");
    };
    let hash = token_hash(&token);
    match s.store.get_session(&hash).await {
        Ok(Some(session)) if session.kind == SessionKind::OAuth && session.subject == account.id => {
            if let Err(e) = s.store.delete_session(&hash).await {
                return crate::errors::error_response(&e);
            }
        }
        Ok(_) => {}
        Err(e) => return crate::errors::error_response(&e),
    }
    StatusCode::OK.into_response()
}

/// Authenticates `Authorization: Bearer <token>`.
pub async fn bearer_principal(s: &AppState, token: &str) -> Result<crate::auth::Principal, Error> {
    let session = s.store.get_session(&token_hash(token)).await?;
    let Some(session) = session.filter(|x| x.is_live(SessionKind::OAuth, time_fmt::now())) else {
        return Err(Error::Unauthenticated { stale: false });
    };
    let account =
        s.store.get_service_account(&session.subject).await?.ok_or(Error::Unauthenticated { stale: false })?;
    Ok(account.into())
}
