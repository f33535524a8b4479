//! Atlas's conventions, applied to every request in one place: versioned media types, the
//! envelope and pretty flags, trailing slashes, JSON bodies with unknown fields refused,
//! paging and links.

use std::collections::HashMap;

use atrest_core::paging::{self, Page};
use atrest_core::Error;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::errors::{error_response, ApiError};

pub const MAX_BODY: usize = 1024 * 1024;
pub const V2_PREFIX: &str = "/api/atlas/v2";
pub const V1_PREFIX: &str = "/api/atlas/v1.0";

/// The request target as the client sent it, before trailing-slash normalization; Digest
/// responses are computed over it.
#[derive(Clone, Debug)]
pub struct RequestTarget(pub String);

/// The resource version a v2 request resolved to, e.g. `2023-01-01`.
#[derive(Clone, Copy, Debug)]
pub struct ApiVersion(pub &'static str);

/// Strips a trailing `/` (routes match without it) and records the original target.
pub fn normalize(mut req: Request) -> Request {
    let target = req.uri().path_and_query().map(|pq| pq.as_str().to_owned()).unwrap_or_else(|| "/".into());
    req.extensions_mut().insert(RequestTarget(target));
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let new = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = new.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

pub fn query_map(uri: &Uri) -> HashMap<String, String> {
    uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

/// Resource versions by route: every resource exists at 2023-01-01 but service accounts, which
/// start at 2024-08-05; clusters have later ones.
fn versions_for(route: &str) -> &'static [&'static str] {
    if route.contains("/clusters") {
        &["2023-01-01", "2023-02-01", "2024-08-05", "2024-10-23"]
    } else if route.contains("/serviceAccounts") {
        &["2024-08-05"]
    } else {
        &["2023-01-01"]
    }
}

fn requested_date(accept: &str) -> Option<&str> {
    accept.split(',').find_map(|range| {
        let media = range.split(';').next()?.trim();
        let date = media.strip_prefix("application/vnd.atlas.")?.strip_suffix("+json")?;
        Some(date)
    })
}

fn valid_date(d: &str) -> bool {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    d.len() == 10 && time::Date::parse(d, &fmt).is_ok()
}

/// Resolves a requested date to the newest version at or before it.
pub fn resolve(route: &str, requested: &str) -> Option<&'static str> {
    if !valid_date(requested) {
        return None;
    }
    versions_for(route).iter().rev().find(|v| **v <= requested).copied()
}

/// v2: demands a versioned `Accept` and labels success responses with the resolved version.
/// v1.0: plain JSON, as the product page's first curl call uses.
pub async fn versioning(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if !path.starts_with(V2_PREFIX) {
        let mut resp = next.run(req).await;
        if path.starts_with(V1_PREFIX) && resp.status().is_success() && resp.status() != StatusCode::NO_CONTENT {
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        return resp;
    }
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or(path);
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let Some(date) = requested_date(&accept) else {
        return error_response(&Error::InvalidVersionDate { requested: accept });
    };
    let Some(version) = resolve(&route, date) else {
        return error_response(&Error::InvalidVersionDate { requested: date.to_owned() });
    };
    req.extensions_mut().insert(ApiVersion(version));
    let mut resp = next.run(req).await;
    if resp.status().is_success() {
        let ct = format!("application/vnd.atlas.{version}+json;charset=utf-8");
        if let Ok(v) = HeaderValue::from_str(&ct) {
            resp.headers_mut().insert(header::CONTENT_TYPE, v);
        }
    }
    resp
}

/// `?envelope=true` and `?pretty=true`, on every JSON response including errors.
pub async fn envelope_and_pretty(req: Request, next: Next) -> Response {
    let q = query_map(req.uri());
    let flag = |name: &str| -> Result<bool, Error> {
        match q.get(name) {
            None => Ok(false),
            Some(v) => paging::parse_bool(v, name),
        }
    };
    let (envelope, pretty) = match (flag("envelope"), flag("pretty")) {
        (Ok(e), Ok(p)) => (e, p),
        (Err(e), _) | (_, Err(e)) => return error_response(&e),
    };
    let resp = next.run(req).await;
    if !envelope && !pretty {
        return resp;
    }
    let is_json =
        resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.contains("json"));
    if !is_json || resp.status() == StatusCode::NO_CONTENT {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return error_response(&Error::internal("response body unreadable"));
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if envelope {
        let status = parts.status.as_u16();
        value = match value {
            Value::Object(mut map) if map.contains_key("results") => {
                map.insert("status".into(), json!(status));
                Value::Object(map)
            }
            other => json!({ "status": status, "content": other }),
        };
    }
    let text = if pretty { serde_json::to_string_pretty(&value) } else { serde_json::to_string(&value) };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(text.unwrap_or_default()))
}

/// A JSON body: malformed → `MALFORMED_JSON`, unknown fields → `INVALID_ATTRIBUTE`, a missing
/// required field → `MISSING_ATTRIBUTE`, a bad enum value → `INVALID_ENUM_VALUE`.
pub struct AtlasJson<T>(pub T);

pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let value: Value = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::MalformedJson { reason: "the request body is empty".into() });
    } else {
        serde_json::from_slice(bytes).map_err(|e| Error::MalformedJson { reason: e.to_string() })?
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        // The path names the offending field itself, except for a missing field, where it
        // names the object that lacks it.
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        let quoted = msg.split('`').nth(1).unwrap_or("").to_owned();
        if msg.starts_with("unknown field") {
            Error::InvalidAttribute { name: path, reason: "this attribute is not recognized".into() }
        } else if msg.starts_with("missing field") {
            let name = if path == "." { quoted } else { format!("{path}.{quoted}") };
            Error::MissingAttribute { name }
        } else if msg.starts_with("unknown variant") {
            Error::InvalidEnumValue { field: path, value: quoted }
        } else {
            Error::InvalidAttribute { name: path, reason: msg }
        }
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AtlasJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes: Bytes = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
            Ok(b) => b,
            Err(_) => return Err(Error::PayloadTooLarge.into()),
        };
        Ok(AtlasJson(parse_body(&bytes)?))
    }
}

/// Paging parameters of a list request, plus what its links need.
pub struct Paging {
    pub page: Page,
    base: String,
    path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let q = query_map(&parts.uri);
        let page = Page::parse(
            q.get("pageNum").map(String::as_str),
            q.get("itemsPerPage").map(String::as_str),
            q.get("includeCount").map(String::as_str),
        )?;
        Ok(Paging { page, base: base_url(parts), path: original_path(parts) })
    }
}

impl Paging {
    fn link(&self, page_num: u64, rel: &str) -> Value {
        json!({
            "href": format!("{}{}?pageNum={page_num}&itemsPerPage={}", self.base, self.path, self.page.items_per_page),
            "rel": rel,
        })
    }

    /// `{links, results, totalCount}` with self, previous and next links.
    pub fn list(&self, results: Vec<Value>, total: u64) -> Value {
        let mut links = vec![];
        if self.page.page_num > 1 {
            links.push(self.link(self.page.page_num - 1, "previous"));
        }
        links.push(self.link(self.page.page_num, "self"));
        if self.page.has_next(total) {
            links.push(self.link(self.page.page_num + 1, "next"));
        }
        let mut body = json!({ "links": links, "results": results });
        if self.page.include_count {
            body["totalCount"] = json!(total);
        }
        body
    }
}

/// The full path as routed (nested routers see only their suffix in `parts.uri`).
fn original_path(parts: &Parts) -> String {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.0.path().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned())
}

/// `http://host` of the request, for `links`.
pub fn base_url(parts: &Parts) -> String {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Links and the API flavour a handler needs to render one entity.
pub struct Ctx {
    pub base: String,
    pub prefix: &'static str,
    /// The resource version a v2 request resolved to; `None` on the v1.0 surface.
    pub version: Option<&'static str>,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let prefix = if original_path(parts).starts_with(V1_PREFIX) { V1_PREFIX } else { V2_PREFIX };
        let version = parts.extensions.get::<ApiVersion>().map(|v| v.0);
        Ok(Ctx { base: base_url(parts), prefix, version })
    }
}

impl Ctx {
    pub fn self_link(&self, rest: &str) -> Value {
        json!([{ "href": format!("{}{}{rest}", self.base, self.prefix), "rel": "self" }])
    }
}

pub fn ok(value: Value) -> Response {
    axum::Json(value).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A path id that must be 24 lowercase hex characters.
pub fn path_id(name: &str, value: &str) -> Result<atrest_core::ObjectId, Error> {
    atrest_core::ObjectId::parse(value)
        .ok_or_else(|| Error::InvalidPathParameter { name: name.into(), value: value.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_resolution() {
        assert_eq!(resolve("/api/atlas/v2/groups", "2024-11-13"), Some("2023-01-01"));
        assert_eq!(resolve("/api/atlas/v2/groups", "2022-12-31"), None);
        assert_eq!(resolve("/api/atlas/v2/groups", "2023-13-01"), None);
        assert_eq!(resolve("/api/atlas/v2/groups/{groupId}/clusters", "2024-09-01"), Some("2024-08-05"));
        assert_eq!(
            requested_date("application/json, application/vnd.atlas.2023-01-01+json;charset=utf-8"),
            Some("2023-01-01")
        );
        assert_eq!(requested_date("*/*"), None);
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        kind: Option<Kind>,
    }

    #[derive(serde::Deserialize, Debug)]
    enum Kind {
        A,
    }

    #[test]
    fn body_errors_are_classified() {
        assert!(matches!(parse_body::<Body>(b"{"), Err(Error::MalformedJson { .. })));
        assert!(matches!(parse_body::<Body>(b""), Err(Error::MalformedJson { .. })));
        assert_eq!(
            parse_body::<Body>(br#"{"name":"x","nmae":1}"#).unwrap_err(),
            Error::InvalidAttribute { name: "nmae".into(), reason: "this attribute is not recognized".into() }
        );
        assert_eq!(parse_body::<Body>(br#"{}"#).unwrap_err(), Error::MissingAttribute { name: "name".into() });
        assert_eq!(
            parse_body::<Body>(br#"{"name":"x","kind":"B"}"#).unwrap_err(),
            Error::InvalidEnumValue { field: "kind".into(), value: "B".into() }
        );
        assert!(
            matches!(parse_body::<Body>(br#"{"name":5}"#), Err(Error::InvalidAttribute { name, .. }) if name == "name")
        );
    }
}
