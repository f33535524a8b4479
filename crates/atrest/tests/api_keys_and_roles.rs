//! Organization owners mint keys; project roles decide what each key may do.

mod common;

use common::{Client, Server};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_read_only_key_reads_but_cannot_write() {
    let s = Server::start();
    let owner = s.client();
    let org = s.org_id();

    let project = owner.post("/api/atlas/v2/groups", &json!({"name": "shared", "orgId": org})).await.json();
    let pid = project["id"].as_str().unwrap();
    let other = owner.post("/api/atlas/v2/groups", &json!({"name": "hidden", "orgId": org})).await.json();

    let created = owner
        .post(&format!("/api/atlas/v2/orgs/{org}/apiKeys"), &json!({"desc": "reader", "roles": ["ORG_MEMBER"]}))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let key = created.json();
    let private = key["privateKey"].as_str().unwrap().to_owned();
    assert_eq!(private.len(), 36);
    let key_id = key["id"].as_str().unwrap();

    // The private key is never shown again.
    let listed = owner.get(&format!("/api/atlas/v2/orgs/{org}/apiKeys")).await;
    assert!(!listed.text.contains(&private));
    let one = owner.get(&format!("/api/atlas/v2/orgs/{org}/apiKeys/{key_id}")).await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(!one.text.contains(&private));

    let assigned = owner
        .patch(&format!("/api/atlas/v2/groups/{pid}/apiKeys/{key_id}"), &json!({"roles": ["GROUP_READ_ONLY"]}))
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
    assert!(assigned.json()["roles"]
        .as_array()
        .unwrap()
        .contains(&json!({"groupId": pid, "roleName": "GROUP_READ_ONLY"})));

    let reader = Client::new(&s.url, key["publicKey"].as_str().unwrap(), &private);
    assert_eq!(reader.get(&format!("/api/atlas/v2/groups/{pid}")).await.status, StatusCode::OK);
    let r = reader.delete(&format!("/api/atlas/v2/groups/{pid}")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "ACCESS_FORBIDDEN");
    let r = reader.post("/api/atlas/v2/groups", &json!({"name": "nope", "orgId": org})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r =
        reader.post(&format!("/api/atlas/v2/orgs/{org}/apiKeys"), &json!({"desc": "x", "roles": ["ORG_OWNER"]})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = reader.get(&format!("/api/atlas/v2/groups/{}", other["id"].as_str().unwrap())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Listing shows only the projects the key belongs to.
    let list = reader.get("/api/atlas/v2/groups").await.json();
    assert_eq!(list["totalCount"], 1);
    assert_eq!(list["results"][0]["id"], pid);
    assert_eq!(reader.get("/api/atlas/v2/groups/byName/hidden").await.status, StatusCode::NOT_FOUND);
    assert_eq!(reader.get("/api/atlas/v2/groups/byName/shared").await.status, StatusCode::OK);

    // The project still exists after the refused delete.
    assert_eq!(owner.get(&format!("/api/atlas/v2/groups/{pid}")).await.status, StatusCode::OK);

    // Deleting the key locks it out.
    assert_eq!(
        owner.delete(&format!("/api/atlas/v2/orgs/{org}/apiKeys/{key_id}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(reader.get(&format!("/api/atlas/v2/groups/{pid}")).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn key_creation_is_validated() {
    let s = Server::start();
    let owner = s.client();
    let org = s.org_id();
    let path = format!("/api/atlas/v2/orgs/{org}/apiKeys");
    let r = owner.post(&path, &json!({"desc": "x", "roles": ["GROUP_OWNER"]})).await;
    assert_eq!(r.error_code(), "INVALID_ROLE");
    let r = owner.post(&path, &json!({"desc": "x", "roles": []})).await;
    assert_eq!(r.error_code(), "MISSING_ATTRIBUTE");
    let r = owner.post(&path, &json!({"desc": "", "roles": ["ORG_MEMBER"]})).await;
    assert_eq!(r.error_code(), "INVALID_ATTRIBUTE");
    let r = owner
        .post("/api/atlas/v2/orgs/0123456789abcdef01234567/apiKeys", &json!({"desc": "x", "roles": ["ORG_MEMBER"]}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let keys = owner.get(&path).await.json();
    assert_eq!(keys["totalCount"], 1, "only the bootstrap key exists");
}

#[tokio::test]
async fn a_project_creator_owns_what_it_creates() {
    let s = Server::start();
    let owner = s.client();
    let org = s.org_id();
    let key = owner
        .post(&format!("/api/atlas/v2/orgs/{org}/apiKeys"), &json!({"desc": "creator", "roles": ["ORG_GROUP_CREATOR"]}))
        .await
        .json();
    let creator = Client::new(&s.url, key["publicKey"].as_str().unwrap(), key["privateKey"].as_str().unwrap());
    let p = creator.post("/api/atlas/v2/groups", &json!({"name": "mine", "orgId": org})).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    let pid = p.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(creator.delete(&format!("/api/atlas/v2/groups/{pid}")).await.status, StatusCode::NO_CONTENT);
}
