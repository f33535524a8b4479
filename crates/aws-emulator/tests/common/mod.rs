//! Shared helpers: an emulator in-process on a free port with a temporary data dir, SDK clients
//! and the admin API.
#![allow(dead_code)]

use std::time::Duration;

use aws_emulator::client::{self, StaticCredentials};
use aws_emulator::{AccountCredentials, Emulator, EmulatorConfig};
use serde_json::Value;

pub struct Env {
    pub emu: Emulator,
    pub dir: tempfile::TempDir,
}

pub fn config(dir: &std::path::Path) -> EmulatorConfig {
    EmulatorConfig {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        endpoint_ready_delay: Duration::from_millis(200),
        key_deletion_day: Duration::from_secs(1),
        tick_interval: Duration::from_millis(50),
        ..EmulatorConfig::default()
    }
}

pub async fn start() -> Env {
    start_with(|_| {}).await
}

pub async fn start_with(f: impl FnOnce(&mut EmulatorConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    f(&mut cfg);
    let emu = Emulator::start(cfg).await.unwrap();
    Env { emu, dir }
}

pub fn creds(a: &AccountCredentials) -> StaticCredentials {
    StaticCredentials::from(a)
}

impl Env {
    pub fn kms(&self, who: &AccountCredentials) -> aws_sdk_kms::Client {
        client::kms_client(&self.emu.url(), "us-east-1", &creds(who))
    }
    pub fn kms_in(&self, who: &AccountCredentials, region: &str) -> aws_sdk_kms::Client {
        client::kms_client(&self.emu.url(), region, &creds(who))
    }
    pub fn sts(&self, who: &AccountCredentials) -> aws_sdk_sts::Client {
        client::sts_client(&self.emu.url(), "us-east-1", &creds(who))
    }
    pub fn iam(&self, who: &AccountCredentials) -> aws_sdk_iam::Client {
        client::iam_client(&self.emu.url(), &creds(who))
    }
    pub fn ec2(&self, who: &AccountCredentials, region: &str) -> aws_emulator::Ec2Client {
        aws_emulator::Ec2Client::new(&self.emu.url(), region, creds(who))
    }
    pub async fn admin_get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.emu.url())).await.unwrap().json().await.unwrap()
    }
    pub async fn admin_post(&self, path: &str, body: Value) -> Value {
        let r = reqwest::Client::new().post(format!("{}{path}", self.emu.url())).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "admin {path}: {}", r.status());
        r.json().await.unwrap()
    }
    pub async fn admin_delete(&self, path: &str) {
        let r = reqwest::Client::new().delete(format!("{}{path}", self.emu.url())).send().await.unwrap();
        assert!(r.status().is_success());
    }
    pub async fn advance_clock(&self, secs: i64) {
        self.admin_post("/_emulator/clock", serde_json::json!({"advanceSeconds": secs})).await;
    }
}

/// The AWS error code of an SDK error (`NotFoundException`, `AccessDenied`, ...).
pub fn code<E, R>(e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => s.code().unwrap_or("<none>").to_string(),
        None => format!("<not a service error: {e:?}>"),
    }
}

/// Session credentials from an AssumeRole response.
pub fn session_creds(c: &aws_sdk_sts::types::Credentials) -> StaticCredentials {
    StaticCredentials {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: c.secret_access_key().to_string(),
        session_token: Some(c.session_token().to_string()),
    }
}

/// Poll `f` until it returns Some, or panic after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not met in {secs}s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn blob(b: &[u8]) -> aws_sdk_kms::primitives::Blob {
    aws_sdk_kms::primitives::Blob::new(b.to_vec())
}

/// Encrypts `plaintext` under `key` and returns the ciphertext blob, failing the test otherwise.
pub async fn encrypt(kms: &aws_sdk_kms::Client, key: &str, plaintext: &[u8]) -> aws_sdk_kms::primitives::Blob {
    let out = kms.encrypt().key_id(key).plaintext(blob(plaintext)).send().await.unwrap();
    out.ciphertext_blob().unwrap().clone()
}

/// Creates an IAM role with a trust policy and returns its ARN, failing the test otherwise.
pub async fn create_role(iam: &aws_sdk_iam::Client, name: &str, trust: impl Into<String>) -> String {
    let out = iam.create_role().role_name(name).assume_role_policy_document(trust).send().await.unwrap();
    out.role().unwrap().arn().to_string()
}
