//! IAM roles, STS AssumeRole with external ids, and KMS access decided by key and role policies.

mod common;

use std::time::Duration;

use aws_emulator::client;
use common::{blob, code, create_role, encrypt, session_creds, start, start_with};
use serde_json::json;

fn trust(operator_arn: &str, external_id: &str) -> String {
    json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":operator_arn},
        "Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":external_id}}}]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_role_operations_and_errors() {
    let env = start().await;
    let customer = env.emu.customer();
    let operator = env.emu.operator();
    let iam = env.iam(&customer);

    let created = iam
        .create_role()
        .role_name("atlas-kms")
        .path("/atrest/")
        .description("Atlas encryption at rest")
        .max_session_duration(7200)
        .assume_role_policy_document(trust(&operator.arn, "ext-1"))
        .send()
        .await
        .unwrap();
    let role = created.role().unwrap();
    assert_eq!(role.arn(), format!("arn:aws:iam::{}:role/atrest/atlas-kms", customer.account_id));
    assert!(role.role_id().starts_with("AROA"));
    assert_eq!(role.path(), "/atrest/");
    assert_eq!(role.max_session_duration(), Some(7200));
    let doc = percent_encoding::percent_decode_str(role.assume_role_policy_document().unwrap())
        .decode_utf8()
        .unwrap()
        .to_string();
    assert!(doc.contains("ext-1"));

    let got = iam.get_role().role_name("atlas-kms").send().await.unwrap();
    assert_eq!(got.role().unwrap().role_id(), role.role_id());

    let e = iam
        .create_role()
        .role_name("atlas-kms")
        .assume_role_policy_document(trust(&operator.arn, "x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "EntityAlreadyExists");
    let e = iam.get_role().role_name("nope").send().await.unwrap_err();
    assert_eq!(code(e), "NoSuchEntity");
    let e =
        iam.create_role().role_name("bad").assume_role_policy_document("{\"Statement\": 5}").send().await.unwrap_err();
    assert_eq!(code(e), "MalformedPolicyDocument");
    let unsupported = json!({"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*",
        "Condition":{"DateGreaterThanOrSomething":{"aws:CurrentTime":"2020-01-01"}}}]});
    let e = iam
        .put_role_policy()
        .role_name("atlas-kms")
        .policy_name("p")
        .policy_document(unsupported.to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "MalformedPolicyDocument");

    let inline =
        json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Decrypt"],"Resource":"*"}]});
    iam.put_role_policy()
        .role_name("atlas-kms")
        .policy_name("kms")
        .policy_document(inline.to_string())
        .send()
        .await
        .unwrap();
    let names = iam.list_role_policies().role_name("atlas-kms").send().await.unwrap();
    assert_eq!(names.policy_names(), ["kms".to_string()]);
    let p = iam.get_role_policy().role_name("atlas-kms").policy_name("kms").send().await.unwrap();
    let decoded = percent_encoding::percent_decode_str(p.policy_document()).decode_utf8().unwrap().to_string();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&decoded).unwrap(), inline);
    let e = iam.get_role_policy().role_name("atlas-kms").policy_name("other").send().await.unwrap_err();
    assert_eq!(code(e), "NoSuchEntity");
    let e = iam.delete_role().role_name("atlas-kms").send().await.unwrap_err();
    assert_eq!(code(e), "DeleteConflict");
    iam.update_assume_role_policy()
        .role_name("atlas-kms")
        .policy_document(trust(&operator.arn, "ext-2"))
        .send()
        .await
        .unwrap();
    let got = iam.get_role().role_name("atlas-kms").send().await.unwrap();
    assert!(got.role().unwrap().assume_role_policy_document().unwrap().contains("ext-2"));
    iam.delete_role_policy().role_name("atlas-kms").policy_name("kms").send().await.unwrap();
    iam.delete_role().role_name("atlas-kms").send().await.unwrap();
    let e = iam.get_role().role_name("atlas-kms").send().await.unwrap_err();
    assert_eq!(code(e), "NoSuchEntity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_external_id_and_kms_permissions() {
    let env = start().await;
    let customer = env.emu.customer();
    let operator = env.emu.operator();
    let iam = env.iam(&customer);
    let kms_customer = env.kms(&customer);

    let key = kms_customer.create_key().send().await.unwrap().key_metadata().unwrap().arn().unwrap().to_string();
    let role_arn = create_role(&iam, "atlas", trust(&operator.arn, "project-ext-id")).await;
    // The role may decrypt and describe the key, but not encrypt.
    let inline = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":["kms:Decrypt","kms:DescribeKey"],"Resource":key}]});
    iam.put_role_policy()
        .role_name("atlas")
        .policy_name("kms")
        .policy_document(inline.to_string())
        .send()
        .await
        .unwrap();

    let sts = env.sts(&operator);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some(operator.account_id.as_str()));
    assert_eq!(me.arn(), Some(operator.arn.as_str()));

    // Wrong or missing external id: AccessDenied.
    let e = sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("atrest")
        .external_id("wrong-id")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "AccessDenied");
    let e = sts.assume_role().role_arn(&role_arn).role_session_name("atrest").send().await.unwrap_err();
    assert_eq!(code(e), "AccessDenied");
    // The customer's own root is not named by the trust policy either.
    let e = env
        .sts(&customer)
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("atrest")
        .external_id("project-ext-id")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "AccessDenied");
    let e = sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("atrest")
        .external_id("project-ext-id")
        .duration_seconds(7200)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "ValidationError");
    let e = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{}:role/missing", customer.account_id))
        .role_session_name("atrest")
        .external_id("project-ext-id")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "AccessDenied");

    // Right external id: temporary credentials.
    let assumed = sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("atrest")
        .external_id("project-ext-id")
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap();
    assert!(c.access_key_id().starts_with("ASIA") && c.access_key_id().len() == 20);
    assert_eq!(c.secret_access_key().len(), 40);
    let user = assumed.assumed_role_user().unwrap();
    assert_eq!(user.arn(), format!("arn:aws:sts::{}:assumed-role/atlas/atrest", customer.account_id));
    let session = session_creds(c);
    let who = client::sts_client(&env.emu.url(), "us-east-1", &session).get_caller_identity().send().await.unwrap();
    assert_eq!(who.arn(), Some(user.arn()));
    assert_eq!(who.account(), Some(customer.account_id.as_str()));

    // KMS as the role session: no kms:Encrypt → AccessDeniedException; Decrypt works.
    let kms_role = client::kms_client(&env.emu.url(), "us-east-1", &session);
    let e = kms_role.encrypt().key_id(&key).plaintext(blob(b"x")).send().await.unwrap_err();
    assert_eq!(code(e), "AccessDeniedException");
    let ct = encrypt(&kms_customer, &key, b"wrapped by customer").await;
    let d = kms_role.decrypt().ciphertext_blob(ct.clone()).send().await.unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"wrapped by customer");
    kms_role.describe_key().key_id(&key).send().await.unwrap();
    // A bare key id means "in my account": the session is in the customer account, so it works.
    // The operator's own root cannot use the customer's key (key policy names only the customer).
    let kms_operator = env.kms(&operator);
    let e = kms_operator.decrypt().ciphertext_blob(ct.clone()).send().await.unwrap_err();
    assert_eq!(code(e), "AccessDeniedException");
    // Cross-account: the key policy names the operator account, whose root needs nothing more.
    let policy = json!({"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"AWS":customer.arn},"Action":"kms:*","Resource":"*"},
        {"Effect":"Allow","Principal":{"AWS":operator.account_id},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]});
    kms_customer.put_key_policy().key_id(&key).policy_name("default").policy(policy.to_string()).send().await.unwrap();
    kms_operator.decrypt().ciphertext_blob(ct.clone()).send().await.unwrap();
    kms_operator.encrypt().key_id(&key).plaintext(blob(b"x")).send().await.unwrap();
    let e = kms_operator.describe_key().key_id(&key).send().await.unwrap_err();
    assert_eq!(code(e), "AccessDeniedException");
    // The customer-root statement still delegates to IAM: the role's inline policy still counts.
    kms_role.decrypt().ciphertext_blob(ct).send().await.unwrap();

    // Expired session: the token lives 900 s; jump the clock.
    env.advance_clock(901).await;
    let e = kms_role.describe_key().key_id(&key).send().await.unwrap_err();
    assert_eq!(code(e), "ExpiredTokenException");
    let e = client::sts_client(&env.emu.url(), "us-east-1", &session).get_caller_identity().send().await.unwrap_err();
    assert_eq!(code(e), "ExpiredToken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_policy_changes_propagate_after_a_delay() {
    let env = start_with(|c| c.iam_propagation_delay = Duration::from_millis(1500)).await;
    let customer = env.emu.customer();
    let operator = env.emu.operator();
    let iam = env.iam(&customer);
    let arn = create_role(&iam, "slow", trust(&operator.arn, "e1")).await;
    let sts = env.sts(&operator);
    let assume = |ext: &'static str| {
        let sts = sts.clone();
        let arn = arn.clone();
        async move { sts.assume_role().role_arn(arn).role_session_name("s1").external_id(ext).send().await }
    };
    // Not yet visible to STS.
    assert_eq!(code(assume("e1").await.unwrap_err()), "AccessDenied");
    common::eventually(10, || async { assume("e1").await.ok() }).await;
    // A changed trust policy: STS keeps the previous version until it propagates.
    iam.update_assume_role_policy().role_name("slow").policy_document(trust(&operator.arn, "e2")).send().await.unwrap();
    assume("e1").await.unwrap();
    assert_eq!(code(assume("e2").await.unwrap_err()), "AccessDenied");
    common::eventually(10, || async { assume("e2").await.ok() }).await;
    assert_eq!(code(assume("e1").await.unwrap_err()), "AccessDenied");
}
