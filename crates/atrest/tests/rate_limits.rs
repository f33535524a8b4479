//! Admin API rate limits: per caller and per project token buckets, Atlas's 429
//! `RATE_LIMITED_TOKEN_BUCKET` with `Retry-After`, and `RateLimit-*` headers on every answer.

mod common;

use common::{Resp, Server};
use reqwest::StatusCode;
use serde_json::json;

fn header(r: &Resp, name: &str) -> u64 {
    r.headers.get(name).unwrap_or_else(|| panic!("no {name}: {:?}", r.headers)).to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn each_key_has_its_own_bucket_and_a_refusal_says_when_to_retry() {
    let s = Server::start_with(&["--rate-limit-per-key", "30", "--rate-limit-per-project", "0"]);
    let owner = s.client();
    // (Making the second key is the owner's first request.)
    let other = s.new_key(&["ORG_OWNER"]).await;
    for i in 1..30 {
        let r = owner.get("/api/atlas/v2/groups").await;
        assert_eq!(r.status, StatusCode::OK, "request {i}: {}", r.text);
        assert_eq!(header(&r, "ratelimit-limit"), 30);
        assert_eq!(header(&r, "ratelimit-remaining"), 29 - i);
    }
    let r = owner.get("/api/atlas/v2/groups").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    let body = r.json();
    assert_eq!(body["error"], 429);
    assert_eq!(body["errorCode"], "RATE_LIMITED_TOKEN_BUCKET");
    assert_eq!(body["reason"], "Too Many Requests");
    assert!(body["detail"].as_str().unwrap().contains("30 requests per minute"), "{body}");
    let retry = header(&r, "retry-after");
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(header(&r, "ratelimit-remaining"), 0);

    // Another key is not affected; the data API and unauthenticated requests are not counted.
    assert_eq!(other.get("/api/atlas/v2/groups").await.status, StatusCode::OK);

    // The bucket refills at the configured rate: a token is back after Retry-After.
    tokio::time::sleep(std::time::Duration::from_millis(retry * 1000 + 200)).await;
    let r = owner.get("/api/atlas/v2/groups").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn a_project_bucket_is_shared_by_every_caller() {
    let s = Server::start_with(&["--rate-limit-per-key", "0", "--rate-limit-per-project", "4"]);
    let owner = s.client();
    let org = s.org_id();
    let g = owner.post("/api/atlas/v2/groups", &json!({"name": "busy", "orgId": org})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = s.new_key(&["ORG_OWNER"]).await;
    let path = format!("/api/atlas/v2/groups/{g}");
    assert_eq!(owner.get(&path).await.status, StatusCode::OK);
    assert_eq!(other.get(&path).await.status, StatusCode::OK);
    assert_eq!(owner.get(&path).await.status, StatusCode::OK);
    let r = other.get(&path).await;
    assert_eq!((r.status, header(&r, "ratelimit-remaining")), (StatusCode::OK, 0));
    let r = owner.get(&format!("{path}/encryptionAtRest")).await;
    assert_eq!((r.status, r.error_code().as_str()), (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED_TOKEN_BUCKET"));
    // Paths outside the project are not held back by it.
    assert_eq!(owner.get("/api/atlas/v2/groups").await.status, StatusCode::OK);
}
