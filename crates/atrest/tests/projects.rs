//! Projects: the lifecycle a user drives through `/groups`, kept across restarts and crashes.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use common::Server;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_read_find_delete() {
    let s = Server::start();
    let c = s.client();
    let org = s.org_id();
    let r = c
        .post(
            "/api/atlas/v2/groups",
            &json!({"name": "Prod-EU_1", "orgId": org, "tags": [{"key": "env", "value": "prod"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = r.json();
    let id = p["id"].as_str().unwrap();
    assert_eq!(id.len(), 24);
    assert_eq!(p["orgId"], org.as_str());
    assert_eq!(p["clusterCount"], 0);
    assert_eq!(p["withDefaultAlertsSettings"], true);
    assert_eq!(p["tags"], json!([{"key": "env", "value": "prod"}]));
    assert!(p["created"].as_str().unwrap().ends_with('Z'));

    assert_eq!(c.get(&format!("/api/atlas/v2/groups/{id}")).await.json(), p);
    assert_eq!(c.get("/api/atlas/v2/groups/byName/Prod-EU_1").await.json()["id"], id);
    let r = c.get("/api/atlas/v2/groups/byName/missing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let dup = c.post("/api/atlas/v2/groups", &json!({"name": "Prod-EU_1", "orgId": org})).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let bad = c.post("/api/atlas/v2/groups", &json!({"name": "has space", "orgId": org})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let gov = c
        .post(
            "/api/atlas/v2/groups",
            &json!({"name": "gov", "orgId": org, "regionUsageRestrictions": "GOV_REGIONS_ONLY"}),
        )
        .await;
    assert_eq!(gov.error_code(), "INVALID_ATTRIBUTE");
    let other_org = c.post("/api/atlas/v2/groups", &json!({"name": "x", "orgId": "0123456789abcdef01234567"})).await;
    assert_eq!(other_org.status, StatusCode::NOT_FOUND);

    // PATCH renames and re-tags, with the creation rules.
    let r = c.patch(&format!("/api/atlas/v2/groups/{id}"), &json!({"name": "Prod-EU_2", "tags": []})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!((r.json()["name"].as_str(), r.json()["tags"].clone()), (Some("Prod-EU_2"), json!([])));
    assert_eq!(c.get("/api/atlas/v2/groups/byName/Prod-EU_2").await.json()["id"], id);
    c.post("/api/atlas/v2/groups", &json!({"name": "other", "orgId": org})).await;
    assert_eq!(
        c.patch(&format!("/api/atlas/v2/groups/{id}"), &json!({"name": "other"})).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        c.patch(&format!("/api/atlas/v2/groups/{id}"), &json!({"name": "bad name"})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        c.patch(&format!("/api/atlas/v2/groups/{id}"), &json!({"orgId": org})).await.error_code(),
        "INVALID_ATTRIBUTE"
    );
    assert_eq!(c.get(&format!("/api/atlas/v2/groups/{id}")).await.json()["name"], "Prod-EU_2");

    let del = c.delete(&format!("/api/atlas/v2/groups/{id}")).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert!(del.text.is_empty());
    assert_eq!(c.get(&format!("/api/atlas/v2/groups/{id}")).await.error_code(), "GROUP_NOT_FOUND");
    assert_eq!(c.delete(&format!("/api/atlas/v2/groups/{id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(c.get("/api/atlas/v2/groups").await.json()["totalCount"], 1);
}

#[tokio::test]
async fn state_is_kept_across_a_restart() {
    let s = Server::start();
    let c = s.client();
    let p = c.post("/api/atlas/v2/groups", &json!({"name": "kept", "orgId": s.org_id()})).await.json();
    let old_url = s.url.clone();
    let s = s.restart();
    // The same credentials keep working; the credentials file names the new URL.
    assert_eq!(s.creds["ATREST_URL"], s.url);
    assert_ne!(s.url, old_url);
    let c = s.client();
    assert_eq!(c.get(&format!("/api/atlas/v2/groups/{}", p["id"].as_str().unwrap())).await.json(), {
        let mut p = p.clone();
        p["links"][0]["href"] = json!(format!("{}/api/atlas/v2/groups/{}", s.url, p["id"].as_str().unwrap()));
        p
    });
}

#[tokio::test]
async fn kill_9_during_concurrent_creations_loses_nothing_acknowledged() {
    let s = Server::start();
    let c = s.client();
    let org = s.org_id();
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (c, org, acked) = (c.clone(), org.clone(), acknowledged.clone());
        tasks.spawn(async move {
            for i in 0.. {
                let name = format!("w{worker}-{i}");
                let body = json!({"name": name, "orgId": org});
                let first = reqwest::Client::new()
                    .post(format!("{}/api/atlas/v2/groups", c.base))
                    .header("Accept", common::V2)
                    .body(body.to_string())
                    .send()
                    .await;
                if first.is_err() {
                    return;
                }
                let r = tokio::time::timeout(std::time::Duration::from_secs(5), c.post("/api/atlas/v2/groups", &body))
                    .await;
                match r {
                    Ok(r) if r.status == StatusCode::OK => {
                        acked.lock().unwrap().insert(r.json()["id"].as_str().unwrap().to_owned());
                    }
                    _ => return,
                }
            }
        });
    }
    // Let the burst run, then kill without warning.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut s = s;
    s.kill9();
    while tasks.join_next().await.is_some() {}
    let acked = acknowledged.lock().unwrap().clone();
    assert!(acked.len() > 10, "the burst created only {} projects", acked.len());

    let tmp_dir = s.dir.clone();
    let s2 = Server::start_in(&tmp_dir, &[]);
    let c = s2.client();
    let mut found = HashSet::new();
    let mut page = 1;
    loop {
        let r = c.get(&format!("/api/atlas/v2/groups?itemsPerPage=500&pageNum={page}")).await.json();
        let results = r["results"].as_array().unwrap();
        if results.is_empty() {
            break;
        }
        found.extend(results.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        page += 1;
    }
    let lost: Vec<_> = acked.difference(&found).collect();
    assert!(lost.is_empty(), "acknowledged projects lost after kill -9: {lost:?}");
    drop(s);
}
