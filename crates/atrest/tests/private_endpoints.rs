//! The page's "Enable and Set up Private Endpoint Connections" and "Create New Endpoints"
//! procedures through the API, with private networking enforced on the wire.

mod common;

use std::time::Duration;

use common::{wait_until, Client, Server};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const FAST: &[&str] = &["--reconcile-interval", "200ms", "--aws-endpoint-ready", "300ms", "--key-check-interval", "1s"];

fn pes(g: &str) -> String {
    format!("/api/atlas/v2/groups/{g}/encryptionAtRest/AWS/privateEndpoints")
}

async fn endpoint(c: &Client, g: &str, id: &str) -> common::Resp {
    c.get(&format!("{}/{id}", pes(g))).await
}

async fn wait_status(c: &Client, g: &str, id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        last = endpoint(c, g, id).await.json();
        if last["status"] == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("endpoint {id} never reached {status}: {last}");
}

async fn list(c: &Client, g: &str) -> Vec<Value> {
    c.get(&pes(g)).await.json()["results"].as_array().unwrap().clone()
}

async fn kms_requests(s: &Server) -> Value {
    s.admin(Method::GET, "requests", None).await["byService"]["kms"].clone()
}

fn count(v: &Value, addr: &str) -> u64 {
    v[addr].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn endpoints_carry_every_kms_call_when_private_networking_is_required() {
    let s = Server::start_with(FAST);
    let c = s.client();
    let cmk = s.enable_cmk("private").await;
    let g = cmk.g.as_str();

    // Not before private networking is required.
    let r = c.post(&pes(g), &json!({"regionName": "US_EAST_1"})).await;
    assert_eq!(r.error_code(), "ENCRYPTION_AT_REST_PRIVATE_NETWORKING_NOT_REQUIRED", "{}", r.text);

    let r = c
        .patch(
            &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
            &json!({"awsKms": {"requirePrivateNetworking": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["awsKms"]["requirePrivateNetworking"], true);

    // Create endpoints in two regions.
    let east = c.post(&pes(g), &json!({"regionName": "US_EAST_1"})).await;
    assert_eq!(east.status, StatusCode::ACCEPTED, "{}", east.text);
    let east = east.json();
    assert_eq!(east["status"], "INITIATING");
    assert_eq!(east["cloudProvider"], "AWS");
    assert_eq!(east["regionName"], "US_EAST_1");
    let west = c.post(&pes(g), &json!({"regionName": "US_WEST_2"})).await.json();
    let (east_id, west_id) = (east["id"].as_str().unwrap(), west["id"].as_str().unwrap());

    // Refusals while they provision.
    let r = c.post(&pes(g), &json!({"regionName": "US_EAST_1"})).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::CONFLICT, "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_ALREADY_EXISTS")
    );
    let r = c.post(&pes(g), &json!({"regionName": "MARS_1"})).await;
    assert_eq!(r.error_code(), "INVALID_REGION");
    let r = c
        .post(
            &format!("/api/atlas/v2/groups/{g}/encryptionAtRest/AZURE/privateEndpoints"),
            &json!({"regionName": "US_EAST_1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let initiating = endpoint(&c, g, west_id).await.json();
    if initiating["status"] == "INITIATING" {
        let r = c.delete(&format!("{}/{west_id}", pes(g))).await;
        assert_eq!(r.error_code(), "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_DELETE_BLOCKED_DURING_PROVISIONING");
    }

    let east = wait_status(&c, g, east_id, "ACTIVE").await;
    wait_status(&c, g, west_id, "ACTIVE").await;
    let vpce = east["privateEndpointConnectionName"].as_str().unwrap().to_owned();
    assert!(vpce.starts_with("vpce-"), "{east}");
    assert_eq!(east["errorMessage"], json!(null));
    let page = c.get(&pes(g)).await.json();
    assert_eq!(page["totalCount"], 2);

    // The customer locks the key to the endpoint: deny anything not arriving through it.
    let customer = s.customer();
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM policies", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{}:root", cmk.key_arn.split(':').nth(4).unwrap())}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "Only through the endpoint", "Effect": "Deny", "Principal": "*", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*",
         "Condition": {"StringNotEquals": {"aws:SourceVpce": vpce}}}]});
    customer
        .kms
        .put_key_policy()
        .key_id(&cmk.key_id)
        .policy(policy.to_string())
        .policy_name("default")
        .send()
        .await
        .unwrap();
    let public_kms = customer
        .kms
        .encrypt()
        .key_id(&cmk.key_id)
        .plaintext(aws_sdk_kms::primitives::Blob::new(b"x".to_vec()))
        .send()
        .await;
    assert!(public_kms.is_err(), "the policy refuses calls on the public address");

    s.admin(Method::DELETE, "requests", None).await;
    // Validation (GET re-validates) and the periodic checks keep working through the endpoint.
    let r = c.get(&format!("/api/atlas/v2/groups/{g}/encryptionAtRest")).await;
    assert_eq!(r.json()["awsKms"]["valid"], true, "{}", r.text);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = c
        .patch(
            &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
            &json!({"awsKms": {"region": "US_EAST_1", "roleId": cmk.role_id}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let kms = kms_requests(&s).await;
    assert_eq!(count(&kms, "public"), 0, "no KMS call may use the public address: {kms}");
    assert!(count(&kms, &vpce) >= 9, "every check went through {vpce}: {kms}");
    assert!(!s.events(g).await.contains(&"ENCRYPTION_AT_REST_CONFIG_NO_LONGER_VALID".to_owned()));

    // Out of order: private networking and customer keys cannot be switched off while endpoints exist.
    let ear = format!("/api/atlas/v2/groups/{g}/encryptionAtRest");
    let before = s.stored_aws_kms(g);
    for body in [json!({"awsKms": {"requirePrivateNetworking": false}}), json!({"awsKms": {"enabled": false}})] {
        let r = c.patch(&ear, &body).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(
            r.error_code(),
            "CANNOT_DISABLE_ENCRYPTION_AT_REST_REQUIRE_PRIVATE_NETWORKING_WHILE_PRIVATE_ENDPOINTS_EXIST"
        );
        assert_eq!(s.stored_aws_kms(g), before);
    }

    // Deletion: 204 with the page's JSON body, DELETING, then 404, and gone in AWS.
    for id in [east_id, west_id] {
        let r = c.request(Method::DELETE, &format!("{}/{id}", pes(g)), Some(&json!({"regionName": "US_EAST_1"}))).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        let now = endpoint(&c, g, id).await;
        assert!(now.status == StatusCode::NOT_FOUND || now.json()["status"] == "DELETING", "{}", now.text);
    }
    let c2 = &c;
    wait_until("both endpoints gone", Duration::from_secs(20), || async move { list(c2, g).await.is_empty() }).await;
    assert_eq!(endpoint(&c, g, east_id).await.status, StatusCode::NOT_FOUND);
    let aws = s.admin(Method::GET, "endpoints", None).await;
    let live: Vec<&Value> = aws["endpoints"].as_array().unwrap().iter().filter(|e| e["state"] != "deleted").collect();
    assert!(live.is_empty(), "VPC endpoints left in AWS: {live:?}");

    // The right order now succeeds.
    let r = c.patch(&ear, &json!({"awsKms": {"requirePrivateNetworking": false}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = c.patch(&ear, &json!({"awsKms": {"enabled": false}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn a_rejected_endpoint_is_recreated_and_waits_for_acceptance() {
    let s = Server::start_with(FAST);
    let c = s.client();
    let cmk = s.enable_cmk("recreate").await;
    let g = cmk.g.as_str();
    c.patch(
        &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
        &json!({"awsKms": {"requirePrivateNetworking": true}}),
    )
    .await;
    let first = c.post(&pes(g), &json!({"regionName": "US_EAST_1"})).await.json();
    let first_id = first["id"].as_str().unwrap();
    let active = wait_status(&c, g, first_id, "ACTIVE").await;
    let vpce = active["privateEndpointConnectionName"].as_str().unwrap().to_owned();

    // From now on new endpoints in the region need the customer's acceptance; then the
    // customer rejects the active one.
    s.admin(Method::POST, "regions/us-east-1/acceptance-required", None).await;
    let creds = aws_emulator::client::read_profile(&s.dir.join("aws-credentials"), "customer").unwrap();
    let ec2 = aws_emulator::client::Ec2Client::new(&s.aws_url(), "us-east-1", creds);
    let service = aws_emulator::ec2::service_id("us-east-1");
    ec2.reject_vpc_endpoint_connections(&service, &[vpce.clone()]).await.unwrap();

    wait_status(&c, g, first_id, "PENDING_RECREATION").await;
    let c2 = &c;
    let mut replacement = String::new();
    wait_until("a new endpoint for the region", Duration::from_secs(20), || {
        let found = async move {
            list(c2, g)
                .await
                .iter()
                .find(|e| e["id"] != first_id && e["regionName"] == "US_EAST_1")
                .map(|e| e["id"].as_str().unwrap().to_owned())
        };
        async { found.await.is_some() }
    })
    .await;
    for e in list(&c, g).await {
        if e["id"] != first_id {
            replacement = e["id"].as_str().unwrap().to_owned();
        }
    }
    let pending = wait_status(&c, g, &replacement, "PENDING_ACCEPTANCE").await;
    let new_vpce = pending["privateEndpointConnectionName"].as_str().unwrap().to_owned();
    assert_ne!(new_vpce, vpce);

    ec2.accept_vpc_endpoint_connections(&service, &[new_vpce]).await.unwrap();
    wait_status(&c, g, &replacement, "ACTIVE").await;
    wait_until("the replaced record retired", Duration::from_secs(20), || async move {
        endpoint(c2, g, first_id).await.status == StatusCode::NOT_FOUND
    })
    .await;
    let events = s.events(g).await;
    assert!(
        events.iter().filter(|e| *e == "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_STATUS_CHANGED").count() >= 4,
        "{events:?}"
    );
}

#[tokio::test]
async fn an_unavailable_region_fails_with_a_message() {
    let s = Server::start_with(FAST);
    let c = s.client();
    let cmk = s.enable_cmk("failing").await;
    let g = cmk.g.as_str();
    c.patch(
        &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
        &json!({"awsKms": {"requirePrivateNetworking": true}}),
    )
    .await;
    s.admin(Method::POST, "regions/eu-west-1/unavailable", None).await;
    let e = c.post(&pes(g), &json!({"regionName": "EU_WEST_1"})).await.json();
    let failed = wait_status(&c, g, e["id"].as_str().unwrap(), "FAILED").await;
    let msg = failed["errorMessage"].as_str().unwrap_or("");
    assert!(!msg.is_empty(), "{failed}");
    // A failed endpoint can be deleted, and disappears.
    let r = c.delete(&format!("{}/{}", pes(g), e["id"].as_str().unwrap())).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let c2 = &c;
    wait_until("failed endpoint removed", Duration::from_secs(20), || async move { list(c2, g).await.is_empty() })
        .await;
}

#[tokio::test]
async fn kill_9_during_creation_and_deletion_leaves_no_orphan_or_duplicate() {
    let mut s = Server::start_with(FAST);
    let cmk = s.enable_cmk("crashes").await;
    let g = cmk.g.clone();
    s.client()
        .patch(
            &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
            &json!({"awsKms": {"requirePrivateNetworking": true}}),
        )
        .await;
    let regions = ["US_EAST_1", "US_WEST_2", "EU_CENTRAL_1", "AP_SOUTHEAST_2"];
    for round in 0..8u64 {
        let region = regions[round as usize % regions.len()];
        let c = s.client();
        let r = c.post(&pes(&g), &json!({"regionName": region})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        let id = r.json()["id"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(round * 53 % 400)).await;
        s = s.restart_with(FAST);
        let c = s.client();
        wait_status(&c, &g, &id, "ACTIVE").await;
        let r = c.delete(&format!("{}/{id}", pes(&g))).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        tokio::time::sleep(Duration::from_millis(round * 97 % 300)).await;
        s = s.restart_with(FAST);
        let c = s.client();
        let g2 = g.clone();
        wait_until("endpoint deleted after restart", Duration::from_secs(20), || {
            let (c, g2, id) = (c.clone(), g2.clone(), id.clone());
            async move { endpoint(&c, &g2, &id).await.status == StatusCode::NOT_FOUND }
        })
        .await;
    }
    // AWS holds exactly the endpoints atrest records: none.
    let aws = s.admin(Method::GET, "endpoints", None).await;
    let live: Vec<&Value> = aws["endpoints"].as_array().unwrap().iter().filter(|e| e["state"] != "deleted").collect();
    assert!(live.is_empty(), "orphaned VPC endpoints: {live:?}");
    let all = aws["endpoints"].as_array().unwrap().len();
    assert_eq!(all, 8, "one VPC endpoint per created record, no duplicates: {aws}");
}
