//! The product page, step by step: "Enable Role-Based Access for Your Encryption Key for a
//! Project" against the embedded AWS.

mod common;

use common::{Server, PAGE_ACTIONS};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn authorize_a_role_and_enable_customer_key_management() {
    let s = Server::start();
    let c = s.client();
    let customer = s.customer();
    let group = c.post("/api/atlas/v2/groups", &json!({"name": "cmk", "orgId": s.org_id()})).await.json();
    let g = group["id"].as_str().unwrap();

    // 1. Atlas side: create the IAM role access.
    let r = c.post(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess"), &json!({"providerName": "AWS"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let role = r.json();
    let role_id = role["roleId"].as_str().unwrap();
    let atlas_arn = role["atlasAWSAccountArn"].as_str().unwrap();
    let external_id = role["atlasAssumedRoleExternalId"].as_str().unwrap();
    let operator = s.operator_profile();
    assert!(atlas_arn.starts_with("arn:aws:iam::") && atlas_arn.ends_with(":root"), "{atlas_arn}");
    let _ = operator;
    assert_eq!(external_id.len(), 36);
    assert_eq!(role["authorizedDate"], json!(null));
    assert_eq!(role["iamAssumedRoleArn"], json!(null));
    assert_eq!(role["featureUsages"], json!([]));
    assert_eq!(role["providerName"], "AWS");

    // 2. Customer side: a key and the page's role with its trust and access policies.
    let (key_id, key_arn) = customer.create_key().await;
    let role_arn = customer.create_atlas_role("atlas-kms", atlas_arn, external_id, &key_arn, PAGE_ACTIONS).await;

    // 3. Authorize: atrest really assumes the role with the external id.
    let r = c
        .patch(
            &format!("/api/atlas/v2/groups/{g}/cloudProviderAccess/{role_id}"),
            &json!({"providerName": "AWS", "iamAssumedRoleArn": role_arn}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["iamAssumedRoleArn"], role_arn.as_str());
    assert!(r.json()["authorizedDate"].is_string());

    // 4. Enable customer key management with the role.
    let r = c
        .patch(
            &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
            &json!({"awsKms": {"enabled": true, "customerMasterKeyID": key_id, "region": "US_EAST_1", "roleId": role_id}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let ear = r.json();
    assert_eq!(ear["awsKms"]["valid"], true);
    assert_eq!(ear["awsKms"]["enabled"], true);
    assert_eq!(ear["awsKms"]["roleId"], role_id);
    assert_eq!(ear["azureKeyVault"], json!({"enabled": false}));
    assert_eq!(ear["googleCloudKms"], json!({"enabled": false}));

    // GET re-validates and never shows a secret.
    let r = c.get(&format!("/api/atlas/v2/groups/{g}/encryptionAtRest")).await;
    assert_eq!(r.json()["awsKms"]["valid"], true);
    assert!(!r.text.contains("secretAccessKey"));

    // The role now shows what uses it, and cannot be deauthorized while it does.
    let list = c.get(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess")).await.json();
    assert_eq!(
        list["awsIamRoles"][0]["featureUsages"],
        json!([{"featureType": "ENCRYPTION_AT_REST", "featureId": {"groupId": g}}])
    );
    assert_eq!(list["azureServicePrincipals"], json!([]));
    assert_eq!(list["gcpServiceAccounts"], json!([]));
    let r = c.delete(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess/AWS/{role_id}")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "CLOUD_PROVIDER_ACCESS_ROLE_IN_USE");

    // The page's first curl call: v1.0, plain JSON, envelope and pretty.
    let v1 = c
        .clone()
        .with_accept("application/json")
        .patch(
            &format!("/api/atlas/v1.0/groups/{g}/encryptionAtRest?pretty=true&envelope=true"),
            &json!({"awsKms": {"enabled": true, "customerMasterKeyID": key_id, "region": "US_EAST_1", "roleId": role_id}}),
        )
        .await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.text);
    assert_eq!(v1.json()["content"]["awsKms"]["valid"], true);

    let events = s.events(g).await;
    for expected in [
        "CLOUD_PROVIDER_ACCESS_AWS_IAM_ROLE_ADDED",
        "CLOUD_PROVIDER_ACCESS_AWS_IAM_ROLE_UPDATED",
        "ENCRYPTION_AT_REST_CONFIGURATION_VALIDATION_SUCCEEDED",
        "ENCRYPTION_AT_REST_CONFIGURATION_UPDATED",
    ] {
        assert!(events.iter().any(|e| e == expected), "{expected} missing from {events:?}");
    }

    // Turning it off in the right order works, and then the role can go.
    let r =
        c.patch(&format!("/api/atlas/v2/groups/{g}/encryptionAtRest"), &json!({"awsKms": {"enabled": false}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["awsKms"], json!({"enabled": false}));
    let r = c.delete(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess/AWS/{role_id}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let list = c.get(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess")).await.json();
    assert_eq!(list["awsIamRoles"], json!([]));
}
