//! Side-by-side throughput of the data API for a cluster with customer keys (AWS) and one with
//! atrest's service key (NONE), in one run: the same storage engine and page cipher, so after
//! open the two differ only in who wrapped the master key. Prints the numbers; asserts only that
//! every document is there (speed claims belong in BENCHMARKS.md, not in tests).

mod common;

use std::time::Instant;

use common::{cluster_body, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn customer_keys_cost_nothing_after_open() {
    let s = Server::start_with(&["--key-check-interval", "1h", "--reconcile-interval", "200ms"]);
    let c = s.client();
    let g = s.enable_cmk("throughput").await.g;
    for (cluster, provider) in [("with-cmk", "AWS"), ("service-key", "NONE")] {
        c.create_cluster(&g, &cluster_body(cluster, "M10", provider, &["US_EAST_1"])).await;
    }
    let pad = "p".repeat(900);
    let mut results = vec![];
    for round in 0..2 {
        for cluster in ["with-cmk", "service-key"] {
            let start = Instant::now();
            for batch in 0..10 {
                let docs: Vec<Value> =
                    (0..500).map(|i| json!({"k": format!("{round}-{batch}-{i}"), "pad": pad})).collect();
                let r = c
                    .data(&g, cluster, "insertMany", &json!({"database": "b", "collection": "d", "documents": docs}))
                    .await;
                assert_eq!(r.status, StatusCode::OK);
            }
            let inserts = 5000.0 / start.elapsed().as_secs_f64();
            let start = Instant::now();
            for i in 0..200 {
                let filter = json!({"database": "b", "collection": "d", "filter": {"k": format!("{round}-3-{i}")}});
                let r = c.data(&g, cluster, "findOne", &filter).await;
                assert!(r.json()["document"].is_object());
            }
            let reads = 200.0 / start.elapsed().as_secs_f64();
            results.push((round, cluster, inserts, reads));
        }
    }
    for cluster in ["with-cmk", "service-key"] {
        let r = c.data(&g, cluster, "find", &json!({"database": "b", "collection": "d", "limit": 20000})).await;
        assert_eq!(r.json()["documents"].as_array().unwrap().len(), 10_000);
    }
    for (round, cluster, inserts, reads) in &results {
        eprintln!("round {round} {cluster:12} inserts/s {inserts:8.0}  point reads/s {reads:6.0}");
    }
}
