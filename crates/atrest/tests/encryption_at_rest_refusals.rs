//! Every refusal of cloud provider access and Encryption at Rest, each leaving the stored
//! configuration byte for byte as it was.

mod common;

use common::{Client, Server, PAGE_ACTIONS};
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Project {
    g: String,
    role_id: String,
    atlas_arn: String,
    external_id: String,
}

async fn project(s: &Server, c: &Client, name: &str) -> Project {
    let g = c.post("/api/atlas/v2/groups", &json!({"name": name, "orgId": s.org_id()})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role =
        c.post(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess"), &json!({"providerName": "AWS"})).await.json();
    Project {
        g,
        role_id: role["roleId"].as_str().unwrap().into(),
        atlas_arn: role["atlasAWSAccountArn"].as_str().unwrap().into(),
        external_id: role["atlasAssumedRoleExternalId"].as_str().unwrap().into(),
    }
}

async fn authorize(c: &Client, p: &Project, role_arn: &str) -> common::Resp {
    c.patch(
        &format!("/api/atlas/v2/groups/{}/cloudProviderAccess/{}", p.g, p.role_id),
        &json!({"providerName": "AWS", "iamAssumedRoleArn": role_arn}),
    )
    .await
}

async fn patch_ear(c: &Client, p: &Project, aws_kms: Value) -> common::Resp {
    c.patch(&format!("/api/atlas/v2/groups/{}/encryptionAtRest", p.g), &json!({"awsKms": aws_kms})).await
}

fn enable(key: &str, role_id: &str) -> Value {
    json!({"enabled": true, "customerMasterKeyID": key, "region": "US_EAST_1", "roleId": role_id})
}

#[tokio::test]
async fn each_refusal_has_its_code_and_changes_nothing() {
    let s = Server::start();
    let c = s.client();
    let customer = s.customer();

    // Wrong external id in the trust policy: CANNOT_ASSUME_ROLE.
    let p = project(&s, &c, "wrong-external-id").await;
    let (_, key_arn) = customer.create_key().await;
    let arn =
        customer.create_atlas_role("wrong-ext", &p.atlas_arn, "not-the-external-id", &key_arn, PAGE_ACTIONS).await;
    let r = authorize(&c, &p, &arn).await;
    assert_eq!((r.status, r.error_code().as_str()), (StatusCode::BAD_REQUEST, "CANNOT_ASSUME_ROLE"), "{}", r.text);
    let role = c.get(&format!("/api/atlas/v2/groups/{}/cloudProviderAccess/{}", p.g, p.role_id)).await.json();
    assert_eq!(role["iamAssumedRoleArn"], json!(null), "a refused authorization records nothing");

    // Role not authorized: CLOUD_PROVIDER_ACCESS_ROLE_NOT_AUTHORIZED.
    let r = patch_ear(&c, &p, enable(&key_arn, &p.role_id)).await;
    assert_eq!(r.error_code(), "CLOUD_PROVIDER_ACCESS_ROLE_NOT_AUTHORIZED", "{}", r.text);
    assert_eq!(s.stored_aws_kms(&p.g), None);

    // Bad access keys: INVALID_AWS_CREDENTIALS.
    let keys = s.client();
    let fresh = project(&s, &keys, "legacy-keys").await;
    let r = patch_ear(
        &keys,
        &fresh,
        json!({"enabled": true, "customerMasterKeyID": key_arn, "region": "US_EAST_1",
               "accessKeyID": "AKIAAAAAAAAAAAAAAAAA", "secretAccessKey": "wrong-secret-wrong-secret-wrong-secret00"}),
    )
    .await;
    assert_eq!(r.error_code(), "INVALID_AWS_CREDENTIALS", "{}", r.text);
    assert_eq!(s.stored_aws_kms(&fresh.g), None);

    // A working baseline for the rest.
    let p = project(&s, &c, "baseline").await;
    let (key_id, key_arn) = customer.create_key().await;
    let arn = customer.create_atlas_role("baseline", &p.atlas_arn, &p.external_id, &key_arn, PAGE_ACTIONS).await;
    assert_eq!(authorize(&c, &p, &arn).await.status, StatusCode::OK);
    let r = patch_ear(&c, &p, enable(&key_id, &p.role_id)).await;
    assert_eq!(r.json()["awsKms"]["valid"], true, "{}", r.text);
    let baseline = s.stored_aws_kms(&p.g).expect("saved");

    let check = |r: common::Resp, code: &str| {
        assert_eq!(r.error_code(), code, "{}", r.text);
        assert!(r.status.is_client_error());
        assert_eq!(
            s.stored_aws_kms(&p.g).as_deref(),
            Some(baseline.as_str()),
            "refusal {code} changed the configuration"
        );
    };

    // A key the role's policy does not allow to encrypt: NO_PERMISSION_TO_ENCRYPT_DECRYPT.
    let (_, other_arn) = customer.create_key().await;
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt", "kms:DescribeKey"], "Resource": [key_arn]},
        {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": [other_arn]}]});
    customer
        .iam
        .put_role_policy()
        .role_name("baseline")
        .policy_name("atlas-kms-access")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    check(patch_ear(&c, &p, json!({"customerMasterKeyID": other_arn})).await, "NO_PERMISSION_TO_ENCRYPT_DECRYPT");

    // A disabled key: AWS_KMS_CUSTOMER_MASTER_KEY_NOT_ENABLED.
    let (_, disabled_arn) = customer.create_key().await;
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": PAGE_ACTIONS, "Resource": [key_arn, disabled_arn]}]});
    customer
        .iam
        .put_role_policy()
        .role_name("baseline")
        .policy_name("atlas-kms-access")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    customer.disable_key(&disabled_arn).await;
    check(
        patch_ear(&c, &p, json!({"customerMasterKeyID": disabled_arn})).await,
        "AWS_KMS_CUSTOMER_MASTER_KEY_NOT_ENABLED",
    );

    // A key pending deletion: AWS_KMS_CUSTOMER_MASTER_KEY_PENDING_DELETION.
    customer.enable_key(&disabled_arn).await;
    customer.kms.schedule_key_deletion().key_id(&disabled_arn).pending_window_in_days(7).send().await.unwrap();
    check(
        patch_ear(&c, &p, json!({"customerMasterKeyID": disabled_arn})).await,
        "AWS_KMS_CUSTOMER_MASTER_KEY_PENDING_DELETION",
    );

    // A bare key id of a key in another account than the role's: INVALID_ATTRIBUTE.
    let operator = s.operator_profile();
    let operator_kms = aws_emulator::client::kms_client(&s.aws_url(), "us-east-1", &operator);
    let foreign = operator_kms.create_key().send().await.unwrap();
    let foreign_id = foreign.key_metadata().unwrap().key_id().to_owned();
    check(patch_ear(&c, &p, json!({"customerMasterKeyID": foreign_id})).await, "INVALID_ATTRIBUTE");

    // Back to access keys after using a role: AWS_KMS_ROLE_BASED_ACCESS_IRREVERSIBLE.
    check(
        patch_ear(&c, &p, json!({"accessKeyID": "AKIAAAAAAAAAAAAAAAAA", "secretAccessKey": "x"})).await,
        "AWS_KMS_ROLE_BASED_ACCESS_IRREVERSIBLE",
    );

    // Unknown fields, bad regions, Azure: refused before anything else.
    check(patch_ear(&c, &p, json!({"customerMasterKeyId": key_id})).await, "INVALID_ATTRIBUTE");
    check(patch_ear(&c, &p, json!({"region": "MARS_1"})).await, "INVALID_ENUM_VALUE");
    let r = c
        .patch(&format!("/api/atlas/v2/groups/{}/encryptionAtRest", p.g), &json!({"azureKeyVault": {"enabled": true}}))
        .await;
    check(r, "PROVIDER_UNSUPPORTED");

    // Deauthorizing the role in use: CLOUD_PROVIDER_ACCESS_ROLE_IN_USE, and the role stays.
    let r = c.delete(&format!("/api/atlas/v2/groups/{}/cloudProviderAccess/AWS/{}", p.g, p.role_id)).await;
    check(r, "CLOUD_PROVIDER_ACCESS_ROLE_IN_USE");
    let role = c.get(&format!("/api/atlas/v2/groups/{}/cloudProviderAccess/{}", p.g, p.role_id)).await;
    assert_eq!(role.status, StatusCode::OK);

    // A read-only key cannot change anything.
    let org = s.org_id();
    let key = c
        .post(&format!("/api/atlas/v2/orgs/{org}/apiKeys"), &json!({"desc": "ro", "roles": ["ORG_READ_ONLY"]}))
        .await
        .json();
    let ro = Client::new(&s.url, key["publicKey"].as_str().unwrap(), key["privateKey"].as_str().unwrap());
    assert_eq!(ro.get(&format!("/api/atlas/v2/groups/{}/encryptionAtRest", p.g)).await.status, StatusCode::OK);
    check(patch_ear(&ro, &p, json!({"enabled": false})).await, "ACCESS_FORBIDDEN");
}
