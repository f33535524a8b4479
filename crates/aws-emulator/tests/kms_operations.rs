//! Every KMS operation through the official aws-sdk-kms, over the network.

mod common;

use aws_sdk_kms::types::{DataKeySpec, EncryptionAlgorithmSpec, KeyState};
use common::{blob, code, encrypt, start};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lifecycle_encrypt_decrypt_and_errors() {
    let env = start().await;
    let customer = env.emu.customer();
    let kms = env.kms(&customer);

    // CreateKey / DescribeKey / ListKeys
    let created = kms.create_key().description("cmk for atrest").send().await.unwrap();
    let md = created.key_metadata().unwrap();
    let key_id = md.key_id().to_string();
    let arn = md.arn().unwrap().to_string();
    assert_eq!(arn, format!("arn:aws:kms:us-east-1:{}:key/{key_id}", customer.account_id));
    assert_eq!(uuid::Uuid::parse_str(&key_id).unwrap().to_string(), key_id);
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert_eq!(md.aws_account_id(), Some(customer.account_id.as_str()));
    assert!(!md.multi_region().unwrap());
    let listed = kms.list_keys().send().await.unwrap();
    assert!(listed.keys().iter().any(|k| k.key_id() == Some(&key_id)));

    // Aliases: alias name, alias ARN and key ARN all work as KeyId.
    kms.create_alias().alias_name("alias/atrest").target_key_id(&key_id).send().await.unwrap();
    let e = kms.create_alias().alias_name("alias/atrest").target_key_id(&key_id).send().await.unwrap_err();
    assert_eq!(code(e), "AlreadyExistsException");
    let aliases = kms.list_aliases().send().await.unwrap();
    let alias = aliases.aliases().iter().find(|a| a.alias_name() == Some("alias/atrest")).unwrap();
    assert_eq!(alias.target_key_id(), Some(key_id.as_str()));
    let alias_arn = alias.alias_arn().unwrap().to_string();
    for id in [key_id.as_str(), arn.as_str(), "alias/atrest", alias_arn.as_str()] {
        let d = kms.describe_key().key_id(id).send().await.unwrap();
        assert_eq!(d.key_metadata().unwrap().key_id(), key_id);
    }

    // Encrypt / Decrypt with an encryption context.
    let enc = kms
        .encrypt()
        .key_id("alias/atrest")
        .plaintext(blob(b"node master key"))
        .encryption_context("project", "p1")
        .encryption_context("cluster", "c1")
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), Some(arn.as_str()));
    let ct = enc.ciphertext_blob().unwrap().clone();
    assert_eq!(ct.as_ref()[0], 1, "versioned ciphertext format");
    let dec = kms
        .decrypt()
        .ciphertext_blob(ct.clone())
        .encryption_context("cluster", "c1")
        .encryption_context("project", "p1")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"node master key");
    assert_eq!(dec.key_id(), Some(arn.as_str()));
    // Context is authenticated.
    let e = kms
        .decrypt()
        .ciphertext_blob(ct.clone())
        .encryption_context("project", "p2")
        .encryption_context("cluster", "c1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidCiphertextException");
    let e = kms.decrypt().ciphertext_blob(blob(b"\x01garbage-that-is-not-a-blob")).send().await.unwrap_err();
    assert_eq!(code(e), "InvalidCiphertextException");
    let mut tampered = ct.as_ref().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x40;
    let e = kms
        .decrypt()
        .ciphertext_blob(blob(&tampered))
        .encryption_context("project", "p1")
        .encryption_context("cluster", "c1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidCiphertextException");

    // A second key: IncorrectKeyException, ReEncrypt.
    let key2 = kms.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    let e = kms
        .decrypt()
        .ciphertext_blob(ct.clone())
        .key_id(&key2)
        .encryption_context("project", "p1")
        .encryption_context("cluster", "c1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "IncorrectKeyException");
    let re = kms
        .re_encrypt()
        .ciphertext_blob(ct.clone())
        .source_encryption_context("project", "p1")
        .source_encryption_context("cluster", "c1")
        .destination_key_id(&key2)
        .destination_encryption_context("v", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(re.source_key_id(), Some(arn.as_str()));
    let dec2 = kms
        .decrypt()
        .ciphertext_blob(re.ciphertext_blob().unwrap().clone())
        .encryption_context("v", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(dec2.plaintext().unwrap().as_ref(), b"node master key");
    assert!(dec2.key_id().unwrap().ends_with(&key2));

    // GenerateDataKey (+WithoutPlaintext)
    let dk = kms
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("db", "x")
        .send()
        .await
        .unwrap();
    let plain = dk.plaintext().unwrap().as_ref().to_vec();
    assert_eq!(plain.len(), 32);
    let back = kms
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
        .encryption_context("db", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), plain.as_slice());
    let dk2 = kms.generate_data_key_without_plaintext().key_id(&key_id).number_of_bytes(64).send().await.unwrap();
    let back2 = kms.decrypt().ciphertext_blob(dk2.ciphertext_blob().unwrap().clone()).send().await.unwrap();
    assert_eq!(back2.plaintext().unwrap().as_ref().len(), 64);
    let e = kms.generate_data_key().key_id(&key_id).number_of_bytes(5000).send().await.unwrap_err();
    assert_eq!(code(e), "ValidationException");
    let e = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(blob(b"x"))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(e), "InvalidKeyUsageException");

    // Unknown key.
    let e = kms.describe_key().key_id(uuid::Uuid::new_v4().to_string()).send().await.unwrap_err();
    assert_eq!(code(e), "NotFoundException");
    let e = kms.describe_key().key_id("alias/missing").send().await.unwrap_err();
    assert_eq!(code(e), "NotFoundException");

    // Disable / enable.
    kms.disable_key().key_id(&key_id).send().await.unwrap();
    let e = kms.encrypt().key_id(&key_id).plaintext(blob(b"x")).send().await.unwrap_err();
    assert_eq!(code(e), "DisabledException");
    let e = kms.decrypt().ciphertext_blob(dk2.ciphertext_blob().unwrap().clone()).send().await.unwrap_err();
    assert_eq!(code(e), "DisabledException");
    let d = kms.describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().key_state(), Some(&KeyState::Disabled));
    kms.enable_key().key_id(&key_id).send().await.unwrap();
    kms.encrypt().key_id(&key_id).plaintext(blob(b"x")).send().await.unwrap();

    // Key policies.
    let p = kms.get_key_policy().key_id(&key_id).policy_name("default").send().await.unwrap();
    let policy: serde_json::Value = serde_json::from_str(p.policy().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Principal"]["AWS"], json!(format!("arn:aws:iam::{}:root", customer.account_id)));
    assert_eq!(policy["Statement"][0]["Action"], json!("kms:*"));
    let bad = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":customer.arn},
        "Action":"kms:*","Resource":"*","Condition":{"StringSortOfEquals":{"aws:SourceVpce":"x"}}}]});
    let e =
        kms.put_key_policy().key_id(&key_id).policy_name("default").policy(bad.to_string()).send().await.unwrap_err();
    assert_eq!(code(e), "MalformedPolicyDocumentException");
    let good = json!({"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":customer.arn},
        "Action":"kms:*","Resource":"*"}]});
    kms.put_key_policy().key_id(&key_id).policy_name("default").policy(good.to_string()).send().await.unwrap();
    let p = kms.get_key_policy().key_id(&key_id).policy_name("default").send().await.unwrap();
    assert!(p.policy().unwrap().contains("\"Sid\":\"root\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_multi_region_and_deletion() {
    let env = start().await;
    let customer = env.emu.customer();
    let kms = env.kms(&customer);

    // Rotation: older ciphertexts keep decrypting.
    let key = kms.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    let old = encrypt(&kms, &key, b"before rotation").await;
    kms.enable_key_rotation().key_id(&key).send().await.unwrap();
    let st = kms.get_key_rotation_status().key_id(&key).send().await.unwrap();
    assert!(st.key_rotation_enabled());
    kms.rotate_key_on_demand().key_id(&key).send().await.unwrap();
    let new = encrypt(&kms, &key, b"after rotation").await;
    assert_ne!(old.as_ref()[..50], new.as_ref()[..50]);
    for (ct, pt) in [(old.clone(), &b"before rotation"[..]), (new, b"after rotation")] {
        let d = kms.decrypt().ciphertext_blob(ct).send().await.unwrap();
        assert_eq!(d.plaintext().unwrap().as_ref(), pt);
    }

    // Multi-region keys and replicas.
    let mrk = kms.create_key().multi_region(true).send().await.unwrap().key_metadata().unwrap().clone();
    let mrk_id = mrk.key_id().to_string();
    assert!(mrk_id.starts_with("mrk-") && mrk_id.len() == 36, "{mrk_id}");
    assert!(mrk_id[4..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert!(mrk.multi_region().unwrap());
    let rep = kms.replicate_key().key_id(&mrk_id).replica_region("eu-west-1").send().await.unwrap();
    let rmd = rep.replica_key_metadata().unwrap();
    assert_eq!(rmd.arn().unwrap(), format!("arn:aws:kms:eu-west-1:{}:key/{mrk_id}", customer.account_id));
    let e = kms.replicate_key().key_id(&mrk_id).replica_region("eu-west-1").send().await.unwrap_err();
    assert_eq!(code(e), "AlreadyExistsException");
    let ct = kms
        .encrypt()
        .key_id(&mrk_id)
        .plaintext(blob(b"mrk data"))
        .encryption_context("r", "1")
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let eu = env.kms_in(&customer, "eu-west-1");
    let d = eu.decrypt().ciphertext_blob(ct).encryption_context("r", "1").send().await.unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"mrk data");
    let described = kms.describe_key().key_id(&mrk_id).send().await.unwrap();
    let cfg = described.key_metadata().unwrap().multi_region_configuration().unwrap();
    assert_eq!(cfg.replica_keys().len(), 1);
    let e = kms.replicate_key().key_id(&key).replica_region("eu-west-1").send().await.unwrap_err();
    assert_eq!(code(e), "UnsupportedOperationException");

    // Deletion: window validation, pending state, cancel, then real destruction.
    let e = kms.schedule_key_deletion().key_id(&key).pending_window_in_days(3).send().await.unwrap_err();
    assert_eq!(code(e), "ValidationException");
    let s = kms.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();
    assert_eq!(s.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(s.pending_window_in_days(), Some(7));
    let e = kms.encrypt().key_id(&key).plaintext(blob(b"x")).send().await.unwrap_err();
    assert_eq!(code(e), "KMSInvalidStateException");
    let e = kms.decrypt().ciphertext_blob(old.clone()).send().await.unwrap_err();
    assert_eq!(code(e), "KMSInvalidStateException");
    let e = kms.enable_key().key_id(&key).send().await.unwrap_err();
    assert_eq!(code(e), "KMSInvalidStateException");
    kms.cancel_key_deletion().key_id(&key).send().await.unwrap();
    let d = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(d.key_metadata().unwrap().key_state(), Some(&KeyState::Disabled));
    kms.enable_key().key_id(&key).send().await.unwrap();
    kms.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();
    // One "day" is a second in tests; jump past the window instead of waiting.
    env.advance_clock(8).await;
    let e = kms.decrypt().ciphertext_blob(old.clone()).send().await.unwrap_err();
    assert_eq!(code(e), "NotFoundException");
    let e = kms.describe_key().key_id(&key).send().await.unwrap_err();
    assert_eq!(code(e), "NotFoundException");
    let e = kms.cancel_key_deletion().key_id(&key).send().await.unwrap_err();
    assert_eq!(code(e), "NotFoundException");
    // The material is gone from disk too: the row is deleted.
    let db = rusqlite_count(&env.dir.path().join("aws-emulator.sqlite3"), &key);
    assert_eq!(db, 0);
}

fn rusqlite_count(path: &std::path::Path, key: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT COUNT(*) FROM keys WHERE id LIKE ?1", [format!("%{key}")], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults() {
    let env = start().await;
    let customer = env.emu.customer();
    let kms = env.kms(&customer);
    let key = kms.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    env.admin_post("/_emulator/faults", json!({"service":"kms","operation":"Encrypt","kind":"throttle","count":20}))
        .await;
    let e = kms.encrypt().key_id(&key).plaintext(blob(b"x")).send().await.unwrap_err();
    assert_eq!(code(e), "ThrottlingException");
    // Other operations are unaffected.
    kms.describe_key().key_id(&key).send().await.unwrap();
    env.admin_delete("/_emulator/faults").await;
    env.admin_post(
        "/_emulator/faults",
        json!({"service":"kms","operation":"GenerateDataKey","kind":"error500","count":20}),
    )
    .await;
    let e = kms.generate_data_key().key_id(&key).key_spec(DataKeySpec::Aes256).send().await.unwrap_err();
    assert_eq!(code(e), "KMSInternalException");
    env.admin_delete("/_emulator/faults").await;
    env.admin_post("/_emulator/faults", json!({"service":"kms","kind":"latency","latencyMs":300,"count":1})).await;
    let t = std::time::Instant::now();
    kms.encrypt().key_id(&key).plaintext(blob(b"x")).send().await.unwrap();
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
    env.admin_post("/_emulator/faults", json!({"service":"kms","operation":"Decrypt","kind":"drop","count":20})).await;
    let ct = kms.encrypt().key_id(&key).plaintext(blob(b"x")).send().await.unwrap().ciphertext_blob().unwrap().clone();
    let e = kms.decrypt().ciphertext_blob(ct).send().await.unwrap_err();
    assert!(e.as_service_error().is_none(), "dropped connection is not a service error");
    env.admin_delete("/_emulator/faults").await;
    let faults = env.admin_get("/_emulator/faults").await;
    assert_eq!(faults["faults"], json!([]));
}
