//! Requests one replica forwards to another: a cluster's data plane is served by the replica
//! holding its lease, so a data request that reached another replica is authenticated and
//! authorized there, then sent on to the holder with a MAC (under a key derived from the server
//! secret the replicas share) naming the API key it acts for. The holder serves it as that key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atrest_control::Owner;
use atrest_core::clusters::Cluster;
use atrest_core::{Error, ObjectId};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::AppState;

const KEY: &str = "x-atrest-forwarded-key";
const AT: &str = "x-atrest-forwarded-at";
const MAC: &str = "x-atrest-forwarded-mac";
/// How old a forwarded request may be (replicas' clocks agree within this).
const MAX_AGE: Duration = Duration::from_secs(60);

/// Marks a request that another replica forwarded: it is not forwarded again.
#[derive(Clone, Copy, Debug)]
pub struct Forwarded;

fn mac(state: &AppState, method: &str, target: &str, key: &str, at: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(state.sealer.forwarding_key()).expect("any key length");
    for part in [method.as_bytes(), target.as_bytes(), key.as_bytes(), at.as_bytes()] {
        m.update(part);
        m.update(b"\n");
    }
    m.update(hex::encode(Sha256::digest(body)).as_bytes());
    m
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub fn is_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(MAC)
}

/// The API key a forwarded request acts for, if its MAC and age check out.
pub fn verify(state: &AppState, method: &Method, target: &str, headers: &HeaderMap, body: &[u8]) -> Option<ObjectId> {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    let (key, at, given) = (get(KEY)?, get(AT)?, hex::decode(get(MAC)?).ok()?);
    let sent: u64 = at.parse().ok()?;
    if now_secs().abs_diff(sent) > MAX_AGE.as_secs() {
        return None;
    }
    mac(state, method.as_str(), target, key, at, body).verify_slice(&given).ok()?;
    ObjectId::parse(key)
}

/// Where a request for `cluster`'s data goes: `None` to serve it here (its keys opened if need
/// be), or the holder's answer.
pub async fn to_owner(
    state: &AppState,
    who: &Principal,
    cluster: &Cluster,
    forwarded: bool,
    method: &Method,
    target: &str,
    body: Bytes,
) -> Result<Option<Response>, Error> {
    match state.control.cluster_owner(cluster).await? {
        Owner::Here => {
            state.control.ensure_open(cluster).await.ok();
            Ok(None)
        }
        Owner::There(_) if forwarded => {
            Err(Error::ClusterMoving { name: cluster.name.clone(), detail: "another replica took it over".into() })
        }
        Owner::There(url) => forward(state, who, &cluster.name, &url, method, target, body).await.map(Some),
    }
}

async fn forward(
    state: &AppState,
    who: &Principal,
    cluster: &str,
    owner: &str,
    method: &Method,
    target: &str,
    body: Bytes,
) -> Result<Response, Error> {
    let (key, at) = (who.key_id.to_string(), now_secs().to_string());
    let tag = hex::encode(mac(state, method.as_str(), target, &key, &at, &body).finalize().into_bytes());
    let unreachable = |e: reqwest::Error| Error::ClusterMoving {
        name: cluster.to_owned(),
        detail: format!("the replica serving it did not answer: {e}"),
    };
    let answer = state
        .forwarder
        .request(method.clone(), format!("{}{target}", owner.trim_end_matches('/')))
        .header(KEY, &key)
        .header(AT, &at)
        .header(MAC, tag)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(unreachable)?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = answer.headers().get("content-type").and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
    let bytes = answer.bytes().await.map_err(unreachable)?;
    let mut resp = (status, bytes).into_response();
    if let Some(ct) = content_type {
        resp.headers_mut().insert(axum::http::header::CONTENT_TYPE, ct);
    }
    Ok(resp)
}
