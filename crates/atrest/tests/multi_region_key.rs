//! A multi-region key over private networking: each region of a cluster wraps its master key with
//! that region's replica, through that region's endpoint, and nothing goes to the public address.

mod common;

use std::time::Duration;

use common::{cluster_body, wait_until, Server, PAGE_ACTIONS};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn each_region_uses_its_replica_through_its_endpoint() {
    let s = Server::start_with(&[
        "--key-check-interval",
        "1h",
        "--reconcile-interval",
        "200ms",
        "--aws-endpoint-ready",
        "300ms",
    ]);
    let c = s.client();
    let customer = s.customer();
    let g = c.post("/api/atlas/v2/groups", &json!({"name": "mrk", "orgId": s.org_id()})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role =
        c.post(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess"), &json!({"providerName": "AWS"})).await.json();
    let role_id = role["roleId"].as_str().unwrap().to_owned();

    // The customer's multi-region key, replicated into us-west-2.
    let key = customer.kms.create_key().multi_region(true).send().await.unwrap();
    let key_arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    assert!(key_arn.contains("key/mrk-"), "{key_arn}");
    customer.kms.replicate_key().key_id(&key_arn).replica_region("us-west-2").send().await.unwrap();
    let replica_arn = key_arn.replace(":us-east-1:", ":us-west-2:");
    let role_arn = customer
        .create_atlas_role(
            "mrk",
            role["atlasAWSAccountArn"].as_str().unwrap(),
            role["atlasAssumedRoleExternalId"].as_str().unwrap(),
            &key_arn,
            PAGE_ACTIONS,
        )
        .await;
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": PAGE_ACTIONS, "Resource": [key_arn, replica_arn]}]});
    customer
        .iam
        .put_role_policy()
        .role_name("mrk")
        .policy_name("atlas-kms-access")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    let r = c
        .patch(
            &format!("/api/atlas/v2/groups/{g}/cloudProviderAccess/{role_id}"),
            &json!({"providerName": "AWS", "iamAssumedRoleArn": role_arn}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let ear = format!("/api/atlas/v2/groups/{g}/encryptionAtRest");
    let r = c.patch(&ear, &json!({"awsKms": {"enabled": true, "customerMasterKeyID": key_arn, "region": "US_EAST_1", "roleId": role_id}})).await;
    assert_eq!(r.json()["awsKms"]["valid"], true, "{}", r.text);
    let r = c.patch(&ear, &json!({"awsKms": {"requirePrivateNetworking": true}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Endpoints in both regions.
    let pes = format!("/api/atlas/v2/groups/{g}/encryptionAtRest/AWS/privateEndpoints");
    for region in ["US_EAST_1", "US_WEST_2"] {
        assert_eq!(c.post(&pes, &json!({"regionName": region})).await.status, StatusCode::ACCEPTED);
    }
    let (c2, p2) = (&c, pes.as_str());
    wait_until("both endpoints ACTIVE", Duration::from_secs(20), || async move {
        let list = c2.get(p2).await.json();
        list["results"].as_array().is_some_and(|l| l.len() == 2 && l.iter().all(|e| e["status"] == "ACTIVE"))
    })
    .await;
    let list = c.get(&pes).await.json();
    let west_vpce = list["results"].as_array().unwrap().iter().find(|e| e["regionName"] == "US_WEST_2").unwrap()
        ["privateEndpointConnectionName"]
        .as_str()
        .unwrap()
        .to_owned();

    // A cluster in both regions: each region's master key goes through its own endpoint.
    s.admin(Method::DELETE, "requests", None).await;
    c.create_cluster(&g, &cluster_body("global", "M10", "AWS", &["US_EAST_1", "US_WEST_2"])).await;
    let r =
        c.data(&g, "global", "insertOne", &json!({"database": "db", "collection": "c", "document": {"x": 1}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let kms: Value = s.admin(Method::GET, "requests", None).await["byService"]["kms"].clone();
    assert_eq!(kms["public"].as_u64().unwrap_or(0), 0, "no KMS call on the public address: {kms}");
    assert!(kms[&west_vpce].as_u64().unwrap_or(0) > 0, "us-west-2's master key went through its endpoint: {kms}");
}
