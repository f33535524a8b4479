//! The web console's server side: embedded assets with a strict CSP, sign-in with an API key
//! pair, an `HttpOnly` + `SameSite=Strict` session cookie that survives restarts, and CSRF
//! protection on every state change made with that cookie. The browser story itself is in
//! tests/browser (real Chromium).

mod common;

use common::{Server, V2};
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Browserish {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Browserish {
    fn new(s: &Server) -> Self {
        Browserish { http: reqwest::Client::new(), base: s.url.clone(), cookie: None, csrf: None }
    }

    async fn sign_in(&mut self, public: &str, private: &str) -> reqwest::Response {
        let r = self
            .http
            .post(format!("{}/console/session", self.base))
            .json(&json!({"publicKey": public, "privateKey": private}))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            let set = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        r
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut b = self.http.request(method, format!("{}{path}", self.base)).header("Accept", V2);
        if let Some(c) = &self.cookie {
            b = b.header("Cookie", c);
        }
        b
    }

    async fn create_project(
        &self,
        name: &str,
        org: &str,
        csrf: Option<&str>,
        origin: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut b = self.req(reqwest::Method::POST, "/api/atlas/v2/groups").json(&json!({"name": name, "orgId": org}));
        if let Some(t) = csrf {
            b = b.header("X-CSRF-Token", t);
        }
        if let Some(o) = origin {
            b = b.header("Origin", o);
        }
        let r = b.send().await.unwrap();
        (r.status(), r.json().await.unwrap())
    }

    async fn project_names(&self) -> Vec<String> {
        let r = self.req(reqwest::Method::GET, "/api/atlas/v2/groups").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        v["results"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
    }
}

#[tokio::test]
async fn assets_are_embedded_and_locked_to_this_origin() {
    let s = Server::start();
    let http = reqwest::Client::new();
    for (path, ty) in [("/", "text/html"), ("/console/app.js", "text/javascript"), ("/console/app.css", "text/css")] {
        let r = http.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers().clone();
        assert!(h["content-type"].to_str().unwrap().starts_with(ty), "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        let body = r.text().await.unwrap();
        // Works offline: nothing is loaded from anywhere but this server.
        assert!(!body.contains("http://") && !body.contains("https://") && !body.contains("//cdn"), "{path} links out");
    }
    let html = http.get(format!("{}/", s.url)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("src=\"/console/app.js\"") && !html.contains("<script>"), "no inline script: {html}");
}

#[tokio::test]
async fn sign_in_checks_the_key_pair_and_sets_a_strict_cookie() {
    let s = Server::start();
    let (public, private) = (&s.creds["ATREST_PUBLIC_KEY"], &s.creds["ATREST_PRIVATE_KEY"]);
    let mut b = Browserish::new(&s);

    for (p, k) in [(public.as_str(), "wrong-private-key"), ("nosuchkey", private.as_str()), ("", "")] {
        let r = b.sign_in(p, k).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{p}");
        assert!(r.headers().get("set-cookie").is_none());
        assert!(r.headers().get("www-authenticate").is_none(), "no browser credentials dialog");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["errorCode"], "USER_UNAUTHORIZED");
    }
    let r = b
        .http
        .post(format!("{}/console/session", s.url))
        .json(&json!({"publicKey": public, "privateKey": private, "extra": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "unknown fields are refused");

    let r = b.sign_in(public, private).await;
    assert_eq!(r.status(), StatusCode::OK);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(set.contains(attr), "cookie lacks {attr}: {set}");
    }
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["publicKey"], public.as_str());
    assert_eq!(body["orgId"], s.org_id());
    assert_eq!(body["csrfToken"].as_str().unwrap().len(), 64);
    assert!(body.get("privateKey").is_none());

    // The token is stored only as a hash.
    let token = b.cookie.as_ref().unwrap().split_once('=').unwrap().1.to_owned();
    let stored = s.stored_bytes();
    assert!(!stored.is_empty());
    assert!(!stored.windows(token.len()).any(|w| w == token.as_bytes()), "session token stored in plaintext");
}

#[tokio::test]
async fn state_changes_with_the_cookie_need_the_csrf_token_and_this_origin() {
    let s = Server::start();
    let org = s.org_id();
    let mut b = Browserish::new(&s);
    let body: Value =
        b.sign_in(&s.creds["ATREST_PUBLIC_KEY"], &s.creds["ATREST_PRIVATE_KEY"]).await.json().await.unwrap();
    let csrf = body["csrfToken"].as_str().unwrap().to_owned();
    b.csrf = Some(csrf.clone());

    // Reads need only the cookie.
    assert!(b.project_names().await.is_empty());

    let (st, e) = b.create_project("no-token", &org, None, None).await;
    assert_eq!((st, e["errorCode"].as_str()), (StatusCode::FORBIDDEN, Some("CSRF_TOKEN_INVALID")), "{e}");
    let wrong = "0".repeat(64);
    let (st, e) = b.create_project("wrong-token", &org, Some(&wrong), None).await;
    assert_eq!((st, e["errorCode"].as_str()), (StatusCode::FORBIDDEN, Some("CSRF_TOKEN_INVALID")), "{e}");
    let (st, e) = b.create_project("evil-origin", &org, Some(&csrf), Some("http://evil.example")).await;
    assert_eq!((st, e["errorCode"].as_str()), (StatusCode::FORBIDDEN, Some("CSRF_TOKEN_INVALID")), "{e}");
    assert!(b.project_names().await.is_empty(), "a refused request changed nothing");

    let same_origin = s.url.clone();
    let (st, e) = b.create_project("from-the-console", &org, Some(&csrf), Some(&same_origin)).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(b.project_names().await, ["from-the-console"]);

    // A second session has its own CSRF token; one session's token does not work for another.
    let mut other = Browserish::new(&s);
    let body2: Value =
        other.sign_in(&s.creds["ATREST_PUBLIC_KEY"], &s.creds["ATREST_PRIVATE_KEY"]).await.json().await.unwrap();
    assert_ne!(body2["csrfToken"], body["csrfToken"]);
    let (st, _) = other.create_project("crossed", &org, Some(&csrf), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Digest clients are unaffected: no cookie, no CSRF token needed.
    let r = s.client().post("/api/atlas/v2/groups", &json!({"name": "digest", "orgId": org})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn sessions_survive_restarts_and_end_on_sign_out_or_key_deletion() {
    let s = Server::start();
    let mut b = Browserish::new(&s);
    let body: Value =
        b.sign_in(&s.creds["ATREST_PUBLIC_KEY"], &s.creds["ATREST_PRIVATE_KEY"]).await.json().await.unwrap();
    let csrf = body["csrfToken"].as_str().unwrap().to_owned();

    let s = s.restart();
    b.base = s.url.clone();
    let r = b.req(reqwest::Method::GET, "/console/session").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the session is durable");
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["csrfToken"], csrf.as_str(), "the page gets its CSRF token back after a reload");

    // Sign-out is a state change too: it needs the token.
    let r = b.req(reqwest::Method::DELETE, "/console/session").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b.req(reqwest::Method::DELETE, "/console/session").header("X-CSRF-Token", &csrf).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let r = b
        .req(reqwest::Method::GET, "/api/atlas/v2/groups")
        .header("X-Requested-With", "atrest-console")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the old cookie is dead");
    assert!(r.headers().get("www-authenticate").is_none(), "the console gets no Digest challenge");

    // A session of a key that is deleted ends with the key.
    let org = s.org_id();
    let made = s
        .client()
        .post(&format!("/api/atlas/v2/orgs/{org}/apiKeys"), &json!({"desc": "console user", "roles": ["ORG_OWNER"]}))
        .await
        .json();
    let mut c = Browserish::new(&s);
    let r = c.sign_in(made["publicKey"].as_str().unwrap(), made["privateKey"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(c.req(reqwest::Method::GET, "/api/atlas/v2/groups").send().await.unwrap().status(), StatusCode::OK);
    let id = made["id"].as_str().unwrap();
    let r = s.client().delete(&format!("/api/atlas/v2/orgs/{org}/apiKeys/{id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        c.req(reqwest::Method::GET, "/api/atlas/v2/groups").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_console_session_has_the_roles_of_its_key() {
    let s = Server::start();
    let org = s.org_id();
    let made = s
        .client()
        .post(&format!("/api/atlas/v2/orgs/{org}/apiKeys"), &json!({"desc": "reader", "roles": ["ORG_READ_ONLY"]}))
        .await
        .json();
    let mut b = Browserish::new(&s);
    let body: Value = b
        .sign_in(made["publicKey"].as_str().unwrap(), made["privateKey"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let csrf = body["csrfToken"].as_str().unwrap().to_owned();
    let (st, e) = b.create_project("not-allowed", &org, Some(&csrf), None).await;
    assert_eq!((st, e["errorCode"].as_str()), (StatusCode::FORBIDDEN, Some("ACCESS_FORBIDDEN")), "{e}");
}

/// Every Admin API call the console makes (method, path with `{}` for what the page fills in),
/// and the CLI command that makes the same call: the console can do nothing the CLI cannot.
const CONSOLE_CALLS: &[(&str, &str, &[&str])] = &[
    ("GET", "/api/atlas/v2/groups", &["projects", "list"]),
    ("POST", "/api/atlas/v2/groups", &["projects", "create"]),
    ("GET", "/api/atlas/v2/groups/{}", &["projects", "describe"]),
    ("GET", "/api/atlas/v2/groups/{}/cloudProviderAccess", &["cloud-provider-access", "list"]),
    ("POST", "/api/atlas/v2/groups/{}/cloudProviderAccess", &["cloud-provider-access", "create"]),
    ("PATCH", "/api/atlas/v2/groups/{}/cloudProviderAccess/{}", &["cloud-provider-access", "authorize"]),
    ("GET", "/api/atlas/v2/groups/{}/encryptionAtRest", &["encryption-at-rest", "describe"]),
    ("PATCH", "/api/atlas/v2/groups/{}/encryptionAtRest", &["encryption-at-rest", "update"]),
    ("GET", "/api/atlas/v2/groups/{}/encryptionAtRest/AWS/privateEndpoints", &["private-endpoints", "list"]),
    ("POST", "/api/atlas/v2/groups/{}/encryptionAtRest/AWS/privateEndpoints", &["private-endpoints", "create"]),
    ("DELETE", "/api/atlas/v2/groups/{}/encryptionAtRest/AWS/privateEndpoints/{}", &["private-endpoints", "delete"]),
    ("GET", "/api/atlas/v2/groups/{}/clusters", &["clusters", "list"]),
    ("POST", "/api/atlas/v2/groups/{}/clusters", &["clusters", "create"]),
    ("PATCH", "/api/atlas/v2/groups/{}/clusters/{}", &["clusters", "update"]),
    ("DELETE", "/api/atlas/v2/groups/{}/clusters/{}", &["clusters", "delete"]),
    ("GET", "/api/atrest/v1/groups/{}/clusters/{}/encryption", &["clusters", "encryption-status"]),
    ("GET", "/api/atlas/v2/groups/{}/events", &["events", "list"]),
    ("GET", "/api/atlas/v2/orgs/{}/serviceAccounts", &["service-accounts", "list"]),
    ("POST", "/api/atlas/v2/orgs/{}/serviceAccounts", &["service-accounts", "create"]),
    ("DELETE", "/api/atlas/v2/orgs/{}/serviceAccounts/{}", &["service-accounts", "delete"]),
    ("POST", "/api/atlas/v2/orgs/{}/serviceAccounts/{}/secrets", &["service-accounts", "create-secret"]),
    ("DELETE", "/api/atlas/v2/orgs/{}/serviceAccounts/{}/secrets/{}", &["service-accounts", "delete-secret"]),
];

/// The console's own routes: signing in and out, which the CLI does with `atrest login`.
const SESSION_CALLS: &[(&str, &str)] =
    &[("GET", "/console/session"), ("POST", "/console/session"), ("DELETE", "/console/session")];

/// The `api("METHOD", path)` calls in the console's script, with `${...}` as `{}`.
fn calls_in(js: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = js;
    while let Some(i) = rest.find("api(\"") {
        rest = &rest[i + 5..];
        let Some(end) = rest.find('"') else { break };
        let method = rest[..end].to_owned();
        let after = rest[end + 1..].trim_start_matches([',', ' ']);
        let (prefix, body) = if let Some(b) = after.strip_prefix("v2(`").or_else(|| after.strip_prefix("v2(\"")) {
            ("/api/atlas/v2", b)
        } else if let Some(b) = after.strip_prefix('`') {
            ("", b)
        } else if let Some(b) = after.strip_prefix('"') {
            ("", b)
        } else {
            panic!("unreadable api() call near: {}", &after[..after.len().min(60)]);
        };
        let close = body.find(['`', '"']).unwrap();
        let mut path = String::new();
        let mut raw = &body[..close];
        while let Some(open) = raw.find("${") {
            path.push_str(&raw[..open]);
            path.push_str("{}");
            raw = &raw[open + raw[open..].find('}').unwrap() + 1..];
        }
        path.push_str(raw);
        let path = path.split('?').next().unwrap().to_owned();
        out.push((method, format!("{prefix}{path}")));
    }
    out.sort();
    out.dedup();
    out
}

fn route_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

#[test]
fn every_console_call_is_a_route_the_cli_makes_too() {
    let js = include_str!("../../atrest-api/console/app.js");
    let found = calls_in(js);
    let mut expected: Vec<(String, String)> = CONSOLE_CALLS
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .chain(SESSION_CALLS.iter().map(|(m, p)| (m.to_string(), p.to_string())))
        .collect();
    expected.sort();
    assert_eq!(found, expected, "the console's calls changed: map each new one to its CLI command");

    let table = atrest_api::route_table();
    for (method, path, cli) in CONSOLE_CALLS {
        assert!(
            table.iter().any(|(m, t)| m == method && route_matches(t, path)),
            "{method} {path} is not a route of the API"
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_atrest")).args(*cli).arg("--help").output().unwrap();
        assert!(out.status.success(), "`atrest {}` is not a CLI command ({method} {path})", cli.join(" "));
    }
}
