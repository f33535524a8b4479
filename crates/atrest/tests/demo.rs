//! `atrest demo`: the product page's whole story, run by the real binary to completion; the
//! transcript must show each step's observable outcome, not just exit 0.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn atrest(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atrest"));
    cmd.args(args).stdin(Stdio::null());
    // The demo must not pick up another server's settings from the environment.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ATREST_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run atrest")
}

#[test]
fn demo_tells_the_whole_story_and_every_step_behaves_as_the_page_says() {
    let start = Instant::now();
    let out = atrest(&["demo"]);
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status.code());
    assert!(elapsed < Duration::from_secs(120), "the demo took {elapsed:?}");

    // Every step ran and passed, in order.
    for n in 1..=19 {
        assert!(stdout.contains(&format!("[{n}/19] ")), "step {n} missing:\n{stdout}");
    }
    assert!(!stdout.contains('✗'), "{stdout}");
    assert!(stdout.contains("19 steps, all as the page says"), "{stdout}");

    // Each step's observable outcome, as the page describes it, in the order it happens.
    let expected = [
        // the project and the Atlas side of the role
        "POST /api/atlas/v2/groups {",
        "→ 200",
        "atlasAWSAccountArn: arn:aws:iam::",
        "atlasAssumedRoleExternalId: ",
        // the customer's key and role with the page's policies
        "kms create-key → arn:aws:kms:us-east-1:",
        "\"sts:ExternalId\"",
        "\"kms:Decrypt\",\"kms:Encrypt\",\"kms:DescribeKey\"",
        "authorizedDate ",
        "valid: true",
        "requirePrivateNetworking: true",
        // endpoints in two regions
        "{\"regionName\":\"US_EAST_1\"} → 202",
        "{\"regionName\":\"US_WEST_2\"} → 202",
        "US_EAST_1: ",
        "ACTIVE via vpce-",
        "US_WEST_2: ",
        // the key policy locked to them, validation still through the endpoint
        "aws:SourceVpce",
        "from the public address → AccessDeniedException",
        "0 on the public address",
        "validation still succeeds",
        // the cluster and its data
        "stateName: CREATING",
        "stateName: IDLE",
        "encryptionAtRestProvider: AWS",
        "find → 1000 documents",
        "no plaintext in any file on disk",
        // revocation and return
        "kms disable-key",
        "→ 503 ENCRYPTION_AT_REST_KEY_INACCESSIBLE",
        "valid: false",
        "kms enable-key",
        "served again: all 1000 documents, valid: true",
        // recreation after a rejection
        "reject-vpc-endpoint-connections",
        "PENDING_RECREATION",
        "PENDING_ACCEPTANCE",
        "accept-vpc-endpoint-connections",
        "the rejected record is retired",
        // switching off: refusals first, then the right order
        "→ 409 CANNOT_DISABLE_ENCRYPTION_AT_REST_REQUIRE_PRIVATE_NETWORKING_WHILE_PRIVATE_ENDPOINTS_EXIST",
        "DELETING",
        "totalCount: 0",
        "requirePrivateNetworking: false",
        "→ 409 CANNOT_DISABLE_ENCRYPTION_AT_REST\n",
        "{\"encryptionAtRestProvider\":\"NONE\"} → 200",
        "stateName: UPDATING",
        "encryptionAtRestProvider: NONE",
        "{\"awsKms\":{\"enabled\":false}} → 200",
        "enabled: false; the cluster still serves all 1000 documents",
    ];
    let mut at = 0;
    for e in expected {
        match stdout[at..].find(e) {
            Some(i) => at += i + e.len(),
            None => panic!("{e:?} missing (in order) from the transcript after byte {at}:\n{stdout}"),
        }
    }

    // The summary carries the elapsed time.
    let last = stdout.lines().last().unwrap_or("");
    assert!(last.starts_with("✓ 19 steps, all as the page says (") && last.ends_with(" s)"), "{last}");
    // The server it started is gone with its temporary directory.
    let dir = stdout.lines().find_map(|l| l.split("data in ").nth(1)).map(|d| d.trim_end_matches(')').to_owned());
    let dir = dir.expect("the transcript names the server's data directory");
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
}

#[test]
fn demo_json_transcript() {
    let out = atrest(&["demo", "--output", "json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["startedServer"], true);
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 19);
    assert!(steps.iter().all(|s| s["ok"] == true), "{doc}");
    let calls: Vec<&serde_json::Value> =
        steps.iter().flat_map(|s| s["lines"].as_array().unwrap()).filter(|l| l["kind"] == "api").collect();
    assert!(calls.iter().any(|c| c["status"] == 503 && c["errorCode"] == "ENCRYPTION_AT_REST_KEY_INACCESSIBLE"));
    assert!(calls.iter().any(|c| c["status"] == 409 && c["errorCode"] == "CANNOT_DISABLE_ENCRYPTION_AT_REST"));
    assert!(steps[4]["outcome"].as_str().unwrap().starts_with("valid: true"), "{}", steps[4]);
    assert!(doc["summary"].as_str().unwrap().starts_with("19 steps, all as the page says"));
}

#[test]
fn demo_help_has_an_example_and_failures_name_the_problem() {
    let out = atrest(&["demo", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("Example:") && help.contains("atrest demo --url"), "{help}");

    // A running server that is not there: exit 3, said so.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("aws-credentials"),
        "[customer]\naws_access_key_id = AKIA\naws_secret_access_key = x\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("bootstrap-credentials"),
        format!("ATREST_URL={url}\nATREST_PUBLIC_KEY=pub\nATREST_PRIVATE_KEY=priv\nATREST_AWS_URL=http://127.0.0.1:{port}\n"),
    )
    .unwrap();
    let out = atrest(&["demo", "--url", &url, "--data-dir", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));

    // --url without credentials: a usage error.
    let out = atrest(&["demo", "--url", &url]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
