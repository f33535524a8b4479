//! Every route the router has answers 401 with the Atlas error body and a Digest challenge when
//! called without credentials. The routes come from `atrest_api::route_table()`, the table the
//! router itself is built from, so a new route cannot slip past this test.

mod common;

use common::Server;
use reqwest::{Method, StatusCode};

/// The only routes that need no credentials: readiness, and the console's assets and sign-in
/// (tests/console.rs covers those).
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/readyz"),
    ("GET", "/"),
    ("GET", "/console/app.js"),
    ("GET", "/console/app.css"),
    ("POST", "/console/session"),
    ("GET", "/console/session"),
    ("DELETE", "/console/session"),
    ("POST", "/api/oauth/token"),
    ("POST", "/api/oauth/revoke"),
];

const ID: &str = "5f0a1b2c3d4e5f6a7b8c9d0e";

/// Replaces every `{param}` of a path template with a 24-hex id.
fn fill(template: &str) -> String {
    template
        .split('/')
        .map(|seg| if seg.starts_with('{') && seg.ends_with('}') { ID } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

async fn assert_challenged(http: &reqwest::Client, base: &str, method: &str, path: &str) {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = http.request(m, format!("{base}{path}")).header("Accept", common::V2);
    if matches!(method, "POST" | "PATCH" | "PUT") {
        req = req.header("Content-Type", "application/json").body("{}");
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path} answered without credentials");
    let challenge = r
        .headers()
        .get("www-authenticate")
        .unwrap_or_else(|| panic!("{method} {path}: 401 without WWW-Authenticate"))
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Digest "), "{method} {path}: challenge {challenge}");
    common::parse_challenge_strict(&challenge).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let body: serde_json::Value = r.json().await.unwrap_or_else(|e| panic!("{method} {path}: body not JSON: {e}"));
    assert_eq!(body["error"], 401, "{method} {path}: {body}");
    assert_eq!(body["errorCode"], "USER_UNAUTHORIZED", "{method} {path}: {body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{method} {path}: {body}");
}

#[tokio::test]
async fn every_route_needs_credentials() {
    let table = atrest_api::route_table();
    // The table covers every surface the router serves.
    for prefix in ["/api/atlas/v2/", "/api/atlas/v1.0/", "/data/v1/", "/api/atrest/v1/"] {
        assert!(table.iter().any(|(_, p)| p.starts_with(prefix)), "no route under {prefix} in {table:?}");
    }
    let public: Vec<(&str, &str)> =
        table.iter().filter(|(_, p)| atrest_api::auth::is_public(p)).map(|(m, p)| (*m, p.as_str())).collect();
    assert_eq!(public, PUBLIC, "public routes changed: review them and update PUBLIC");

    let s = Server::start();
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().unwrap();
    let mut checked = 0;
    for (method, template) in &table {
        if PUBLIC.contains(&(*method, template.as_str())) {
            continue;
        }
        let path = fill(template);
        assert_challenged(&http, &s.url, method, &path).await;
        // A trailing slash and a query string change nothing.
        assert_challenged(&http, &s.url, method, &format!("{path}/")).await;
        assert_challenged(&http, &s.url, method, &format!("{path}?pretty=true")).await;
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} routes checked");

    // Paths and methods the router does not have are not revealed either.
    for (method, path) in [
        ("GET", "/api/atlas/v2/nothing"),
        ("PUT", "/api/atlas/v2/groups"),
        ("DELETE", "/api/atlas/v2/orgs"),
        ("GET", "/data/v1/anything"),
        ("GET", "/api/atrest/v1/groups"),
        ("POST", "/api/atlas/v1.0/groups/x/y/z"),
    ] {
        assert_challenged(&http, &s.url, method, path).await;
    }

    // The public exceptions answer without credentials: the assets and readiness with 200; the
    // console's session routes with their own refusal (no session, no Digest challenge).
    for (method, path) in PUBLIC {
        let r = http.request(Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", s.url)).send().await;
        let r = r.unwrap();
        if path.starts_with("/console/session") || path.starts_with("/api/oauth/") {
            assert!(r.status().is_client_error(), "{method} {path}: {}", r.status());
            assert!(r.headers().get("www-authenticate").is_none(), "{method} {path}");
        } else {
            assert_eq!(r.status(), StatusCode::OK, "{method} {path}");
        }
    }
}
