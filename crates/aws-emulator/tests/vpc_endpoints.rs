//! KMS VPC endpoints: EC2 API, per-endpoint listeners, aws:SourceVpce policies, accept/reject.

mod common;

use aws_emulator::client;
use common::{blob, code, eventually, start, start_with};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_policy_requires_the_endpoint() {
    let env = start().await;
    let operator = env.emu.operator();
    let customer = env.emu.customer();
    let ec2 = env.ec2(&operator, "us-east-1");

    // Create (idempotent by client token) and wait for `available`.
    let ep = ec2.create_vpc_endpoint("vpc-0a1b2c3d", Some("token-1")).await.unwrap();
    assert!(ep.vpc_endpoint_id.starts_with("vpce-"));
    assert_eq!(ep.state, "pending");
    assert_eq!(ep.service_name, "com.amazonaws.us-east-1.kms");
    assert!(ep.dns_names[0].ends_with(".kms.us-east-1.vpce.amazonaws.com"));
    let again = ec2.create_vpc_endpoint("vpc-0a1b2c3d", Some("token-1")).await.unwrap();
    assert_eq!(again.vpc_endpoint_id, ep.vpc_endpoint_id);
    let id = ep.vpc_endpoint_id.clone();
    let ready = eventually(10, || {
        let ec2 = ec2.clone();
        let id = id.clone();
        async move {
            let list = ec2.describe_vpc_endpoints(&[id]).await.ok()?;
            list.into_iter().find(|e| e.state == "available")
        }
    })
    .await;
    let url = ready.url.clone().expect("emulator endpoint url tag");
    assert!(url.starts_with("http://127.0.0.1:"));

    // The customer's key: usable by the operator only through this endpoint.
    let kms_c = env.kms(&customer);
    let key = kms_c.create_key().send().await.unwrap().key_metadata().unwrap().arn().unwrap().to_string();
    let policy = json!({"Version":"2012-10-17","Statement":[
        {"Sid":"root","Effect":"Allow","Principal":{"AWS":customer.arn},"Action":"kms:*","Resource":"*"},
        {"Sid":"atlas","Effect":"Allow","Principal":{"AWS":operator.arn},"Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"],"Resource":"*"},
        {"Sid":"private-only","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
         "Condition":{"StringNotEquals":{"aws:SourceVpce":id},"StringNotEqualsIfExists":{"aws:PrincipalAccount":customer.account_id}}}]});
    kms_c.put_key_policy().key_id(&key).policy_name("default").policy(policy.to_string()).send().await.unwrap();
    env.admin_delete("/_emulator/requests").await;

    let public = env.kms(&operator);
    let e = public.encrypt().key_id(&key).plaintext(blob(b"x")).send().await.unwrap_err();
    assert_eq!(code(e), "AccessDeniedException");
    let private = client::kms_client(&url, "us-east-1", &common::creds(&operator));
    let ct = private
        .encrypt()
        .key_id(&key)
        .plaintext(blob(b"through the endpoint"))
        .encryption_context("project", "p")
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let d = private.decrypt().ciphertext_blob(ct.clone()).encryption_context("project", "p").send().await.unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"through the endpoint");

    // Arrival addresses are recorded.
    let counts = env.admin_get("/_emulator/requests").await;
    assert_eq!(counts["byService"]["kms"][&id], json!(2), "{counts}");
    assert_eq!(counts["byService"]["kms"]["public"], json!(1), "{counts}");

    // Only KMS is served on the endpoint.
    let e = client::sts_client(&url, "us-east-1", &common::creds(&operator))
        .get_caller_identity()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "AccessDenied");

    // The customer sees the connection and rejects it: the listener stops serving.
    let ec2_c = env.ec2(&customer, "us-east-1");
    let conns = ec2_c.describe_vpc_endpoint_connections().await.unwrap();
    let conn = conns.iter().find(|c| c.vpc_endpoint_id == id).unwrap();
    assert_eq!(conn.vpc_endpoint_state, "available");
    assert_eq!(conn.vpc_endpoint_owner, operator.account_id);
    let failed = ec2_c.reject_vpc_endpoint_connections(&conn.service_id, std::slice::from_ref(&id)).await.unwrap();
    assert!(failed.is_empty());
    let e = private.decrypt().ciphertext_blob(ct.clone()).encryption_context("project", "p").send().await.unwrap_err();
    assert!(e.as_service_error().is_none(), "rejected endpoint must not answer: {e:?}");
    let listed = ec2.describe_vpc_endpoints(std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(listed[0].state, "rejected");

    // Accepting it again restores service on the same address.
    ec2_c.accept_vpc_endpoint_connections(&conn.service_id, std::slice::from_ref(&id)).await.unwrap();
    let listed = ec2.describe_vpc_endpoints(std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(listed[0].url.as_deref(), Some(url.as_str()));
    let private = client::kms_client(&url, "us-east-1", &common::creds(&operator));
    private.decrypt().ciphertext_blob(ct.clone()).encryption_context("project", "p").send().await.unwrap();

    // Delete.
    let failed = ec2.delete_vpc_endpoints(std::slice::from_ref(&id)).await.unwrap();
    assert!(failed.is_empty());
    let listed = ec2.describe_vpc_endpoints(std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(listed[0].state, "deleted");
    let failed = ec2.delete_vpc_endpoints(&["vpce-00000000000000000".to_string()]).await.unwrap();
    assert_eq!(failed[0].1, "InvalidVpcEndpoint.NotFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_states_acceptance_failure_and_errors() {
    let env = start_with(|c| c.endpoint_ready_delay = std::time::Duration::ZERO).await;
    let operator = env.emu.operator();
    let customer = env.emu.customer();

    // Errors.
    let ec2 = env.ec2(&operator, "us-east-1");
    let e = ec2.describe_vpc_endpoints(&["vpce-0123456789abcdef0".to_string()]).await.unwrap_err();
    assert_eq!(e.code(), "InvalidVpcEndpointId.NotFound");
    let e = ec2
        .call(
            "CreateVpcEndpoint",
            &[
                ("VpcId".into(), "vpc-12345678".into()),
                ("ServiceName".into(), "com.amazonaws.us-east-1.s3".into()),
                ("VpcEndpointType".into(), "Interface".into()),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "InvalidServiceName");
    let e = ec2.create_vpc_endpoint("nope", None).await.unwrap_err();
    assert_eq!(e.code(), "InvalidVpcId.Malformed");
    let bad = aws_emulator::Ec2Client::new(
        &env.emu.url(),
        "us-east-1",
        aws_emulator::client::StaticCredentials::new(&operator.access_key_id, "wrong-secret"),
    );
    assert_eq!(bad.describe_vpc_endpoints(&[]).await.unwrap_err().code(), "AuthFailure");

    // A region configured as requiring acceptance.
    env.admin_post("/_emulator/regions/us-west-2/acceptance-required", json!({})).await;
    let west = env.ec2(&operator, "us-west-2");
    let ep = west.create_vpc_endpoint("vpc-11111111", None).await.unwrap();
    assert_eq!(ep.state, "pendingAcceptance");
    let url = ep.url.clone().unwrap();
    // Not serving yet: the connection is closed.
    let k = client::kms_client(&url, "us-west-2", &common::creds(&operator));
    let e = k.list_keys().send().await.unwrap_err();
    assert!(e.as_service_error().is_none());
    let west_c = env.ec2(&customer, "us-west-2");
    west_c
        .accept_vpc_endpoint_connections(
            &aws_emulator::ec2::service_id("us-west-2"),
            std::slice::from_ref(&ep.vpc_endpoint_id),
        )
        .await
        .unwrap();
    let listed = west.describe_vpc_endpoints(std::slice::from_ref(&ep.vpc_endpoint_id)).await.unwrap();
    assert_eq!(listed[0].state, "available");
    let k = client::kms_client(&url, "us-west-2", &common::creds(&operator));
    k.list_keys().send().await.unwrap();

    // An unavailable region: creation ends in `failed`.
    env.admin_post("/_emulator/regions/eu-central-1/unavailable", json!({})).await;
    let eu = env.ec2(&operator, "eu-central-1");
    let ep = eu.create_vpc_endpoint("vpc-22222222", None).await.unwrap();
    assert_eq!(ep.state, "failed");
    assert!(ep.url.is_none());
    let admin = env.admin_get("/_emulator/endpoints").await;
    assert_eq!(admin["endpoints"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_listeners_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = common::config(dir.path());
    cfg.endpoint_ready_delay = std::time::Duration::ZERO;
    let emu = aws_emulator::Emulator::start(cfg.clone()).await.unwrap();
    let operator = emu.operator();
    let ec2 = aws_emulator::Ec2Client::new(&emu.url(), "us-east-1", common::creds(&operator));
    let ep = ec2.create_vpc_endpoint("vpc-33333333", None).await.unwrap();
    let url = ep.url.clone().unwrap();
    emu.shutdown().await;

    let emu = aws_emulator::Emulator::start(cfg).await.unwrap();
    assert_eq!(emu.operator(), operator);
    let ec2 = aws_emulator::Ec2Client::new(&emu.url(), "us-east-1", common::creds(&operator));
    let listed = ec2.describe_vpc_endpoints(std::slice::from_ref(&ep.vpc_endpoint_id)).await.unwrap();
    assert_eq!(listed[0].state, "available");
    let url2 = listed[0].url.clone().unwrap();
    assert_eq!(url2, url, "same port after restart when it is free");
    let k = client::kms_client(&url2, "us-east-1", &common::creds(&operator));
    k.list_keys().send().await.unwrap();
    emu.shutdown().await;
}
