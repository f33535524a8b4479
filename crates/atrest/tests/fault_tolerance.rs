//! AWS misbehaving, through the embedded AWS's fault injection: 500s and clock skew never flip
//! `valid` (network trouble says nothing about the key), a revoked key policy does, failed checks
//! back off, and no API call that reaches AWS hangs when AWS does not answer.
//! (Throttling, 503, latency and dropped STS connections: key_validity.rs.)

mod common;

use std::time::{Duration, Instant};

use common::{cluster_body, wait_until, Server, V2024};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const NETWORK_EVENT: &str = "ENCRYPTION_AT_REST_KMS_NETWORK_ACCESS_DENIED";

fn stored_valid(s: &Server, g: &str) -> bool {
    let v: Value = serde_json::from_str(&s.stored_aws_kms(g).unwrap()).unwrap();
    v["valid"].as_bool().unwrap()
}

async fn network_events(s: &Server, g: &str) -> usize {
    s.events(g).await.iter().filter(|e| *e == NETWORK_EVENT).count()
}

#[tokio::test]
async fn internal_errors_and_clock_skew_never_flip_valid_but_revocation_does() {
    let s = Server::start_with(&["--key-check-interval", "1s", "--aws-call-timeout", "1s"]);
    let cmk = s.enable_cmk("faults").await;
    let g = cmk.g.clone();
    for rule in [
        json!({"service": "kms", "kind": "error500"}),
        json!({"service": "sts", "kind": "error500"}),
        json!({"service": "kms", "kind": "skew"}),
        json!({"service": "sts", "kind": "skew"}),
        json!({"service": "kms", "kind": "drop"}),
    ] {
        s.fault(rule.clone()).await;
        let before = network_events(&s, &g).await;
        let (s2, g2) = (&s, g.as_str());
        wait_until(&format!("a network-trouble event under {rule}"), Duration::from_secs(15), || async move {
            network_events(s2, g2).await > before
        })
        .await;
        assert!(stored_valid(&s, &g), "valid flipped under {rule}");
        s.clear_faults().await;
    }
    assert!(!s.events(&g).await.contains(&"ENCRYPTION_AT_REST_CONFIG_NO_LONGER_VALID".to_owned()));

    // A denial is not a network fault: the customer takes the role's access away.
    let customer = s.customer();
    customer.iam.delete_role_policy().role_name(&cmk.role_name).policy_name("atlas-kms-access").send().await.unwrap();
    let (s2, g2) = (&s, g.as_str());
    wait_until(
        "valid=false after access was revoked",
        Duration::from_secs(15),
        || async move { !stored_valid(s2, g2) },
    )
    .await;
    assert!(s.events(&g).await.contains(&"ENCRYPTION_AT_REST_CONFIG_NO_LONGER_VALID".to_owned()));
}

/// Seconds since the epoch of an event's `created`.
fn created_secs(e: &Value) -> i64 {
    let fmt = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(e["created"].as_str().unwrap(), &fmt).unwrap().unix_timestamp()
}

#[tokio::test]
async fn failed_checks_back_off() {
    let s = Server::start_with(&["--key-check-interval", "30s", "--aws-call-timeout", "1s"]);
    let cmk = s.enable_cmk("backoff").await;
    let g = cmk.g.clone();
    s.fault(json!({"service": "kms", "kind": "throttle"})).await;
    // Nudge a check now rather than in 30 s.
    let r = s.client().get(&format!("/api/atlas/v2/groups/{g}/encryptionAtRest")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (s2, g2) = (&s, g.as_str());
    wait_until("five failed checks", Duration::from_secs(40), || async move { network_events(s2, g2).await >= 5 })
        .await;
    let events = s.client().get(&format!("/api/atlas/v2/groups/{g}/events?itemsPerPage=500")).await.json();
    let mut times: Vec<i64> = events["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["eventTypeName"] == NETWORK_EVENT)
        .map(created_secs)
        .collect();
    times.sort();
    let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // 500 ms doubling: the wait between failed checks grows (seconds resolution, 1 s ticks).
    assert!(gaps[gaps.len() - 1] >= 4, "no backoff between failed checks: gaps {gaps:?}");
    assert!(gaps[gaps.len() - 1] > gaps[0], "no backoff between failed checks: gaps {gaps:?}");
    assert!(stored_valid(&s, &g));
}

#[tokio::test]
async fn no_call_to_aws_hangs_when_aws_does_not_answer() {
    let s = Server::start_with(&[
        "--key-check-interval",
        "1h",
        "--aws-call-timeout",
        "1s",
        "--reconcile-interval",
        "200ms",
    ]);
    let cmk = s.enable_cmk("hangs").await;
    let g = cmk.g.clone();
    let c = s.client();
    c.create_cluster(&g, &cluster_body("alive", "M10", "AWS", &["US_EAST_1"])).await;
    let customer = s.customer();
    let role =
        c.post(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess"), &json!({"providerName": "AWS"})).await.json();
    let role_id = role["roleId"].as_str().unwrap().to_owned();
    let arn = customer
        .create_atlas_role(
            "hangs-2",
            role["atlasAWSAccountArn"].as_str().unwrap(),
            role["atlasAssumedRoleExternalId"].as_str().unwrap(),
            &cmk.key_arn,
            common::PAGE_ACTIONS,
        )
        .await;

    // Every call that reaches AWS, each against an AWS that never answers or hangs up.
    let calls: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::PATCH,
            format!("/api/atlas/v2/groups/{g}/cloudProviderAccess/{role_id}"),
            Some(json!({"providerName": "AWS", "iamAssumedRoleArn": arn})),
            V2024,
        ),
        (Method::GET, format!("/api/atlas/v2/groups/{g}/encryptionAtRest"), None, common::V2),
        (
            Method::PATCH,
            format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
            Some(json!({"awsKms": {"customerMasterKeyID": cmk.key_id}})),
            common::V2,
        ),
        (
            Method::POST,
            format!("/api/atlas/v2/groups/{g}/clusters"),
            Some(cluster_body("blocked", "M10", "AWS", &["US_EAST_1"])),
            V2024,
        ),
        (
            Method::POST,
            format!("/api/atrest/v1/groups/{g}/clusters/alive/rotateMasterKey"),
            Some(json!({})),
            "application/json",
        ),
    ];
    for kind in ["latency", "drop"] {
        s.clear_faults().await;
        for service in ["kms", "sts", "iam", "ec2"] {
            s.fault(json!({"service": service, "kind": kind, "latencyMs": 120_000})).await;
        }
        for (method, path, body, accept) in &calls {
            let started = Instant::now();
            let r = c.clone().with_accept(accept).request(method.clone(), path, body.as_ref()).await;
            // An answer (the client gives up after 30 s), and a defined one: never a 500.
            assert_ne!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{kind}: {method} {path}: {}", r.text);
            eprintln!("{kind}: {method} {path}: {} after {:?}", r.status, started.elapsed());
        }
    }
    s.clear_faults().await;
    // The server is healthy afterwards and the cluster's data is still there.
    let r = c.data(&g, "alive", "find", &json!({"database": "d", "collection": "c"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
