//! Clusters in every resource version's shape: `LegacyAtlasCluster` (2023-01-01 and v1.0, as
//! older Atlas clients such as Terraform's `mongodbatlas_cluster` send and read it),
//! `AdvancedClusterDescription` (2023-02-01) and `ClusterDescription20240805` (2024-08-05,
//! 2024-10-23). One cluster reads the same in each; refusals change nothing.

mod common;

use common::{Client, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

const LEGACY: &str = "application/vnd.atlas.2023-01-01+json";
const ADVANCED: &str = "application/vnd.atlas.2023-02-01+json";
const CURRENT: &str = "application/vnd.atlas.2024-10-23+json";

async fn read(c: &Client, accept: &str, path: &str) -> Value {
    let r = c.clone().with_accept(accept).get(path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    if accept.starts_with("application/vnd.atlas.") {
        let version = &accept["application/vnd.atlas.".len()..accept.len() - "+json".len()];
        assert!(r.content_type().starts_with(&format!("application/vnd.atlas.{version}+json")), "{}", r.content_type());
    }
    r.json()
}

#[tokio::test]
async fn a_legacy_client_creates_resizes_and_reads_clusters_every_shape_agrees() {
    let s = Server::start();
    let c = s.client();
    let g = s.enable_cmk("legacy-shapes").await.g;
    let clusters = format!("/api/atlas/v2/groups/{g}/clusters");

    // Terraform's legacy cluster resource: one region from providerSettings and replicationFactor,
    // customer keys on.
    let body = json!({
        "name": "legacy", "clusterType": "REPLICASET", "numShards": 1, "replicationFactor": 3,
        "providerSettings": {"providerName": "AWS", "instanceSizeName": "M10", "regionName": "US_EAST_1"},
        "diskSizeGB": 10, "mongoDBMajorVersion": "8.0", "backupEnabled": false, "providerBackupEnabled": false,
        "encryptionAtRestProvider": "AWS",
    });
    let r = c.clone().with_accept(LEGACY).post(&clusters, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created = r.json();
    assert_eq!(created["providerSettings"]["instanceSizeName"], "M10", "{created}");
    assert_eq!(created["providerSettings"]["regionName"], "US_EAST_1");
    assert_eq!(created["encryptionAtRestProvider"], "AWS");
    assert_eq!(created["replicationSpecs"][0]["regionsConfig"]["US_EAST_1"]["electableNodes"], 3);
    assert!(created["replicationSpecs"][0].get("regionConfigs").is_none(), "{created}");
    // The customer key really protects it: data is served once it is up.
    let probe = json!({"database": "d", "collection": "c", "documents": [{"_id": "a"}]});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while c.data(&g, "legacy", "insertMany", &probe).await.status != StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "legacy cluster never served data");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let one = format!("{clusters}/legacy");
    let advanced = read(&c, ADVANCED, &one).await;
    assert_eq!(advanced["replicationSpecs"][0]["numShards"], 1, "{advanced}");
    assert_eq!(advanced["replicationSpecs"][0]["regionConfigs"][0]["electableSpecs"]["instanceSize"], "M10");
    assert!(advanced.get("providerSettings").is_none());
    let current = read(&c, CURRENT, &one).await;
    assert!(current["replicationSpecs"][0].get("numShards").is_none(), "{current}");
    assert_eq!(current["replicationSpecs"][0]["regionConfigs"][0]["regionName"], "US_EAST_1");
    assert_eq!(current["encryptionAtRestProvider"], "AWS");
    // v1.0 is the legacy shape, as Atlas serves it.
    let v1 = read(&c, "application/json", &format!("/api/atlas/v1.0/groups/{g}/clusters/legacy")).await;
    assert_eq!(v1["providerSettings"]["providerName"], "AWS", "{v1}");
    assert_eq!(v1["replicationFactor"], 3);
    let listed = read(&c, LEGACY, &clusters).await;
    assert_eq!(listed["results"][0]["providerSettings"]["instanceSizeName"], "M10", "{listed}");

    // A legacy resize names only the size: every region takes it.
    let r = c
        .clone()
        .with_accept(LEGACY)
        .patch(&one, &json!({"providerSettings": {"providerName": "AWS", "instanceSizeName": "M20"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let current = read(&c, CURRENT, &one).await;
    assert_eq!(current["replicationSpecs"][0]["regionConfigs"][0]["electableSpecs"]["instanceSize"], "M20");
    assert_eq!(current["replicationSpecs"][0]["regionConfigs"][0]["electableSpecs"]["nodeCount"], 3);

    // Two regions through regionsConfig; the preferred one first in the other shapes.
    let body = json!({
        "name": "two-regions", "clusterType": "REPLICASET",
        "providerSettings": {"providerName": "AWS", "instanceSizeName": "M30"},
        "replicationSpecs": [{"numShards": 1, "zoneName": "Zone 1", "regionsConfig": {
            "US_WEST_2": {"electableNodes": 2, "priority": 6, "readOnlyNodes": 0, "analyticsNodes": 0},
            "US_EAST_1": {"electableNodes": 3, "priority": 7},
        }}],
    });
    let r = c.clone().with_accept(LEGACY).post(&clusters, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["replicationFactor"], 5);
    let current = read(&c, CURRENT, &format!("{clusters}/two-regions")).await;
    let configs = &current["replicationSpecs"][0]["regionConfigs"];
    assert_eq!(configs[0]["regionName"], "US_EAST_1", "{current}");
    assert_eq!(configs[1]["regionName"], "US_WEST_2");
    assert_eq!(configs[1]["electableSpecs"]["nodeCount"], 2);
    assert_eq!(configs[1]["electableSpecs"]["instanceSize"], "M30");

    // A 2023-02-01 body (numShards in its spec) is read too.
    let mut body = common::cluster_body("advanced", "M10", "NONE", &["US_EAST_1"]);
    body["replicationSpecs"][0]["numShards"] = json!(1);
    let r = c.clone().with_accept(ADVANCED).post(&clusters, &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["replicationSpecs"][0]["numShards"], 1);

    // Refusals, each naming what is wrong; nothing is created.
    let ps = json!({"providerName": "AWS", "instanceSizeName": "M10", "regionName": "US_EAST_1"});
    for (bad, code, says) in [
        (json!({"name": "x", "providerSettings": ps, "numShards": 2}), "INVALID_ATTRIBUTE", "numShards"),
        (
            json!({"name": "x", "providerSettings": ps, "replicationFactor": 4}),
            "INVALID_ENUM_VALUE",
            "replicationFactor",
        ),
        (
            json!({"name": "x", "providerSettings": {"providerName": "GCP", "instanceSizeName": "M10", "regionName": "US_EAST_1"}}),
            "",
            "GCP",
        ),
        (
            json!({"name": "x", "providerSettings": {"providerName": "AWS"},
                   "replicationSpecs": [{"regionsConfig": {"US_EAST_1": {"electableNodes": 3, "priority": 7}}}]}),
            "MISSING_ATTRIBUTE",
            "instanceSizeName",
        ),
        (
            json!({"name": "x", "providerSettings": ps,
                   "replicationSpecs": [{"regionsConfig": {"US_EAST_1": {"electableNodes": 3, "readOnlyNodes": 1}}}]}),
            "INVALID_ATTRIBUTE",
            "readOnlyNodes",
        ),
        (
            json!({"name": "x", "providerSettings": ps, "providerBackupEnabled": true}),
            "INVALID_ATTRIBUTE",
            "providerBackupEnabled",
        ),
        (json!({"name": "x", "providerSettings": {"instanceSizeName": "M10"}}), "", "providerName"),
    ] {
        let r = c.clone().with_accept(LEGACY).post(&clusters, &bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        let e = r.json();
        if !code.is_empty() {
            assert_eq!(e["errorCode"], code, "{bad}: {e}");
        }
        assert!(e["detail"].as_str().unwrap().contains(says), "{bad}: {e}");
    }
    assert_eq!(read(&c, CURRENT, &clusters).await["totalCount"], 3);
}
