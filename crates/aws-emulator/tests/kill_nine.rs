//! Durability across `kill -9`: the emulator runs in a child process (this test binary re-run in
//! "child" mode), is killed with SIGKILL after answering, and its state is read back in-process.

mod common;

use std::time::Duration;

use aws_emulator::client;
use common::encrypt;

const CHILD_DIR: &str = "AWS_EMULATOR_KILL9_CHILD_DIR";

/// Child mode: serve until killed. A no-op when run as a normal test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_emulator() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let cfg = common::config(std::path::Path::new(&dir));
    let emu = aws_emulator::Emulator::start(cfg).await.unwrap();
    std::fs::write(format!("{dir}/url.tmp"), emu.url()).unwrap();
    std::fs::rename(format!("{dir}/url.tmp"), format!("{dir}/url")).unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_kill_minus_nine() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_emulator", "--nocapture"])
        .env(CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url_file = dir.path().join("url");
    let url = common::eventually(30, || {
        let f = url_file.clone();
        async move { std::fs::read_to_string(f).ok() }
    })
    .await;
    let creds = client::read_profile(&dir.path().join("aws-credentials"), "customer").unwrap();
    let kms = client::kms_client(&url, "us-east-1", &creds);
    let key = kms.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_string();
    let ct = encrypt(&kms, &key, b"committed before the answer").await;
    kms.disable_key().key_id(&key).send().await.unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let emu = aws_emulator::Emulator::start(common::config(dir.path())).await.unwrap();
    let kms = client::kms_client(&emu.url(), "us-east-1", &creds);
    let e = kms.decrypt().ciphertext_blob(ct.clone()).send().await.unwrap_err();
    assert_eq!(common::code(e), "DisabledException");
    kms.enable_key().key_id(&key).send().await.unwrap();
    let d = kms.decrypt().ciphertext_blob(ct).send().await.unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"committed before the answer");
    emu.shutdown().await;
}
