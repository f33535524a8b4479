//! Rotation: a master-key rotation and a CMK change re-wrap keys only — the database files' bytes
//! do not change — and afterwards the old CMK can be disabled without the data noticing.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{cluster_body, wait_until, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;

fn database_hashes(dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.parent().is_some_and(|d| d.ends_with("db")) && !p.to_string_lossy().ends_with("-shm") {
                // The -shm file is SQLite's WAL index (page numbers, read marks), rewritten by
                // every read transaction; it holds no data.
                out.insert(p.display().to_string(), hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap())));
            }
        }
    }
    out
}

#[tokio::test]
async fn rotation_and_cmk_change_rewrite_no_data() {
    let s = Server::start_with(&["--key-check-interval", "1s", "--reconcile-interval", "200ms"]);
    let c = s.client();
    let cmk = s.enable_cmk("rotation").await;
    let g = cmk.g.as_str();
    let (c2, g2) = (&c, g);
    c.create_cluster(g, &cluster_body("rotating", "M10", "AWS", &["US_EAST_1"])).await;
    let r =
        c.data(g, "rotating", "insertOne", &json!({"database": "db1", "collection": "c", "document": {"n": -1}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for db in ["db1", "db2"] {
        let docs: Vec<Value> = (0..500).map(|i| json!({"n": i, "db": db})).collect();
        let r =
            c.data(g, "rotating", "insertMany", &json!({"database": db, "collection": "c", "documents": docs})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let count = |db: &'static str| async move {
        c2.data(g2, "rotating", "find", &json!({"database": db, "collection": "c", "limit": 10000})).await.json()
            ["documents"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    let clusters_dir = s.dir.join("clusters");
    let before = database_hashes(&clusters_dir);
    assert!(before.len() >= 2, "{before:?}");

    // Master-key rotation on demand.
    let r = c
        .clone()
        .with_accept("application/json")
        .post(&format!("/api/atrest/v1/groups/{g}/clusters/rotating/rotateMasterKey"), &json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["masterKeyVersion"], 2);
    assert_eq!(database_hashes(&clusters_dir), before, "a master-key rotation rewrote data");
    assert_eq!((count("db1").await, count("db2").await), (501, 500));

    // CMK change: a second key the role may use, then the project switches to it.
    let customer = s.customer();
    let (new_id, new_arn) = customer.create_key().await;
    customer.allow_keys(&cmk.role_name, &[&cmk.key_arn, &new_arn]).await;
    let r = c
        .patch(
            &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
            &json!({"awsKms": {"customerMasterKeyID": new_id}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["awsKms"]["valid"], true);
    assert!(s.events(g).await.contains(&"ENCRYPTION_AT_REST_KEY_ROTATION_STARTED".to_owned()));
    assert_eq!(database_hashes(&clusters_dir), before, "a CMK change rewrote data");

    // The old CMK can go: the data no longer depends on it, now or after a restart.
    customer.disable_key(&cmk.key_arn).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!((count("db1").await, count("db2").await), (501, 500));
    let s = s.restart_with(&["--key-check-interval", "1s", "--reconcile-interval", "200ms"]);
    let c = s.client();
    let c3 = &c;
    wait_until("served after restart with the new CMK", Duration::from_secs(30), || async move {
        c3.data(g2, "rotating", "find", &json!({"database": "db2", "collection": "c", "limit": 10000})).await.json()
            ["documents"]
            .as_array()
            .map(Vec::len)
            == Some(500)
    })
    .await;
}
