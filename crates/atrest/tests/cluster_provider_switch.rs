//! Switching a cluster from NONE to AWS re-encrypts its data in the background with progress; a
//! `kill -9` in the middle and a restart finish it with every document intact.

mod common;

use std::time::Duration;

use common::{cluster_body, wait_until, Client, Server, V2024};
use reqwest::StatusCode;
use serde_json::{json, Value};

const FAST: &[&str] = &["--key-check-interval", "1s", "--reconcile-interval", "200ms"];
/// 100 MB of documents: 4 databases × 50 batches × 500 documents of ~1 KB.
const DATABASES: usize = 4;
const BATCHES: usize = 50;
const PER_BATCH: usize = 500;

async fn status(c: &Client, g: &str) -> Value {
    c.clone()
        .with_accept("application/json")
        .get(&format!("/api/atrest/v1/groups/{g}/clusters/switching/encryption"))
        .await
        .json()
}

#[tokio::test]
async fn none_to_aws_switch_survives_kill_9() {
    let s = Server::start_with(FAST);
    let c = s.client();
    let cmk = s.enable_cmk("switch").await;
    let g = cmk.g.clone();
    c.create_cluster(&g, &cluster_body("switching", "M10", "NONE", &["US_EAST_1"])).await;

    let filler = "x".repeat(1000);
    for db in 0..DATABASES {
        for batch in 0..BATCHES {
            let docs: Vec<Value> = (0..PER_BATCH).map(|i| json!({"b": batch, "i": i, "pad": filler})).collect();
            let body = json!({"database": format!("db{db}"), "collection": "docs", "documents": docs});
            let r = c.data(&g, "switching", "insertMany", &body).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
    }

    let r = c
        .clone()
        .with_accept(V2024)
        .patch(&format!("/api/atlas/v2/groups/{g}/clusters/switching"), &json!({"encryptionAtRestProvider": "AWS"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["stateName"], "UPDATING");

    // Progress is visible while it runs; kill -9 once some of it is done.
    let mut seen = Value::Null;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let st = status(&c, &g).await;
        if st["switchProgress"]["bytesDone"].as_u64().unwrap_or(0) > 0 || st["stateName"] == "IDLE" {
            seen = st;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!seen.is_null(), "no progress was ever visible");
    let killed_mid_way = seen["stateName"] == "UPDATING";
    let s = s.restart_with(FAST);
    let c = s.client();
    let (c3, g2) = (&c, g.as_str());
    wait_until("switch finished after restart", Duration::from_secs(120), || async move {
        let st = status(c3, g2).await;
        st["stateName"] == "IDLE" && st["encryptionAtRestProvider"] == "AWS"
    })
    .await;
    for db in 0..DATABASES {
        let r = c
            .data(
                &g,
                "switching",
                "find",
                &json!({"database": format!("db{db}"), "collection": "docs", "limit": 100000}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json()["documents"].as_array().unwrap().len(), BATCHES * PER_BATCH, "db{db} lost documents");
    }
    assert!(s.events(&g).await.contains(&"CLUSTER_ENCRYPTION_AT_REST_PROVIDER_CHANGED".to_owned()));
    eprintln!("killed mid-way: {killed_mid_way}; progress seen: {seen}");
}
