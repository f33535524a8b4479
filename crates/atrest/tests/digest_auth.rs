//! HTTP Digest as Atlas's Go client needs it: challenge shape, both algorithms, stale nonces,
//! replayed nonce counts, wrong keys.

mod common;

use common::{authorization, Server};
use reqwest::{Method, StatusCode};

const PATH: &str = "/api/atlas/v2/groups";

#[tokio::test]
async fn go_style_client_authenticates_with_md5_and_sha256() {
    let s = Server::start();
    let mut c = s.client();
    let ch = c.challenge(PATH).await;
    assert_eq!(ch.realm, "MMS Public API");
    assert_eq!(ch.qop, "auth");
    assert!(!ch.stale);
    assert_eq!(c.get(PATH).await.status, StatusCode::OK);
    c.algorithm = "SHA-256".into();
    assert_eq!(c.get(PATH).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unauthenticated_and_wrong_keys_get_401_with_atlas_body() {
    let s = Server::start();
    let c = s.client();
    let r = c.raw(Method::GET, PATH, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], 401);
    assert_eq!(r.content_type(), "application/json");

    let mut wrong = s.client();
    wrong.pass = "00000000-0000-4000-8000-000000000000".into();
    assert_eq!(wrong.get(PATH).await.status, StatusCode::UNAUTHORIZED);
    let mut unknown = s.client();
    unknown.user = "zzzzzzzz".into();
    assert_eq!(unknown.get(PATH).await.status, StatusCode::UNAUTHORIZED);

    // Credentials computed for one URI do not authorize another.
    let ch = c.challenge(PATH).await;
    let auth = authorization(&ch, "MD5", &c.user, &c.pass, "GET", "/api/atlas/v2/orgs", 1);
    assert_eq!(c.raw(Method::GET, PATH, Some(auth)).await.status, StatusCode::UNAUTHORIZED);
    // Nor another method.
    let ch = c.challenge(PATH).await;
    let auth = authorization(&ch, "MD5", &c.user, &c.pass, "GET", PATH, 1);
    assert_eq!(c.raw(Method::DELETE, PATH, Some(auth)).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn replayed_nonce_count_is_refused() {
    let s = Server::start();
    let c = s.client();
    let ch = c.challenge(PATH).await;
    let first = authorization(&ch, "MD5", &c.user, &c.pass, "GET", PATH, 1);
    assert_eq!(c.raw(Method::GET, PATH, Some(first.clone())).await.status, StatusCode::OK);
    let replay = c.raw(Method::GET, PATH, Some(first)).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "the same nc must not be accepted twice");
    let second = authorization(&ch, "MD5", &c.user, &c.pass, "GET", PATH, 2);
    assert_eq!(c.raw(Method::GET, PATH, Some(second)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn expired_nonce_is_stale() {
    let s = Server::start_with(&["--digest-nonce-ttl", "1"]);
    let c = s.client();
    let ch = c.challenge(PATH).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let auth = authorization(&ch, "MD5", &c.user, &c.pass, "GET", PATH, 1);
    let r = c.raw(Method::GET, PATH, Some(auth)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let fresh = common::parse_challenge_strict(r.headers["www-authenticate"].to_str().unwrap()).unwrap();
    assert!(fresh.stale, "an expired nonce with right credentials is answered stale=true");
    // The client retries with the fresh nonce and succeeds.
    let auth = authorization(&fresh, "MD5", &c.user, &c.pass, "GET", PATH, 1);
    assert_eq!(c.raw(Method::GET, PATH, Some(auth)).await.status, StatusCode::OK);
    // A wrong password with an expired nonce is not stale, just refused.
    let ch = c.challenge(PATH).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let auth = authorization(&ch, "MD5", &c.user, "wrong", "GET", PATH, 1);
    let r = c.raw(Method::GET, PATH, Some(auth)).await;
    let again = common::parse_challenge_strict(r.headers["www-authenticate"].to_str().unwrap()).unwrap();
    assert!(!again.stale);
}

#[tokio::test]
async fn curl_digest_works_as_in_the_readme() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        eprintln!("SKIP: curl not installed");
        return;
    }
    let s = Server::start();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--digest", "-u"])
        .arg(format!("{}:{}", s.creds["ATREST_PUBLIC_KEY"], s.creds["ATREST_PRIVATE_KEY"]))
        .args(["-H", "Accept: application/vnd.atlas.2023-01-01+json"])
        .arg(format!("{}/api/atlas/v2/groups", s.url))
        .output()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["results"], serde_json::json!([]));
    assert_eq!(body["totalCount"], 0);
    assert!(body["links"].is_array());
}
