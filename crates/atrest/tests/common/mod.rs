//! Test harness: starts the real `atrest` binary on a free port and talks to it with a Digest
//! client written to behave like Atlas's Go client (mongodb-forks/digest): every request goes
//! out unauthenticated first, and the challenge is parsed strictly.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use md5::Md5;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const V2: &str = "application/vnd.atlas.2023-01-01+json";

pub struct Server {
    pub child: Child,
    pub dir: PathBuf,
    pub url: String,
    pub creds: HashMap<String, String>,
    /// The PostgreSQL database it stores in, when the tests run on PostgreSQL.
    pub database_url: Option<String>,
    /// An AWS of its own (URL, credentials file) instead of the embedded one.
    pub aws: Option<(String, PathBuf)>,
    _tmp: Option<tempfile::TempDir>,
}

/// Runs `f` with a client of the PostgreSQL database `url`, on a thread of its own (the harness
/// is called from inside the tests' runtimes).
pub fn with_postgres<T: Send + 'static>(
    url: &str,
    f: impl for<'c> FnOnce(
            &'c tokio_postgres::Client,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'c>>
        + Send
        + 'static,
) -> T {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let (client, conn) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
            let conn = tokio::spawn(conn);
            let out = f(&client).await;
            drop(client);
            let _ = conn.await;
            out
        })
    })
    .join()
    .unwrap()
}

/// With `ATREST_TEST_DATABASE_URL` (a PostgreSQL server URL, as `scripts/with-postgres` exports)
/// the tests run on PostgreSQL: each data directory gets a database of its own, created on first
/// use and named after the directory, so a restarted server finds its database again.
pub fn database_url(dir: &Path) -> Option<String> {
    let server = std::env::var("ATREST_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
    let name = format!("atrest_{}", &hex::encode(Sha256::digest(dir.to_string_lossy().as_bytes()))[..24]);
    let create = name.clone();
    with_postgres(&server, move |c| {
        Box::pin(async move {
            let exists = c.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&create]).await.unwrap();
            if exists.is_none() {
                c.batch_execute(&format!("CREATE DATABASE {create}")).await.unwrap();
            }
        })
    });
    let mut url = reqwest::Url::parse(&server).expect("ATREST_TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    Some(url.to_string())
}

fn database_url_of(args: &[String]) -> Option<String> {
    args.iter().position(|a| a == "--database-url").and_then(|i| args.get(i + 1)).cloned()
}

/// The flags that put a server's store where the tests run: PostgreSQL when asked for, with a
/// replica id kept across restarts (a restarted server takes its clusters back at once).
pub fn store_args(dir: &Path) -> Vec<String> {
    match database_url(dir) {
        Some(url) => {
            let id = format!("test-{}", &hex::encode(Sha256::digest(dir.to_string_lossy().as_bytes()))[..12]);
            vec!["--database-url".into(), url, "--replica-id".into(), id]
        }
        None => vec![],
    }
}

impl Server {
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut s = Server::start_in(&dir, &[]);
        s._tmp = Some(tmp);
        s
    }

    pub fn start_with(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut s = Server::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts (or restarts) the binary on `dir`, waiting for the URL it prints.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Server {
        let mut args = store_args(dir);
        args.extend(extra.iter().map(|a| a.to_string()));
        let database_url = database_url_of(&args);
        Server::launch(dir, &args, &[], database_url)
    }

    /// `atrest serve` on `dir` with exactly these arguments and environment.
    pub fn launch(dir: &Path, args: &[String], env: &[(&str, String)], database_url: Option<String>) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_atrest"))
            .arg("serve")
            .arg("--data-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--aws-listen", "127.0.0.1:0"])
            .args(args)
            .env("ATREST_LOG", "warn")
            // Tests poll hard; rate limits have their own tests (rate_limits.rs), which override these.
            .env("ATREST_RATE_LIMIT_PER_KEY", "0")
            .env("ATREST_RATE_LIMIT_PER_PROJECT", "0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start atrest");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("atrest listening on ") {
                    let url = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = tx.send(url);
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("atrest printed its URL");
        let creds = read_credentials(&dir.join("bootstrap-credentials"));
        Server { child, dir: dir.to_owned(), url, creds, database_url, aws: None, _tmp: None }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url, &self.creds["ATREST_PUBLIC_KEY"], &self.creds["ATREST_PRIVATE_KEY"])
    }

    pub fn org_id(&self) -> String {
        self.creds["ATREST_ORG_ID"].clone()
    }

    /// Everything the store holds, as bytes: the SQLite files, or every row of the PostgreSQL
    /// database as JSON (BYTEA as hex). For scans that no secret is stored in plaintext.
    pub fn stored_bytes(&self) -> Vec<u8> {
        if let Some(url) = &self.database_url {
            return with_postgres(url, |c| {
                Box::pin(async move {
                    let tables = c
                        .query(
                            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                            &[],
                        )
                        .await
                        .unwrap();
                    let mut dump = String::new();
                    for t in tables {
                        let name: String = t.get(0);
                        for row in c.query(&format!("SELECT row_to_json(t)::text FROM {name} t"), &[]).await.unwrap() {
                            dump.push_str(row.get::<_, &str>(0));
                        }
                    }
                    dump.into_bytes()
                })
            });
        }
        let mut out = Vec::new();
        for name in ["atrest.sqlite3", "atrest.sqlite3-wal"] {
            out.extend(std::fs::read(self.dir.join(name)).unwrap_or_default());
        }
        out
    }

    /// A new API key of the organization with `roles`, made by the bootstrap key.
    pub async fn new_key(&self, roles: &[&str]) -> Client {
        let org = self.org_id();
        let r = self
            .client()
            .post(&format!("/api/atlas/v2/orgs/{org}/apiKeys"), &json!({"desc": "test", "roles": roles}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let k = r.json();
        Client::new(&self.url, k["publicKey"].as_str().unwrap(), k["privateKey"].as_str().unwrap())
    }

    /// The AWS's URL (the embedded one's, unless the server was given another).
    pub fn aws_url(&self) -> String {
        match &self.aws {
            Some((url, _)) => url.clone(),
            None => read_credentials(&self.dir.join("bootstrap-credentials"))["ATREST_AWS_URL"].clone(),
        }
    }

    fn aws_credentials_file(&self) -> PathBuf {
        match &self.aws {
            Some((_, file)) => file.clone(),
            None => self.dir.join("aws-credentials"),
        }
    }

    /// The customer's side of the AWS, through the official SDKs.
    pub fn customer(&self) -> Customer {
        let creds = aws_emulator::client::read_profile(&self.aws_credentials_file(), "customer").unwrap();
        Customer::new(&self.aws_url(), creds)
    }

    pub fn operator_profile(&self) -> aws_emulator::client::StaticCredentials {
        aws_emulator::client::read_profile(&self.aws_credentials_file(), "operator").unwrap()
    }

    /// The stored `awsKms` configuration of a project, read straight from the store.
    pub fn stored_aws_kms(&self, group: &str) -> Option<String> {
        self.stored_text("SELECT aws_kms FROM encryption_at_rest WHERE group_id = $1", group)
    }

    /// One text value read straight from the store, whichever backend it is: `sql` takes one
    /// parameter, written `$1` (SQLite reads it as `?1`).
    pub fn stored_text(&self, sql: &str, param: &str) -> Option<String> {
        match &self.database_url {
            Some(url) => {
                let (sql, param) = (sql.to_owned(), param.to_owned());
                with_postgres(url, move |c| {
                    Box::pin(async move { c.query_opt(&sql, &[&param]).await.unwrap().map(|r| r.get(0)) })
                })
            }
            None => {
                let conn = rusqlite::Connection::open_with_flags(
                    self.dir.join("atrest.sqlite3"),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .unwrap();
                conn.query_row(&sql.replace('$', "?"), [param], |r| r.get(0)).ok()
            }
        }
    }

    /// Adds a fault rule to the embedded AWS.
    pub async fn fault(&self, rule: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/_emulator/faults", self.aws_url()))
            .json(&rule)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "fault rule refused: {}", r.text().await.unwrap_or_default());
    }

    pub async fn clear_faults(&self) {
        reqwest::Client::new().delete(format!("{}/_emulator/faults", self.aws_url())).send().await.unwrap();
    }

    /// The product page's first procedure, done: a project with customer key management enabled
    /// through an authorized role. Returns its ids.
    pub async fn enable_cmk(&self, name: &str) -> Cmk {
        let c = self.client();
        let customer = self.customer();
        let g = c.post("/api/atlas/v2/groups", &json!({"name": name, "orgId": self.org_id()})).await.json()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let role = c
            .post(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess"), &json!({"providerName": "AWS"}))
            .await
            .json();
        let (key_id, key_arn) = customer.create_key().await;
        let role_name = format!("atlas-{name}");
        let arn = customer
            .create_atlas_role(
                &role_name,
                role["atlasAWSAccountArn"].as_str().unwrap(),
                role["atlasAssumedRoleExternalId"].as_str().unwrap(),
                &key_arn,
                PAGE_ACTIONS,
            )
            .await;
        let role_id = role["roleId"].as_str().unwrap().to_owned();
        let r = c
            .patch(
                &format!("/api/atlas/v2/groups/{g}/cloudProviderAccess/{role_id}"),
                &json!({"providerName": "AWS", "iamAssumedRoleArn": arn}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let r = c
            .patch(
                &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
                &json!({"awsKms": {"enabled": true, "customerMasterKeyID": key_id, "region": "US_EAST_1", "roleId": role_id}}),
            )
            .await;
        assert_eq!(r.json()["awsKms"]["valid"], true, "{}", r.text);
        Cmk { g, key_id, key_arn, role_id, role_name }
    }

    /// Calls the embedded AWS's admin API.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut req = reqwest::Client::new().request(method, format!("{}/_emulator/{path}", self.aws_url()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert!(r.status().is_success(), "admin {path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }

    pub async fn events(&self, group: &str) -> Vec<String> {
        let r = self.client().get(&format!("/api/atlas/v2/groups/{group}/events?itemsPerPage=500")).await.json();
        r["results"].as_array().unwrap().iter().map(|e| e["eventTypeName"].as_str().unwrap().to_owned()).collect()
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process and starts a new one on the same data directory.
    pub fn restart(self) -> Server {
        self.restart_with(&[])
    }

    pub fn restart_with(mut self, extra: &[&str]) -> Server {
        self.kill9();
        let tmp = self._tmp.take();
        let mut next = Server::start_in(&self.dir, extra);
        next._tmp = tmp;
        next
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A customer's AWS account: creates keys and roles the way the product page tells them to.
pub struct Customer {
    pub kms: aws_sdk_kms::Client,
    pub iam: aws_sdk_iam::Client,
    pub account: String,
}

impl Customer {
    pub fn new(url: &str, creds: aws_emulator::client::StaticCredentials) -> Customer {
        Customer {
            kms: aws_emulator::client::kms_client(url, "us-east-1", &creds),
            iam: aws_emulator::client::iam_client(url, &creds),
            account: String::new(),
        }
    }

    /// A symmetric key with the default key policy; returns (key id, key ARN).
    pub async fn create_key(&self) -> (String, String) {
        let out = self.kms.create_key().description("atrest test key").send().await.unwrap();
        let m = out.key_metadata().unwrap();
        (m.key_id().to_owned(), m.arn().unwrap().to_owned())
    }

    /// The page's IAM role: trust policy naming atrest's principal and the external id, and the
    /// access policy for one key. Returns the role ARN.
    pub async fn create_atlas_role(
        &self,
        name: &str,
        atlas_arn: &str,
        external_id: &str,
        key_arn: &str,
        actions: &[&str],
    ) -> String {
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": atlas_arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}}
            }]
        });
        let role =
            self.iam.create_role().role_name(name).assume_role_policy_document(trust.to_string()).send().await.unwrap();
        let access = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": [key_arn]}]
        });
        self.iam
            .put_role_policy()
            .role_name(name)
            .policy_name("atlas-kms-access")
            .policy_document(access.to_string())
            .send()
            .await
            .unwrap();
        role.role().unwrap().arn().to_owned()
    }

    /// Replaces the access policy of the role made by `create_atlas_role`: the page's actions
    /// on each of `key_arns` (a second key before a CMK change).
    pub async fn allow_keys(&self, role_name: &str, key_arns: &[&str]) {
        let access = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": PAGE_ACTIONS, "Resource": key_arns}]
        });
        self.iam
            .put_role_policy()
            .role_name(role_name)
            .policy_name("atlas-kms-access")
            .policy_document(access.to_string())
            .send()
            .await
            .unwrap();
    }

    pub async fn disable_key(&self, key: &str) {
        self.kms.disable_key().key_id(key).send().await.unwrap();
    }

    pub async fn enable_key(&self, key: &str) {
        self.kms.enable_key().key_id(key).send().await.unwrap();
    }
}

pub struct Cmk {
    pub g: String,
    pub key_id: String,
    pub key_arn: String,
    pub role_id: String,
    pub role_name: String,
}

pub const V2024: &str = "application/vnd.atlas.2024-10-23+json";

/// A REPLICASET cluster with electable nodes in each of `regions` (priority 7, 6, ...).
pub fn cluster_body(name: &str, size: &str, provider: &str, regions: &[&str]) -> Value {
    let configs: Vec<Value> = regions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({"providerName": "AWS", "regionName": r, "priority": 7 - i,
                   "electableSpecs": {"instanceSize": size, "nodeCount": 3}})
        })
        .collect();
    json!({"name": name, "clusterType": "REPLICASET", "encryptionAtRestProvider": provider,
           "replicationSpecs": [{"regionConfigs": configs}]})
}

pub const PAGE_ACTIONS: &[&str] = &["kms:Decrypt", "kms:Encrypt", "kms:DescribeKey"];

pub fn read_credentials(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn content_type(&self) -> String {
        self.headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
    }
    pub fn error_code(&self) -> String {
        self.json()["errorCode"].as_str().unwrap_or("").to_owned()
    }
}

/// The challenge as the Go client parses it: `Digest ` then directives split on ", ", each one
/// of realm, domain, nonce, opaque, stale, algorithm, qop; anything else is an error.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub algorithm: String,
    pub qop: String,
    pub stale: bool,
    pub opaque: Option<String>,
}

pub fn parse_challenge_strict(header: &str) -> Result<Challenge, String> {
    let body = header.strip_prefix("Digest ").ok_or("not a Digest challenge")?;
    let mut c = Challenge {
        realm: String::new(),
        nonce: String::new(),
        algorithm: "MD5".into(),
        qop: String::new(),
        stale: false,
        opaque: None,
    };
    for part in body.split(", ") {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("bad directive {part}"))?;
        let v = v.trim_matches('"').to_owned();
        match k {
            "realm" => c.realm = v,
            "domain" => {}
            "nonce" => c.nonce = v,
            "opaque" => c.opaque = Some(v),
            "stale" => c.stale = v == "true",
            "algorithm" => {
                if v != "MD5" && v != "SHA-256" {
                    return Err(format!("unsupported algorithm {v}"));
                }
                c.algorithm = v
            }
            "qop" => {
                if v != "auth" {
                    return Err(format!("unsupported qop {v}"));
                }
                c.qop = v
            }
            other => return Err(format!("unexpected directive {other}")),
        }
    }
    Ok(c)
}

pub fn hash(alg: &str, s: &str) -> String {
    if alg == "SHA-256" {
        hex::encode(Sha256::digest(s.as_bytes()))
    } else {
        hex::encode(Md5::digest(s.as_bytes()))
    }
}

/// Builds the Authorization header exactly as the Go client does.
pub fn authorization(c: &Challenge, alg: &str, user: &str, pass: &str, method: &str, uri: &str, nc: u32) -> String {
    let cnonce = hex::encode(rand::random::<[u8; 8]>());
    let ha1 = hash(alg, &format!("{user}:{}:{pass}", c.realm));
    let ha2 = hash(alg, &format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let response = hash(alg, &format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce));
    let mut h = format!(
        "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm=\"{alg}\"",
        c.realm, c.nonce
    );
    if let Some(o) = &c.opaque {
        h.push_str(&format!(", opaque=\"{o}\""));
    }
    h.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
    h
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub user: String,
    pub pass: String,
    pub accept: String,
    pub algorithm: String,
    /// With a bearer token (a service account's), requests carry it and skip the Digest handshake.
    pub bearer: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, user: &str, pass: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_owned(),
            user: user.into(),
            pass: pass.into(),
            accept: V2.into(),
            algorithm: "MD5".into(),
            bearer: None,
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        }
    }

    /// A client authenticated as a service account: `POST /api/oauth/token` with the client id
    /// and secret (HTTP Basic, `grant_type=client_credentials`, as Atlas has it), then
    /// `Authorization: Bearer <access_token>` on every request.
    pub async fn with_service_account(base: &str, client_id: &str, client_secret: &str) -> Result<Client, String> {
        let mut c = Client::new(base, "", "");
        let r = c
            .http
            .post(format!("{}/api/oauth/token", c.base))
            .basic_auth(client_id, Some(client_secret))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        match body["access_token"].as_str() {
            Some(token) if status.is_success() => {
                c.bearer = Some(token.to_owned());
                Ok(c)
            }
            _ => Err(format!("POST /api/oauth/token answered {status}: {body}")),
        }
    }

    pub fn with_accept(mut self, accept: &str) -> Client {
        self.accept = accept.into();
        self
    }

    async fn send(&self, method: &Method, path: &str, body: Option<&Value>, auth: Option<String>) -> Resp {
        self.try_send(method, path, body, auth).await.expect("request sent")
    }

    async fn try_send(&self, method: &Method, path: &str, body: Option<&Value>, auth: Option<String>) -> Option<Resp> {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if !self.accept.is_empty() {
            req = req.header("Accept", &self.accept);
        }
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let r = req.send().await.ok()?;
        let (status, headers) = (r.status(), r.headers().clone());
        Some(Resp { status, headers, text: r.text().await.ok()? })
    }

    /// [`Client::request`] for a server that may die mid-request (crash tests): `None` when no
    /// complete response arrived, i.e. nothing was acknowledged.
    pub async fn try_request(&self, method: Method, path: &str, body: Option<&Value>) -> Option<Resp> {
        let first = self.try_send(&method, path, body, None).await?;
        if first.status != StatusCode::UNAUTHORIZED {
            return Some(first);
        }
        let c = parse_challenge_strict(first.headers.get("www-authenticate")?.to_str().ok()?).ok()?;
        let auth = authorization(&c, &self.algorithm, &self.user, &self.pass, method.as_str(), path, 1);
        self.try_send(&method, path, body, Some(auth)).await
    }

    /// The Go client's two-step handshake: unauthenticated, then answer the challenge (or the
    /// bearer token, when the client has one).
    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        if let Some(token) = &self.bearer {
            return self.send(&method, path, body, Some(format!("Bearer {token}"))).await;
        }
        let first = self.send(&method, path, body, None).await;
        if first.status != StatusCode::UNAUTHORIZED {
            return first;
        }
        let header = first.headers.get("www-authenticate").expect("401 carries a challenge").to_str().unwrap();
        let c = parse_challenge_strict(header).expect("challenge parses strictly");
        let auth = authorization(&c, &self.algorithm, &self.user, &self.pass, method.as_str(), path, 1);
        self.send(&method, path, body, Some(auth)).await
    }

    /// A data API action on a cluster.
    pub async fn data(&self, g: &str, cluster: &str, action: &str, body: &Value) -> Resp {
        let c = self.clone().with_accept("application/json");
        c.post(&format!("/data/v1/groups/{g}/clusters/{cluster}/action/{action}"), body).await
    }

    /// Creates a cluster (201 asserted) and waits until its data API serves reads.
    pub async fn create_cluster(&self, g: &str, body: &Value) -> Resp {
        let r = self.clone().with_accept(V2024).post(&format!("/api/atlas/v2/groups/{g}/clusters"), body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let name = body["name"].as_str().unwrap().to_owned();
        let probe = json!({"database": "probe", "collection": "c", "limit": 1});
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.data(g, &name, "find", &probe).await.status != StatusCode::OK {
            assert!(Instant::now() < deadline, "cluster {name} never served data");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        r
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.request(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.request(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.request(Method::DELETE, path, None).await
    }

    /// One challenge, then a raw Authorization header built by the caller.
    pub async fn challenge(&self, path: &str) -> Challenge {
        let r = self.send(&Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        parse_challenge_strict(r.headers["www-authenticate"].to_str().unwrap()).unwrap()
    }

    pub async fn raw(&self, method: Method, path: &str, auth: Option<String>) -> Resp {
        self.send(&method, path, None, auth).await
    }
}

pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}
