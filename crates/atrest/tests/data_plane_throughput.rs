//! Side-by-side throughput of the data API for a cluster with customer keys (AWS) and one with
//! atrest's service key (NONE), in one run: the same storage engine and page cipher, so after
//! open the two differ only in who wrapped the master key. Prints the numbers; asserts only that
//! every document is there (speed claims belong in BENCHMARKS.md, not in tests).

mod common;

use std::time::{Duration, Instant};

use common::{wait_until, Client, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn make(c: &Client, g: &str, name: &str, provider: &str) {
    let body = json!({"name": name, "clusterType": "REPLICASET", "encryptionAtRestProvider": provider,
        "replicationSpecs": [{"regionConfigs": [{"providerName": "AWS", "regionName": "US_EAST_1", "priority": 7,
            "electableSpecs": {"instanceSize": "M10", "nodeCount": 3}}]}]});
    let r = c
        .clone()
        .with_accept("application/vnd.atlas.2024-10-23+json")
        .post(&format!("/api/atlas/v2/groups/{g}/clusters"), &body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn act(c: &Client, g: &str, cluster: &str, action: &str, body: Value) -> common::Resp {
    c.clone()
        .with_accept("application/json")
        .post(&format!("/data/v1/groups/{g}/clusters/{cluster}/action/{action}"), &body)
        .await
}

#[tokio::test]
async fn customer_keys_cost_nothing_after_open() {
    let s = Server::start_with(&["--key-check-interval", "1h", "--reconcile-interval", "200ms"]);
    let c = s.client();
    let g = s.enable_cmk("throughput").await.g;
    make(&c, &g, "with-cmk", "AWS").await;
    make(&c, &g, "service-key", "NONE").await;
    for cluster in ["with-cmk", "service-key"] {
        let (c2, g2) = (&c, g.as_str());
        wait_until("cluster writable", Duration::from_secs(30), || async move {
            act(c2, g2, cluster, "find", json!({"database": "b", "collection": "d", "limit": 1})).await.status
                == StatusCode::OK
        })
        .await;
    }
    let pad = "p".repeat(900);
    let mut results = vec![];
    for round in 0..2 {
        for cluster in ["with-cmk", "service-key"] {
            let start = Instant::now();
            for batch in 0..10 {
                let docs: Vec<Value> =
                    (0..500).map(|i| json!({"k": format!("{round}-{batch}-{i}"), "pad": pad})).collect();
                let r =
                    act(&c, &g, cluster, "insertMany", json!({"database": "b", "collection": "d", "documents": docs}))
                        .await;
                assert_eq!(r.status, StatusCode::OK);
            }
            let inserts = 5000.0 / start.elapsed().as_secs_f64();
            let start = Instant::now();
            for i in 0..200 {
                let r = act(
                    &c,
                    &g,
                    cluster,
                    "findOne",
                    json!({"database": "b", "collection": "d", "filter": {"k": format!("{round}-3-{i}")}}),
                )
                .await;
                assert!(r.json()["document"].is_object());
            }
            let reads = 200.0 / start.elapsed().as_secs_f64();
            results.push((round, cluster, inserts, reads));
        }
    }
    for cluster in ["with-cmk", "service-key"] {
        let r = act(&c, &g, cluster, "find", json!({"database": "b", "collection": "d", "limit": 20000})).await;
        assert_eq!(r.json()["documents"].as_array().unwrap().len(), 10_000);
    }
    for (round, cluster, inserts, reads) in &results {
        eprintln!("round {round} {cluster:12} inserts/s {inserts:8.0}  point reads/s {reads:6.0}");
    }
}
