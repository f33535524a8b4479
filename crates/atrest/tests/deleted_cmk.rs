//! "If Atlas can't access an AWS KMS key, any data that the key encrypted becomes inaccessible":
//! a CMK deleted in KMS makes its cluster unreadable for good, and atrest says so.

mod common;

use std::time::Duration;

use common::{cluster_body, wait_until, Server};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_deleted_cmk_makes_the_data_unreadable_for_good() {
    // One "day" of the pending-deletion window lasts 200 ms: 7 days pass in 1.4 s.
    let s = Server::start_with(&[
        "--key-check-interval",
        "1s",
        "--reconcile-interval",
        "200ms",
        "--aws-key-deletion-day",
        "200ms",
    ]);
    let c = s.client();
    let cmk = s.enable_cmk("deleted").await;
    let g = cmk.g.as_str();
    c.create_cluster(g, &cluster_body("doomed", "M10", "AWS", &["US_EAST_1"])).await;
    let r = c
        .data(g, "doomed", "insertOne", &json!({"database": "db", "collection": "c", "document": {"secret": 1}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    s.customer().kms.schedule_key_deletion().key_id(&cmk.key_arn).pending_window_in_days(7).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let described = s.customer().kms.describe_key().key_id(&cmk.key_arn).send().await;
    assert!(described.is_err(), "the key is gone from KMS");

    let find = json!({"database": "db", "collection": "c"});
    let (c2, f2) = (&c, &find);
    wait_until("the cluster says its key was deleted", Duration::from_secs(10), || async move {
        let r = c2.data(g, "doomed", "find", f2).await;
        r.status == StatusCode::SERVICE_UNAVAILABLE && r.text.contains("can never be read again")
    })
    .await;
    assert_eq!(c.data(g, "doomed", "find", &find).await.error_code(), "ENCRYPTION_AT_REST_KEY_INACCESSIBLE");
    let ear = c.get(&format!("/api/atlas/v2/groups/{g}/encryptionAtRest")).await.json();
    assert_eq!(ear["awsKms"]["valid"], false);
    // The data stays on disk, encrypted, and no restart brings it back.
    assert!(s.dir.join("clusters").read_dir().unwrap().count() > 0);
    let s = s.restart_with(&["--key-check-interval", "1s", "--reconcile-interval", "200ms"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = s.client().data(g, "doomed", "find", &find).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
}
