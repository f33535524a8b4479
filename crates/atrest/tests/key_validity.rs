//! The validity reconciler: a disabled key flips `valid` within two check intervals, an enabled
//! one flips it back, and network trouble never flips it.

mod common;

use std::time::Duration;

use common::{wait_until, Server};
use serde_json::json;

async fn enabled_project(s: &Server) -> (String, String) {
    let cmk = s.enable_cmk("validity").await;
    (cmk.g, cmk.key_arn)
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
