//! `atrest serve` reads its options from flags, `ATREST_*` variables and a TOML file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn url_from(child: &mut std::process::Child) -> String {
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("atrest listening on ") {
            return rest.split_whitespace().next().unwrap().to_owned();
        }
    }
    panic!("no URL printed");
}

#[test]
fn toml_file_and_environment_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let from_file = tmp.path().join("from-file");
    let config = tmp.path().join("atrest.toml");
    std::fs::write(
        &config,
        format!(
            "data-dir = {:?}\nlisten = \"127.0.0.1:0\"\naws-listen = \"127.0.0.1:0\"\nlog-format = \"json\"\n",
            from_file.display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_atrest"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = url_from(&mut child);
    assert!(url.starts_with("http://127.0.0.1:"));
    assert!(from_file.join("bootstrap-credentials").exists(), "the file's data-dir was used");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().expect("a log line");
    assert!(serde_json::from_str::<serde_json::Value>(first).is_ok(), "json logs: {first}");

    // The environment beats the file.
    let from_env = tmp.path().join("from-env");
    let mut child = Command::new(env!("CARGO_BIN_EXE_atrest"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("ATREST_DATA_DIR", &from_env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    url_from(&mut child);
    assert!(from_env.join("bootstrap-credentials").exists(), "ATREST_DATA_DIR was used");
    child.kill().unwrap();
    child.wait().unwrap();

    // An unknown key in the file is an error, not silently ignored.
    std::fs::write(&config, "lisen = \"127.0.0.1:0\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_atrest")).args(["serve", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lisen"));
}

#[test]
fn help_documents_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_atrest")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in
        ["--config", "--data-dir", "--listen", "--log-format", "--log-level", "--digest-nonce-ttl", "ATREST_LISTEN"]
    {
        assert!(help.contains(opt), "{opt} missing from --help");
    }
}

#[test]
fn a_database_url_atrest_cannot_honour_is_refused_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    for (url, says) in [
        ("postgres://atrest@127.0.0.1:1/atrest?sslmode=require", "sslmode=require is not supported"),
        ("mysql://atrest@127.0.0.1/atrest", "must be a postgres:// or postgresql:// URL"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_atrest"))
            .args(["serve", "--listen", "127.0.0.1:0", "--aws-listen", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path().join("data"))
            .args(["--database-url", url])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url} was accepted");
        assert!(stderr.contains(says), "{url}: {stderr}");
    }
}
