//! SigV4 failures with their AWS error names, the credentials file, and durability.

mod common;

use aws_emulator::client::{self, StaticCredentials};
use aws_emulator::sigv4;
use common::{code, encrypt, start};

/// A KMS request signed by hand (to control the date and the body).
async fn raw_kms(
    url: &str,
    akid: &str,
    secret: &str,
    when: time::OffsetDateTime,
    target: &str,
    body: &str,
) -> (u16, String, String) {
    let host = url.trim_start_matches("http://").to_string();
    let amz_date = sigv4::format_amz_date(when);
    let date = &amz_date[..8];
    let mut headers = http::HeaderMap::new();
    headers.insert("host", host.parse().unwrap());
    headers.insert("x-amz-date", amz_date.parse().unwrap());
    headers.insert("x-amz-target", target.parse().unwrap());
    let signed: Vec<String> = ["host", "x-amz-date", "x-amz-target"].iter().map(|s| s.to_string()).collect();
    let creq = sigv4::canonical_request("POST", "/", None, &headers, &signed, &sigv4::sha256_hex(body.as_bytes()));
    let scope = format!("{date}/us-east-1/kms/aws4_request");
    let sts = sigv4::string_to_sign(&amz_date, &scope, &creq);
    let sig = sigv4::signature(&sigv4::signing_key(secret, date, "us-east-1", "kms"), &sts);
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={akid}/{scope}, SignedHeaders=host;x-amz-date;x-amz-target, Signature={sig}"
    );
    let r = reqwest::Client::new()
        .post(format!("{url}/"))
        .header("x-amz-date", amz_date)
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.1")
        .header("authorization", auth)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let etype = r.headers().get("x-amzn-errortype").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, etype, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_failures_have_aws_names() {
    let env = start().await;
    let customer = env.emu.customer();
    let url = env.emu.url();

    // Wrong secret.
    let wrong = StaticCredentials::new(&customer.access_key_id, "0000000000000000000000000000000000000000");
    let e = client::kms_client(&url, "us-east-1", &wrong).list_keys().send().await.unwrap_err();
    assert_eq!(code(e), "InvalidSignatureException");
    let e = client::sts_client(&url, "us-east-1", &wrong).get_caller_identity().send().await.unwrap_err();
    assert_eq!(code(e), "SignatureDoesNotMatch");
    let e = client::iam_client(&url, &wrong).get_role().role_name("x").send().await.unwrap_err();
    assert_eq!(code(e), "SignatureDoesNotMatch");

    // Unknown access key.
    let unknown = StaticCredentials::new("AKIAAAAAAAAAAAAAAAAA", &customer.secret_access_key);
    let e = client::kms_client(&url, "us-east-1", &unknown).list_keys().send().await.unwrap_err();
    assert_eq!(code(e), "UnrecognizedClientException");
    let e = client::sts_client(&url, "us-east-1", &unknown).get_caller_identity().send().await.unwrap_err();
    assert_eq!(code(e), "InvalidClientTokenId");

    // A session key id with a forged token.
    let forged = StaticCredentials {
        access_key_id: "ASIAAAAAAAAAAAAAAAAA".into(),
        secret_access_key: customer.secret_access_key.clone(),
        session_token: Some("Zm9yZ2VkIHRva2Vu".into()),
    };
    let e = client::kms_client(&url, "us-east-1", &forged).list_keys().send().await.unwrap_err();
    assert_eq!(code(e), "UnrecognizedClientException");

    // Correct signature, but signed 10 minutes ago.
    let now = time::OffsetDateTime::now_utc();
    let (status, etype, body) = raw_kms(
        &url,
        &customer.access_key_id,
        &customer.secret_access_key,
        now - time::Duration::minutes(10),
        "TrentService.ListKeys",
        "{}",
    )
    .await;
    assert_eq!((status, etype.as_str()), (400, "InvalidSignatureException"));
    assert!(body.contains("Signature expired"), "{body}");
    // Same request signed now works; an empty body to Encrypt is a ValidationException.
    let (status, _, _) =
        raw_kms(&url, &customer.access_key_id, &customer.secret_access_key, now, "TrentService.ListKeys", "{}").await;
    assert_eq!(status, 200);
    let (status, etype, body) =
        raw_kms(&url, &customer.access_key_id, &customer.secret_access_key, now, "TrentService.Encrypt", "{}").await;
    assert_eq!((status, etype.as_str()), (400, "ValidationException"), "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["__type"], "ValidationException");
    let (status, etype, _) =
        raw_kms(&url, &customer.access_key_id, &customer.secret_access_key, now, "TrentService.Encrypt", "{not json")
            .await;
    assert_eq!((status, etype.as_str()), (400, "SerializationException"));
    let (status, etype, _) =
        raw_kms(&url, &customer.access_key_id, &customer.secret_access_key, now, "TrentService.NoSuchThing", "{}")
            .await;
    assert_eq!((status, etype.as_str()), (400, "UnknownOperationException"));

    // No signature at all / a malformed Authorization header.
    let r = reqwest::Client::new()
        .post(format!("{url}/"))
        .header("x-amz-target", "TrentService.ListKeys")
        .header("content-type", "application/x-amz-json-1.1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-amzn-errortype"], "MissingAuthenticationTokenException");
    let r = reqwest::Client::new()
        .post(format!("{url}/"))
        .header("x-amz-target", "TrentService.ListKeys")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=garbage")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-amzn-errortype"], "IncompleteSignatureException");
    // STS error body shape.
    let r = reqwest::Client::new()
        .post(format!("{url}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=GetCallerIdentity&Version=2011-06-15")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let text = r.text().await.unwrap();
    assert!(text.starts_with("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>MissingAuthenticationToken</Code>"), "{text}");
    // Admin endpoints are not on endpoint listeners, and unknown admin routes are 404.
    let r = reqwest::get(format!("{url}/_emulator/nothing")).await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_file_and_restart_keep_everything() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(dir.path());
    let emu = aws_emulator::Emulator::start(cfg.clone()).await.unwrap();
    let customer = emu.customer();
    let operator = emu.operator();
    assert_eq!(customer.access_key_id.len(), 20);
    assert!(customer.access_key_id.starts_with("AKIA"));
    assert_eq!(customer.secret_access_key.len(), 40);
    assert_eq!(operator.account_id.len(), 12);
    assert_ne!(operator.account_id, customer.account_id);
    assert_eq!(operator.arn, format!("arn:aws:iam::{}:root", operator.account_id));

    // The shared-credentials file, readable by the owner only.
    let file = emu.credentials_file();
    assert_eq!(file, dir.path().join("aws-credentials"));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("[operator]") && text.contains("[customer]"));
    assert!(text.contains(&format!("aws_access_key_id = {}", customer.access_key_id)));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["aws-credentials", "aws-root-key"] {
            let mode = std::fs::metadata(dir.path().join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
    let from_file = client::read_profile(&file, "customer").unwrap();
    assert_eq!(from_file.secret_access_key, customer.secret_access_key);
    let accounts = reqwest::get(format!("{}/_emulator/accounts", emu.url()))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(accounts["accounts"].as_array().unwrap().len(), 2);

    // Keys, data keys and roles before the restart...
    let kms = client::kms_client(&emu.url(), "us-east-1", &from_file);
    let key = kms.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    let dk = kms.generate_data_key().key_id(&key).number_of_bytes(32).send().await.unwrap();
    let plain = dk.plaintext().unwrap().as_ref().to_vec();
    let ct = encrypt(&kms, &key, b"survives restarts").await;
    client::iam_client(&emu.url(), &from_file)
        .create_role()
        .role_name("kept")
        .assume_role_policy_document(
            serde_json::json!({"Statement":[{"Effect":"Allow","Principal":{"AWS":operator.account_id},"Action":"sts:AssumeRole"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    emu.shutdown().await;

    // No plaintext key material on disk.
    let db = std::fs::read(dir.path().join("aws-emulator.sqlite3")).unwrap();
    let wal = std::fs::read(dir.path().join("aws-emulator.sqlite3-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(plain.len()).any(|w| w == plain.as_slice()));
    }

    // ...and after it, on a new port, with the same accounts.
    let emu = aws_emulator::Emulator::start(cfg).await.unwrap();
    assert_eq!(emu.customer(), customer);
    let kms = client::kms_client(&emu.url(), "us-east-1", &from_file);
    let d = kms.decrypt().ciphertext_blob(ct).send().await.unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"survives restarts");
    let d = kms.decrypt().ciphertext_blob(dk.ciphertext_blob().unwrap().clone()).send().await.unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), plain.as_slice());
    let sts = client::sts_client(&emu.url(), "us-east-1", &common::creds(&operator));
    sts.assume_role()
        .role_arn(format!("arn:aws:iam::{}:role/kept", customer.account_id))
        .role_session_name("after-restart")
        .send()
        .await
        .unwrap();
    emu.shutdown().await;
}
