//! "Enable Customer Key Management for an Atlas Cluster": data really encrypted under the CMK
//! hierarchy, dark when the key is disabled, back when it is enabled, and the disable order.

mod common;

use std::time::Duration;

use common::{cluster_body, wait_until, Client, Server, V2024};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn wait_idle(c: &Client, g: &str, name: &str) {
    let c2 = c.clone().with_accept(V2024);
    let path = format!("/api/atlas/v2/groups/{g}/clusters/{name}");
    wait_until(&format!("cluster {name} IDLE"), Duration::from_secs(60), || {
        let (c2, path) = (c2.clone(), path.clone());
        async move { c2.get(&path).await.json()["stateName"] == "IDLE" }
    })
    .await;
}

async fn count_docs(c: &Client, g: &str, cluster: &str) -> usize {
    let r = c.data(g, cluster, "find", &json!({"database": "shop", "collection": "orders", "limit": 20000})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["documents"].as_array().unwrap().len()
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn documents_are_encrypted_go_dark_with_the_key_and_come_back() {
    let s = Server::start_with(&["--key-check-interval", "1s", "--reconcile-interval", "200ms"]);
    let c = s.client();
    let cv = c.clone().with_accept(V2024);
    let cmk = s.enable_cmk("clusters").await;
    let g = cmk.g.as_str();

    // Tenant tiers cannot use customer keys.
    for tier in ["M0", "M2", "M5"] {
        let r = cv
            .post(
                &format!("/api/atlas/v2/groups/{g}/clusters"),
                &cluster_body(&format!("t-{}", tier.to_lowercase()), tier, "AWS", &["US_EAST_1"]),
            )
            .await;
        assert_eq!(r.error_code(), "CANNOT_USE_ENCRYPTION_AT_REST_TENANT", "{}", r.text);
    }
    let r = cv.post(&format!("/api/atlas/v2/groups/{g}/clusters"), &json!({"name": "x", "diskIOPS": 3})).await;
    assert_eq!(r.error_code(), "INVALID_ATTRIBUTE");

    let r = cv
        .post(&format!("/api/atlas/v2/groups/{g}/clusters"), &cluster_body("orders", "M10", "AWS", &["US_EAST_1"]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["stateName"], "CREATING");
    assert_eq!(r.json()["encryptionAtRestProvider"], "AWS");
    assert!(r.content_type().contains("2024-10-23"), "{}", r.content_type());
    wait_idle(&c, g, "orders").await;

    // 10,000 documents with a unique marker, written in batches.
    let marker = format!("MARKER-{}", hex::encode(rand::random::<[u8; 8]>()));
    for batch in 0..10 {
        let docs: Vec<Value> = (0..1000)
            .map(|i| json!({"n": batch * 1000 + i, "note": format!("{marker} #{}", batch * 1000 + i)}))
            .collect();
        let r = c
            .data(g, "orders", "insertMany", &json!({"database": "shop", "collection": "orders", "documents": docs}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    assert_eq!(count_docs(&c, g, "orders").await, 10_000);
    let one = c
        .data(g, "orders", "findOne", &json!({"database": "shop", "collection": "orders", "filter": {"n": 4242}}))
        .await
        .json();
    assert_eq!(one["document"]["note"], format!("{marker} #4242"));

    // No file under the data directory holds the marker: not the databases, WAL, journals, logs.
    for f in files_under(&s.dir) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_bytes()), "{} holds plaintext", f.display());
    }

    // Out of order: the project cannot turn customer keys off while a cluster uses them.
    let ear = format!("/api/atlas/v2/groups/{g}/encryptionAtRest");
    let r = c.patch(&ear, &json!({"awsKms": {"enabled": false}})).await;
    assert_eq!((r.status, r.error_code().as_str()), (StatusCode::CONFLICT, "CANNOT_DISABLE_ENCRYPTION_AT_REST"));

    // Revocation: the key disabled in KMS → within two check intervals, reads and writes refused.
    let customer = s.customer();
    customer.disable_key(&cmk.key_arn).await;
    let (c2, g2) = (&c, g);
    wait_until("data refused after the key was disabled", Duration::from_millis(2500), || async move {
        c2.data(g2, "orders", "findOne", &json!({"database": "shop", "collection": "orders", "filter": {"n": 1}}))
            .await
            .status
            == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let r = c
        .data(g, "orders", "insertOne", &json!({"database": "shop", "collection": "orders", "document": {"n": -1}}))
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "ENCRYPTION_AT_REST_KEY_INACCESSIBLE")
    );

    // Access returns: every document reads back unchanged.
    customer.enable_key(&cmk.key_arn).await;
    wait_until("data served again after the key was enabled", Duration::from_secs(10), || async move {
        c2.data(g2, "orders", "findOne", &json!({"database": "shop", "collection": "orders", "filter": {"n": 1}}))
            .await
            .status
            == StatusCode::OK
    })
    .await;
    assert_eq!(count_docs(&c, g, "orders").await, 10_000);

    // The right order: the cluster to NONE (re-encryption in the background), then the project.
    let r = cv
        .patch(&format!("/api/atlas/v2/groups/{g}/clusters/orders"), &json!({"encryptionAtRestProvider": "NONE"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["stateName"], "UPDATING");
    wait_idle(&c, g, "orders").await;
    let status = c
        .clone()
        .with_accept("application/json")
        .get(&format!("/api/atrest/v1/groups/{g}/clusters/orders/encryption"))
        .await
        .json();
    assert_eq!(status["encryptionAtRestProvider"], "NONE", "{status}");
    assert_eq!(count_docs(&c, g, "orders").await, 10_000);
    let r = c.patch(&ear, &json!({"awsKms": {"enabled": false}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The project key is gone, the NONE cluster keeps serving.
    assert_eq!(count_docs(&c, g, "orders").await, 10_000);

    // Deleting the cluster destroys its keys and files.
    let r = cv.delete(&format!("/api/atlas/v2/groups/{g}/clusters/orders")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let cv2 = &cv;
    wait_until("cluster gone", Duration::from_secs(20), || async move {
        cv2.get(&format!("/api/atlas/v2/groups/{g2}/clusters/orders")).await.status == StatusCode::NOT_FOUND
    })
    .await;
    // Only a tombstone keyring without any key remains (it says the cluster was destroyed).
    let left: Vec<_> = files_under(&s.dir.join("clusters"));
    assert!(left.iter().all(|f| f.file_name().unwrap() == "keyring"), "files left after deletion: {left:?}");
}

#[tokio::test]
async fn no_kms_call_per_document_write_after_open() {
    let s = Server::start_with(&["--key-check-interval", "1h", "--reconcile-interval", "200ms"]);
    let c = s.client();
    let cmk = s.enable_cmk("kms-calls").await;
    let g = cmk.g.as_str();
    let r = c
        .clone()
        .with_accept(V2024)
        .post(&format!("/api/atlas/v2/groups/{g}/clusters"), &cluster_body("counted", "M10", "AWS", &["US_EAST_1"]))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    wait_idle(&c, g, "counted").await;
    let r = c
        .data(g, "counted", "insertOne", &json!({"database": "shop", "collection": "orders", "document": {"n": 0}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let kms_total = |v: Value| -> u64 {
        v["byService"]["kms"].as_object().map(|m| m.values().filter_map(Value::as_u64).sum()).unwrap_or(0)
    };
    let before = kms_total(s.admin(Method::GET, "requests", None).await);
    for batch in 0..10 {
        let docs: Vec<Value> = (0..1000).map(|i| json!({"n": batch * 1000 + i})).collect();
        let body = json!({"database": "shop", "collection": "orders", "documents": docs});
        let r = c.data(g, "counted", "insertMany", &body).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let after = kms_total(s.admin(Method::GET, "requests", None).await);
    assert!(before > 0, "opening the cluster called KMS");
    assert_eq!(after - before, 0, "KMS calls during 10,000 document writes");
}
