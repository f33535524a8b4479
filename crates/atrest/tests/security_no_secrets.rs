//! Secrets stay secret: after a customer-key flow, no GET response, no file of the data directory
//! (other than `bootstrap-credentials`) and no line of the server's log holds an API private key
//! or an AWS secret access key.

mod common;

use base64::Engine;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Client, Customer, Server};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every `aws_secret_access_key` in the data directory's `aws-credentials`.
fn aws_secrets(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("aws-credentials"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == "aws_secret_access_key")
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// Fills a route template with the ids of this flow.
fn fill(template: &str, ids: &[(&str, &str)]) -> String {
    template
        .split('/')
        .map(|seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => ids.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).unwrap_or("5f0a1b2c3d4e5f6a7b8c9d0e"),
            None => seg,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// GETs every GET route with the flow's ids; returns (path, status, body).
async fn get_everything(c: &Client, ids: &[(&str, &str)]) -> Vec<(String, StatusCode, String)> {
    let mut out = Vec::new();
    for (method, template) in atrest_api::route_table() {
        if method != "GET" {
            continue;
        }
        let path = fill(&template, ids);
        for p in [path.clone(), format!("{path}?pretty=true&envelope=true&itemsPerPage=500")] {
            if atrest_api::auth::is_public(&template) {
                // Public routes (readiness, the console's assets and session) take no Digest.
                let r = reqwest::get(format!("{}{p}", c.base)).await.unwrap();
                out.push((p, r.status(), r.text().await.unwrap()));
                continue;
            }
            let r = c.request(Method::GET, &p, None).await;
            out.push((p, r.status, r.text));
        }
    }
    out
}

fn assert_clean(what: &str, text: &[u8], secrets: &[String]) {
    for s in secrets {
        assert!(!contains(text, s), "{what} contains a secret ({}…)", &s[..4.min(s.len())]);
    }
    // The API document names the (write-only) field; nothing else may.
    if what.contains("/openapi.json") {
        return;
    }
    let lower = String::from_utf8_lossy(text).to_lowercase();
    assert!(!lower.contains("secretaccesskey"), "{what} mentions secretAccessKey");
}

#[tokio::test]
async fn responses_and_data_files_hold_no_secrets() {
    let s = Server::start();
    let cmk = s.enable_cmk("secrets").await;
    let owner = s.client();
    let org = s.org_id();
    let created = owner
        .post(&format!("/api/atlas/v2/orgs/{org}/apiKeys"), &json!({"desc": "scan", "roles": ["ORG_OWNER"]}))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let key = created.json();
    let private = key["privateKey"].as_str().unwrap().to_owned();
    let key_id = key["id"].as_str().unwrap().to_owned();
    let r = owner
        .patch(&format!("/api/atlas/v2/groups/{}/apiKeys/{key_id}", cmk.g), &json!({"roles": ["GROUP_OWNER"]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = owner
        .post(
            &format!("/api/atlas/v2/groups/{}/clusters", cmk.g),
            &json!({"name": "scan", "clusterType": "REPLICASET",
                "replicationSpecs": [{"regionConfigs": [{"providerName": "AWS", "regionName": "US_EAST_1", "priority": 7,
                    "electableSpecs": {"instanceSize": "M10", "nodeCount": 3}}]}],
                "encryptionAtRestProvider": "AWS"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let mut secrets = vec![private.clone(), s.creds["ATREST_PRIVATE_KEY"].clone()];
    secrets.extend(aws_secrets(&s.dir));

    // The new key works (so the secret scanned for is the real one).
    let newkey = Client::new(&s.url, key["publicKey"].as_str().unwrap(), &private);
    assert_eq!(newkey.get("/api/atlas/v2/orgs").await.status, StatusCode::OK);

    let ids = [
        ("orgId", org.as_str()),
        ("groupId", cmk.g.as_str()),
        ("apiUserId", key_id.as_str()),
        ("roleId", cmk.role_id.as_str()),
        ("groupName", "secrets"),
        ("cloudProvider", "AWS"),
        ("clusterName", "scan"),
    ];
    let mut ok = 0;
    for client in [&owner, &newkey] {
        for (path, status, body) in get_everything(client, &ids).await {
            assert_clean(&format!("GET {path} ({status})"), body.as_bytes(), &secrets);
            if status == StatusCode::OK {
                ok += 1;
            }
        }
    }
    assert!(ok >= 20, "only {ok} GETs succeeded");

    // On disk, only bootstrap-credentials holds an API private key.
    let files = files_under(&s.dir);
    assert!(files.len() > 2, "{files:?}");
    let api_secrets = &secrets[..2];
    for f in files {
        if f.file_name().is_some_and(|n| n == "bootstrap-credentials") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&f) else { continue };
        for secret in api_secrets {
            assert!(!contains(&bytes, secret), "{} holds an API private key", f.display());
        }
    }
    // On PostgreSQL, the database's every row (BYTEA shown as hex) holds none either.
    if s.database_url.is_some() {
        let dump = s.stored_bytes();
        assert!(contains(&dump, "sealed_verifier"), "the dump has the keys' rows");
        for secret in api_secrets {
            assert!(!contains(&dump, secret), "the database holds an API private key");
            assert!(!contains(&dump, &hex::encode(secret)), "the database holds an API private key");
        }
    }
}

/// The server with its stderr (the log) captured to a file.
struct LoggedServer {
    child: Child,
    url: String,
    dir: PathBuf,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_logged(level: &str) -> LoggedServer {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let log = tmp.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_atrest"))
        .arg("serve")
        .arg("--data-dir")
        .arg(&dir)
        .args(["--listen", "127.0.0.1:0", "--aws-listen", "127.0.0.1:0"])
        .args(common::store_args(&dir))
        .env("ATREST_LOG", level)
        // The embedded AWS remembers every session token and plaintext key it handles.
        .env("ATREST_AWS_RECORD_SECRETS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("start atrest");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("atrest listening on ") {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(60)).expect("atrest printed its URL");
    LoggedServer { child, url, dir, log, _tmp: tmp }
}

#[tokio::test]
async fn the_log_holds_no_secrets() {
    let s = start_logged("debug");
    let creds = common::read_credentials(&s.dir.join("bootstrap-credentials"));
    let owner = Client::new(&s.url, &creds["ATREST_PUBLIC_KEY"], &creds["ATREST_PRIVATE_KEY"]);
    let org = creds["ATREST_ORG_ID"].clone();
    let aws_url = creds["ATREST_AWS_URL"].clone();

    // The customer-key flow of `Server::enable_cmk`, against this server.
    let g = owner.post("/api/atlas/v2/groups", &json!({"name": "logged", "orgId": org})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role = owner
        .post(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess"), &json!({"providerName": "AWS"}))
        .await
        .json();
    let customer = Customer::new(
        &aws_url,
        aws_emulator::client::read_profile(&s.dir.join("aws-credentials"), "customer").unwrap(),
    );
    let (key_id, key_arn) = customer.create_key().await;
    let arn = customer
        .create_atlas_role(
            "atlas-logged",
            role["atlasAWSAccountArn"].as_str().unwrap(),
            role["atlasAssumedRoleExternalId"].as_str().unwrap(),
            &key_arn,
            common::PAGE_ACTIONS,
        )
        .await;
    let role_id = role["roleId"].as_str().unwrap();
    let r = owner
        .patch(
            &format!("/api/atlas/v2/groups/{g}/cloudProviderAccess/{role_id}"),
            &json!({"providerName": "AWS", "iamAssumedRoleArn": arn}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = owner
        .patch(
            &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
            &json!({"awsKms": {"enabled": true, "customerMasterKeyID": key_id, "region": "US_EAST_1", "roleId": role_id}}),
        )
        .await;
    assert_eq!(r.json()["awsKms"]["valid"], true, "{}", r.text);

    // A new key, used, misused, and with a wrong password.
    let key = owner
        .post(&format!("/api/atlas/v2/orgs/{org}/apiKeys"), &json!({"desc": "logged", "roles": ["ORG_MEMBER"]}))
        .await
        .json();
    let private = key["privateKey"].as_str().unwrap().to_owned();
    let public = key["publicKey"].as_str().unwrap().to_owned();
    let member = Client::new(&s.url, &public, &private);
    assert_eq!(member.get("/api/atlas/v2/orgs").await.status, StatusCode::OK);
    assert_eq!(member.delete(&format!("/api/atlas/v2/groups/{g}")).await.status, StatusCode::FORBIDDEN);
    let wrong = Client::new(&s.url, &public, &format!("{private}x"));
    assert_eq!(wrong.get("/api/atlas/v2/orgs").await.status, StatusCode::UNAUTHORIZED);

    // A cluster with customer keys, a document in it and a master-key rotation: data keys and
    // master keys go through KMS (Encrypt, Decrypt), atrest's role sessions through STS.
    owner.create_cluster(&g, &common::cluster_body("logged", "M10", "AWS", &["US_EAST_1"])).await;
    let doc = json!({"database": "d", "collection": "c", "document": {"marker": "logged"}});
    assert_eq!(owner.data(&g, "logged", "insertOne", &doc).await.status, StatusCode::OK);
    let r = owner.post(&format!("/api/atrest/v1/groups/{g}/clusters/logged/rotateMasterKey"), &json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let answers =
        get_everything(&owner, &[("groupId", g.as_str()), ("orgId", org.as_str()), ("clusterName", "logged")]).await;
    let seen: Vec<String> =
        reqwest::get(format!("{aws_url}/_emulator/secrets")).await.unwrap().json::<serde_json::Value>().await.unwrap()
            ["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
    assert!(seen.len() >= 4, "the emulator saw too few secrets to test with: {}", seen.len());

    // Let the log settle, then stop the server so everything is flushed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut s = s;
    let _ = s.child.kill();
    let _ = s.child.wait();

    let mut secrets = vec![private, creds["ATREST_PRIVATE_KEY"].clone()];
    let aws = aws_secrets(&s.dir);
    assert!(!aws.is_empty(), "no AWS secrets found to look for");
    secrets.extend(aws);
    let log = std::fs::read(&s.log).unwrap();
    assert!(!log.is_empty(), "the server logged nothing at debug level");
    assert_clean("the server's stderr", &log, &secrets);

    // No STS session token or secret, no plaintext master or data key (as base64, hex or raw
    // bytes) in the log, in any file, or in any API answer.
    let mut forms: Vec<Vec<u8>> = Vec::new();
    for secret in &seen {
        forms.push(secret.clone().into_bytes());
        if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(secret) {
            if raw.len() >= 16 {
                forms.push(hex::encode(&raw).into_bytes());
                forms.push(raw);
            }
        }
    }
    let mut places: Vec<(String, Vec<u8>)> = vec![("the server's stderr".into(), log)];
    for f in files_under(&s.dir) {
        if let Ok(bytes) = std::fs::read(&f) {
            places.push((f.display().to_string(), bytes));
        }
    }
    for (path, status, body) in answers {
        places.push((format!("GET {path} ({status})"), body.into_bytes()));
    }
    for (what, bytes) in &places {
        for form in &forms {
            assert!(
                !bytes.windows(form.len()).any(|w| w == form.as_slice()),
                "{what} holds a session token or a plaintext key"
            );
        }
    }
    eprintln!("scanned {} places for {} secrets seen by AWS", places.len(), seen.len());
}
