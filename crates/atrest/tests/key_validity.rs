//! The validity reconciler: a disabled key flips `valid` within two check intervals, an enabled
//! one flips it back, and network trouble never flips it.

mod common;

use std::time::Duration;

use common::{wait_until, Server, PAGE_ACTIONS};
use serde_json::json;

async fn enabled_project(s: &Server) -> (String, String) {
    let c = s.client();
    let customer = s.customer();
    let g = c.post("/api/atlas/v2/groups", &json!({"name": "validity", "orgId": s.org_id()})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role =
        c.post(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess"), &json!({"providerName": "AWS"})).await.json();
    let (key_id, key_arn) = customer.create_key().await;
    let arn = customer
        .create_atlas_role(
            "validity",
            role["atlasAWSAccountArn"].as_str().unwrap(),
            role["atlasAssumedRoleExternalId"].as_str().unwrap(),
            &key_arn,
            PAGE_ACTIONS,
        )
        .await;
    let role_id = role["roleId"].as_str().unwrap();
    c.patch(
        &format!("/api/atlas/v2/groups/{g}/cloudProviderAccess/{role_id}"),
        &json!({"providerName": "AWS", "iamAssumedRoleArn": arn}),
    )
    .await;
    let r = c
        .patch(
            &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
            &json!({"awsKms": {"enabled": true, "customerMasterKeyID": key_id, "region": "US_EAST_1", "roleId": role_id}}),
        )
        .await;
    assert_eq!(r.json()["awsKms"]["valid"], true, "{}", r.text);
    (g, key_arn)
}

fn stored_valid(s: &Server, g: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(&s.stored_aws_kms(g).unwrap()).unwrap();
    v["valid"].as_bool().unwrap()
}

#[tokio::test]
async fn disabling_the_key_flips_valid_and_enabling_restores_it() {
    let s = Server::start_with(&["--key-check-interval", "1s"]);
    let (g, key_arn) = enabled_project(&s).await;
    let customer = s.customer();

    customer.disable_key(&key_arn).await;
    // Two intervals, plus scheduling slack of one tick.
    let s2 = &s;
    wait_until("valid=false after the key was disabled", Duration::from_millis(2500), || async {
        !stored_valid(s2, &g)
    })
    .await;
    assert!(s.events(&g).await.contains(&"ENCRYPTION_AT_REST_CONFIG_NO_LONGER_VALID".to_owned()));

    customer.enable_key(&key_arn).await;
    wait_until("valid=true after the key was enabled", Duration::from_millis(2500), || async { stored_valid(s2, &g) })
        .await;
    assert!(s.events(&g).await.contains(&"ENCRYPTION_AT_REST_CONFIG_IS_VALID".to_owned()));
}

#[tokio::test]
async fn throttling_and_timeouts_never_flip_valid() {
    let s = Server::start_with(&["--key-check-interval", "1s", "--aws-call-timeout", "1s"]);
    let (g, _) = enabled_project(&s).await;

    for rule in [
        json!({"service": "kms", "kind": "throttle"}),
        json!({"service": "kms", "kind": "error503"}),
        json!({"service": "kms", "kind": "latency", "latencyMs": 3000}),
        json!({"service": "sts", "kind": "drop"}),
    ] {
        s.fault(rule.clone()).await;
        let before = s.events(&g).await.iter().filter(|e| *e == "ENCRYPTION_AT_REST_KMS_NETWORK_ACCESS_DENIED").count();
        let s2 = &s;
        let g2 = g.clone();
        wait_until(&format!("a network-trouble event under {rule}"), Duration::from_secs(10), || {
            let g2 = g2.clone();
            async move {
                s2.events(&g2).await.iter().filter(|e| *e == "ENCRYPTION_AT_REST_KMS_NETWORK_ACCESS_DENIED").count()
                    > before
            }
        })
        .await;
        assert!(stored_valid(&s, &g), "valid flipped under {rule}");
        s.clear_faults().await;
    }
    assert!(!s.events(&g).await.contains(&"ENCRYPTION_AT_REST_CONFIG_NO_LONGER_VALID".to_owned()));
}
