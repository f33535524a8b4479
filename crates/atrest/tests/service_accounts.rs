//! OAuth service accounts as Atlas has them: created with roles (secret shown once), client
//! credentials for a bearer token valid 3600 s, tokens that survive restarts and end on
//! revocation, secret deletion or account deletion; OAuth's error format on the token endpoint.

mod common;

use base64::Engine;
use common::{Client, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

const V2024: &str = "application/vnd.atlas.2024-08-05+json";

async fn token_request(s: &Server, basic: Option<(&str, &str)>, body: &str, content_type: &str) -> (StatusCode, Value) {
    let mut b = reqwest::Client::new()
        .post(format!("{}/api/oauth/token", s.url))
        .header("Content-Type", content_type)
        .body(body.to_owned());
    if let Some((id, secret)) = basic {
        b = b.header(
            "Authorization",
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    let r = b.send().await.unwrap();
    let status = r.status();
    if status.is_success() || status.is_client_error() {
        assert_eq!(r.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"));
    }
    (status, r.json().await.unwrap())
}

async fn token(s: &Server, id: &str, secret: &str) -> String {
    let (st, body) = token_request(s, Some((id, secret)), "grant_type=client_credentials", FORM).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    body["access_token"].as_str().unwrap().to_owned()
}

const FORM: &str = "application/x-www-form-urlencoded";

async fn bearer(
    s: &Server,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut b = reqwest::Client::new()
        .request(method, format!("{}{path}", s.url))
        .header("Authorization", format!("Bearer {token}"))
        .header("Accept", common::V2);
    if let Some(v) = body {
        b = b.json(&v);
    }
    let r = b.send().await.unwrap();
    let (st, h) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap();
    (st, serde_json::from_str(&text).unwrap_or(Value::Null), h)
}

#[tokio::test]
async fn a_service_account_gets_tokens_that_act_with_its_roles() {
    let s = Server::start();
    let org = s.org_id();
    let owner = s.client();
    let owner24 = owner.clone().with_accept(V2024);
    let g = owner.post("/api/atlas/v2/groups", &json!({"name": "sa", "orgId": org})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Service accounts exist from 2024-08-05 on.
    let r = owner.get(&format!("/api/atlas/v2/orgs/{org}/serviceAccounts")).await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE, "{}", r.text);

    let body = json!({"name": "ci pipeline", "description": "Deploys", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24});
    for (bad, field) in [
        (
            json!({"name": "x", "description": "d", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 7}),
            "secretExpiresAfterHours",
        ),
        (json!({"name": "<x>", "description": "d", "roles": ["ORG_MEMBER"], "secretExpiresAfterHours": 24}), "name"),
        (json!({"name": "x", "description": "d", "roles": ["GROUP_OWNER"], "secretExpiresAfterHours": 24}), ""),
        (json!({"name": "x", "description": "d", "roles": ["ORG_MEMBER"]}), "secretExpiresAfterHours"),
    ] {
        let r = owner24.post(&format!("/api/atlas/v2/orgs/{org}/serviceAccounts"), &bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert!(r.text.contains(field), "{}", r.text);
    }
    let r = owner24.post(&format!("/api/atlas/v2/orgs/{org}/serviceAccounts"), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.content_type().starts_with("application/vnd.atlas.2024-08-05+json"));
    let created = r.json();
    let client_id = created["clientId"].as_str().unwrap().to_owned();
    assert!(client_id.starts_with("mdb_sa_id_") && client_id.len() == 34, "{client_id}");
    assert_eq!(created["roles"], json!(["ORG_MEMBER"]));
    let secret = created["secrets"][0]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("mdb_sa_sk_"));
    let masked = created["secrets"][0]["maskedSecretValue"].as_str().unwrap();
    assert!(masked.ends_with(&secret[secret.len() - 4..]) && !masked.contains(&secret[10..30]));

    // The secret is shown once.
    let listed = owner24.get(&format!("/api/atlas/v2/orgs/{org}/serviceAccounts")).await.json();
    assert_eq!(listed["totalCount"], 1);
    assert!(listed["results"][0]["secrets"][0].get("secret").is_none(), "{listed}");
    let one = owner24.get(&format!("/api/atlas/v2/orgs/{org}/serviceAccounts/{client_id}")).await;
    assert!(!one.text.contains(&secret));
    let r = owner24.get(&format!("/api/atlas/v2/orgs/{org}/serviceAccounts/mdb_sa_id_5f0a1b2c3d4e5f6a7b8c9d0e")).await;
    assert_eq!((r.status, r.error_code().as_str()), (StatusCode::NOT_FOUND, "SERVICE_ACCOUNT_NOT_FOUND"));
    let r = owner24.get(&format!("/api/atlas/v2/orgs/{org}/serviceAccounts/not-a-client-id")).await;
    assert_eq!((r.status, r.error_code().as_str()), (StatusCode::BAD_REQUEST, "INVALID_PATH_PARAMETER"));

    // The token endpoint, in OAuth's words.
    let (st, e) = token_request(&s, Some((&client_id, "mdb_sa_sk_wrong")), "grant_type=client_credentials", FORM).await;
    assert_eq!((st, e["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "{e}");
    let (st, e) = token_request(&s, Some((&client_id, &secret)), "grant_type=password", FORM).await;
    assert_eq!((st, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unsupported_grant_type")), "{e}");
    let (st, e) = token_request(&s, Some((&client_id, &secret)), "", FORM).await;
    assert_eq!((st, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "{e}");
    let (st, e) = token_request(&s, Some((&client_id, &secret)), "{}", "application/json").await;
    assert_eq!((st, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "{e}");
    let (st, e) = token_request(&s, None, "grant_type=client_credentials", FORM).await;
    assert_eq!((st, e["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "{e}");
    // Credentials in the form work too (RFC 6749 §2.3.1).
    let form = format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}");
    let (st, _) = token_request(&s, None, &form, FORM).await;
    assert_eq!(st, StatusCode::OK);

    let t = token(&s, &client_id, &secret).await;
    let used = owner24.get(&format!("/api/atlas/v2/orgs/{org}/serviceAccounts/{client_id}")).await.json();
    assert!(used["secrets"][0]["lastUsedAt"].is_string(), "{used}");

    // The token acts with the account's roles: an organization member sees no project yet.
    let (st, list, _) = bearer(&s, &t, reqwest::Method::GET, "/api/atlas/v2/groups", None).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list["totalCount"], 0);
    let ear = format!("/api/atlas/v2/groups/{g}/encryptionAtRest");
    let (st, e, _) = bearer(&s, &t, reqwest::Method::GET, &ear, None).await;
    assert_eq!((st, e["errorCode"].as_str()), (StatusCode::FORBIDDEN, Some("ACCESS_FORBIDDEN")), "{e}");

    // Invited to the project as Project Owner, it may read and change it.
    let r = owner24
        .post(
            &format!("/api/atlas/v2/groups/{g}/serviceAccounts/{client_id}:invite"),
            &json!({"roles": ["GROUP_OWNER"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["roles"], json!(["GROUP_OWNER"]));
    let members = owner24.get(&format!("/api/atlas/v2/groups/{g}/serviceAccounts")).await.json();
    assert_eq!(members["results"][0]["clientId"], client_id.as_str(), "{members}");
    let (st, body, _) = bearer(&s, &t, reqwest::Method::GET, &ear, None).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (st, body, _) =
        bearer(&s, &t, reqwest::Method::PATCH, &format!("/api/atlas/v2/groups/{g}"), Some(json!({"name": "renamed"})))
            .await;
    assert_eq!(st, StatusCode::OK, "{body}");

    // Tokens are durable.
    let s = s.restart();
    let (st, _, _) = bearer(&s, &t, reqwest::Method::GET, &ear, None).await;
    assert_eq!(st, StatusCode::OK);

    // Revocation (RFC 7009): only by the token's own client; then the token is dead.
    let revoke = |basic: String, form: String| {
        let url = format!("{}/api/oauth/revoke", s.url);
        async move {
            reqwest::Client::new()
                .post(url)
                .header("Authorization", basic)
                .header("Content-Type", FORM)
                .body(form)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}")));
    assert_eq!(revoke(basic.clone(), format!("token={t}")).await, StatusCode::OK);
    let (st, e, h) = bearer(&s, &t, reqwest::Method::GET, &ear, None).await;
    assert_eq!((st, e["errorCode"].as_str()), (StatusCode::UNAUTHORIZED, Some("USER_UNAUTHORIZED")), "{e}");
    assert!(h["www-authenticate"].to_str().unwrap().starts_with("Bearer "), "{h:?}");
    assert_eq!(revoke(basic.clone(), "token=unknown".into()).await, StatusCode::OK, "unknown tokens are not an error");
    assert_eq!(revoke("Basic bm9wZTpub3Bl".into(), format!("token={t}")).await, StatusCode::UNAUTHORIZED);

    // Secrets: at most two; a deleted secret no longer gets tokens.
    let owner24 = s.client().with_accept(V2024);
    let secrets = format!("/api/atlas/v2/orgs/{org}/serviceAccounts/{client_id}/secrets");
    let r = owner24.post(&secrets, &json!({"secretExpiresAfterHours": 48})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let second = r.json();
    let secret2 = second["secret"].as_str().unwrap().to_owned();
    let r = owner24.post(&secrets, &json!({"secretExpiresAfterHours": 48})).await;
    assert_eq!((r.status, r.error_code().as_str()), (StatusCode::BAD_REQUEST, "SERVICE_ACCOUNT_SECRET_LIMIT_REACHED"));
    let first_id = created["secrets"][0]["id"].as_str().unwrap();
    let r = owner24.delete(&format!("{secrets}/{first_id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let (st, _) = token_request(&s, Some((&client_id, &secret)), "grant_type=client_credentials", FORM).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "the deleted secret is dead");
    let t2 = token(&s, &client_id, &secret2).await;

    // Deleting the account ends its tokens.
    let r = owner24.delete(&format!("/api/atlas/v2/orgs/{org}/serviceAccounts/{client_id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let (st, _, _) = bearer(&s, &t2, reqwest::Method::GET, "/api/atlas/v2/groups", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Neither secrets nor tokens are stored in plaintext.
    let stored = s.stored_bytes();
    assert!(!stored.is_empty());
    for needle in [&secret, &secret2, &t, &t2] {
        assert!(!stored.windows(needle.len()).any(|w| w == needle.as_bytes()), "a secret is stored in plaintext");
    }
}

#[tokio::test]
async fn only_organization_owners_manage_service_accounts() {
    let s = Server::start();
    let org = s.org_id();
    let owner = s.client();
    let made = owner
        .post(&format!("/api/atlas/v2/orgs/{org}/apiKeys"), &json!({"desc": "reader", "roles": ["ORG_READ_ONLY"]}))
        .await
        .json();
    let reader = Client::new(&s.url, made["publicKey"].as_str().unwrap(), made["privateKey"].as_str().unwrap())
        .with_accept(V2024);
    let body = json!({"name": "x", "description": "d", "roles": ["ORG_OWNER"], "secretExpiresAfterHours": 24});
    let r = reader.post(&format!("/api/atlas/v2/orgs/{org}/serviceAccounts"), &body).await;
    assert_eq!((r.status, r.error_code().as_str()), (StatusCode::FORBIDDEN, "ACCESS_FORBIDDEN"));
    let r = reader.get(&format!("/api/atlas/v2/orgs/{org}/serviceAccounts")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
