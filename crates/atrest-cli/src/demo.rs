//! `atrest demo`: the product page "Encryption at Rest using your Key Management" with AWS KMS
//! over private networking, told end to end against a real server and its embedded AWS, each
//! step narrated with the API calls it makes and checked against what the page says happens.
//!
//! By default the demo starts its own server (this binary's `serve`, in a temporary data
//! directory, on free ports, with fast reconcile and key-check intervals); with `--url` it uses
//! a running one. The customer's side (KMS key, IAM role, key policy, endpoint connections) is
//! done with the official AWS SDK clients under the `customer` profile.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_emulator::client::{iam_client, kms_client, read_profile, Ec2Client, StaticCredentials};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use crate::config::read_env_file;
use crate::error::CliError;
use crate::http::{seg, Api, Credentials, Method, Request, Response, PLAIN_JSON, V2_CLUSTERS};
use crate::progress::Progress;

const EXAMPLE: &str = "\
Example:
  atrest demo                      # starts its own server in a temporary directory
  atrest demo --output json > transcript.json
  atrest demo --url http://127.0.0.1:8080 --data-dir ./atrest-data   # a running server

Without --url the demo starts `atrest serve` in a temporary data directory on free ports with
fast intervals (--key-check-interval 1s, --reconcile-interval 200ms, --aws-endpoint-ready 300ms)
and stops it at the end. With --url it needs the server's API key (--public-key/--private-key,
ATREST_PUBLIC_KEY/ATREST_PRIVATE_KEY, or <data-dir>/bootstrap-credentials), its embedded AWS
(--aws-url, ATREST_AWS_URL, or the bootstrap file) and the customer profile
(<data-dir>/aws-credentials or AWS_SHARED_CREDENTIALS_FILE). The scan of the files on disk for
plaintext needs the data directory: it is skipped without one.

Exit codes: 0 every step behaved as the page says, 1 a step did not (it is named on stderr),
2 usage error (missing credentials), 3 the server could not be started or reached, 4 the API
key was refused.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DemoOutput {
    /// The narrated transcript
    #[default]
    Text,
    /// One JSON document: every step, its calls and outcome
    Json,
}

/// `atrest demo`
#[derive(Args, Debug, Clone)]
#[command(after_help = EXAMPLE)]
pub struct DemoArgs {
    /// Use this running server instead of starting one
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Public API key of the running server (with --url)
    #[arg(long, value_name = "KEY", env = "ATREST_PUBLIC_KEY", hide_env_values = true)]
    pub public_key: Option<String>,
    /// Private API key of the running server (with --url)
    #[arg(long, value_name = "KEY", env = "ATREST_PRIVATE_KEY", hide_env_values = true)]
    pub private_key: Option<String>,
    /// Data directory of the running server (with --url): credentials, AWS URL, plaintext scan
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// URL of the running server's embedded AWS (with --url)
    #[arg(long, value_name = "URL", env = "ATREST_AWS_URL", hide_env_values = true)]
    pub aws_url: Option<String>,
    /// text (narrated) or json (a transcript document on stdout)
    #[arg(short = 'o', long, value_enum, default_value_t = DemoOutput::Text)]
    pub output: DemoOutput,
    /// Seconds to wait for each asynchronous change (endpoints, clusters, key checks)
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,
    /// Keep the temporary data directory of the server the demo started
    #[arg(long)]
    pub keep: bool,
}

const TITLES: &[&str] = &[
    "Create a project",
    "Create the Atlas side of the IAM role (cloudProviderAccess)",
    "Customer: create the KMS key and the IAM role with the page's trust and access policies",
    "Authorize the IAM role",
    "Enable customer key management with the role",
    "Require private networking",
    "Create private endpoints in US_EAST_1 and US_WEST_2",
    "Customer: lock the key policy to the private endpoints",
    "Create an M10 cluster with customer keys",
    "Write documents; the files on disk hold no plaintext",
    "Customer: disable the key; the data goes dark",
    "Customer: enable the key again; the data comes back",
    "Customer: reject an ACTIVE endpoint in AWS; Atlas recreates it",
    "Switch off in the wrong order: refused while private endpoints exist",
    "Delete the private endpoints",
    "Stop requiring private networking",
    "Disable the project's customer keys while a cluster uses them: refused",
    "Switch the cluster back to Atlas-managed keys (NONE)",
    "Disable customer key management for the project",
];

const DOCS: usize = 1000;
const CLUSTER: &str = "demo-orders";
const EAST: &str = "US_EAST_1";
const WEST: &str = "US_WEST_2";

/// Runs the demo; returns the process exit code.
pub async fn run(args: DemoArgs) -> i32 {
    let started = Instant::now();
    let json_out = args.output == DemoOutput::Json;
    let mut server = None;
    let setup = match &args.url {
        Some(url) => connect_running(&args, url),
        None => match start_server().await {
            Ok((s, setup)) => {
                server = Some(s);
                Ok(setup)
            }
            Err(e) => Err(e),
        },
    };
    let setup = match setup {
        Ok(s) => s,
        Err((code, msg)) => {
            eprintln!("Error: {msg}");
            return code;
        }
    };
    let mut demo = match Demo::new(setup, &args) {
        Ok(d) => d,
        Err(msg) => {
            eprintln!("Error: {msg}");
            return 2;
        }
    };
    demo.t.header("atrest demo: Encryption at Rest using your Key Management (AWS KMS) over private networking");
    if let Some(s) = &server {
        demo.t.header(&format!(
            "server: started {} (embedded AWS {}; data in {})",
            s.url,
            demo.aws_url,
            s.data.display()
        ));
    } else {
        demo.t.header(&format!("server: {} (embedded AWS {})", demo.api_url, demo.aws_url));
    }
    // Reachable, and the key is accepted? Otherwise there is no story to tell.
    if let Err(e) = demo.api.send(&Request::get("/api/atlas/v2/orgs")).await {
        eprintln!("{e}");
        return match e {
            CliError::Network(_) => 3,
            CliError::Auth(_) => 4,
            _ => 1,
        };
    }
    // Ctrl-C: stop where we are, still stop the server and remove its directory.
    let result = tokio::select! {
        r = demo.run_all() => r,
        _ = tokio::signal::ctrl_c() => {
            let n = (demo.t.steps.len() + 1).min(TITLES.len());
            demo.t.cur = None;
            Err(Failure { n, title: TITLES[n - 1], reason: "interrupted".into() })
        }
    };
    if result.is_err() {
        demo.restore_emulator().await;
    }
    let elapsed = started.elapsed();
    let code = match &result {
        Ok(()) => 0,
        Err(f) if f.reason == "interrupted" => 130,
        Err(_) => 1,
    };
    let n = demo.t.steps.len();
    let summary = match &result {
        Ok(()) => format!("{n} steps, all as the page says ({:.1} s)", elapsed.as_secs_f64()),
        Err(f) if f.reason == "interrupted" => {
            format!("interrupted during step {} \"{}\" ({:.1} s)", f.n, f.title, elapsed.as_secs_f64())
        }
        Err(f) => format!(
            "step {} \"{}\" did not behave as the page says: {} ({:.1} s)",
            f.n,
            f.title,
            f.reason,
            elapsed.as_secs_f64()
        ),
    };
    if let (Err(f), Some(s)) = (&result, &server) {
        if f.reason != "interrupted" {
            let log = std::fs::read_to_string(&s.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            if !tail.is_empty() {
                eprintln!("last lines of the server's log ({}):", s.log.display());
                for l in tail.iter().rev() {
                    eprintln!("  {l}");
                }
            }
        }
    }
    if json_out {
        let doc = json!({
            "ok": result.is_ok(),
            "summary": summary,
            "elapsedSeconds": (elapsed.as_secs_f64() * 10.0).round() / 10.0,
            "server": demo.api_url,
            "awsUrl": demo.aws_url,
            "startedServer": server.is_some(),
            "failedStep": result.as_ref().err().map(|f| json!({"n": f.n, "title": f.title, "reason": f.reason})),
            "steps": demo.t.steps,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!();
        match &result {
            Ok(()) => println!("✓ {summary}"),
            Err(_) => println!("✗ {summary}"),
        }
    }
    if result.is_err() {
        eprintln!("Error: {summary}");
    }
    if let Some(mut s) = server {
        s.stop();
        if args.keep {
            if let Some(t) = s.tmp.take() {
                let p = t.keep();
                eprintln!("kept the server's data in {}", p.display());
            }
        }
    }
    code
}

// ------------------------------------------------------------------------------------ setup

/// Everything the demo needs to talk to a server and its AWS.
struct Setup {
    creds: Credentials,
    org_id: Option<String>,
    aws_url: String,
    customer: StaticCredentials,
    /// The directory scanned for plaintext (only when it is known and local).
    scan_dir: Option<PathBuf>,
}

type SetupError = (i32, String);

fn connect_running(args: &DemoArgs, url: &str) -> Result<Setup, SetupError> {
    let boot = match &args.data_dir {
        Some(d) => read_env_file(&d.join("bootstrap-credentials")).map_err(|e| (2, e.to_string()))?,
        None => Default::default(),
    };
    let from_boot = |k: &str| boot.get(k).cloned().filter(|v| !v.is_empty());
    let public_key = args.public_key.clone().or_else(|| from_boot("ATREST_PUBLIC_KEY"));
    let private_key = args.private_key.clone().or_else(|| from_boot("ATREST_PRIVATE_KEY"));
    let (Some(public_key), Some(private_key)) = (public_key, private_key) else {
        return Err((
            2,
            "with --url the demo needs the server's API key: --public-key and --private-key \
             (or ATREST_PUBLIC_KEY, ATREST_PRIVATE_KEY, or --data-dir with bootstrap-credentials)"
                .into(),
        ));
    };
    let aws_url = args.aws_url.clone().or_else(|| from_boot("ATREST_AWS_URL")).ok_or_else(|| {
        (
            2,
            "with --url the demo needs the server's embedded AWS: --aws-url (or ATREST_AWS_URL, or \
             --data-dir with bootstrap-credentials)"
                .to_owned(),
        )
    })?;
    let aws_file = match &args.data_dir {
        Some(d) => d.join("aws-credentials"),
        None => match std::env::var_os("AWS_SHARED_CREDENTIALS_FILE") {
            Some(f) => PathBuf::from(f),
            None => {
                return Err((
                    2,
                    "with --url the demo needs the customer's AWS profile: --data-dir (its aws-credentials) \
                     or AWS_SHARED_CREDENTIALS_FILE"
                        .into(),
                ))
            }
        },
    };
    let customer = read_profile(&aws_file, "customer").map_err(|e| (2, e.to_string()))?;
    let org_id = std::env::var("ATREST_ORG_ID").ok().filter(|v| !v.is_empty()).or_else(|| from_boot("ATREST_ORG_ID"));
    Ok(Setup {
        creds: Credentials { url: url.to_owned(), public_key, private_key },
        org_id,
        aws_url,
        customer,
        scan_dir: args.data_dir.clone().filter(|d| d.is_dir()),
    })
}

/// The server the demo started: killed (by its own handle) when dropped.
struct OwnServer {
    child: Option<Child>,
    tmp: Option<tempfile::TempDir>,
    data: PathBuf,
    log: PathBuf,
    url: String,
}

impl OwnServer {
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn start_server() -> Result<(OwnServer, Setup), SetupError> {
    let fail = |m: String| (3, m);
    let exe = std::env::current_exe().map_err(|e| fail(format!("cannot find the atrest binary: {e}")))?;
    let tmp = tempfile::Builder::new()
        .prefix("atrest-demo-")
        .tempdir()
        .map_err(|e| fail(format!("cannot create a temporary directory: {e}")))?;
    let data = tmp.path().join("data");
    let log = tmp.path().join("server.log");
    let log_file = std::fs::File::create(&log).map_err(|e| fail(format!("cannot create {}: {e}", log.display())))?;
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .args(["--listen", "127.0.0.1:0", "--aws-listen", "127.0.0.1:0"])
        .args(["--key-check-interval", "1s", "--reconcile-interval", "200ms", "--aws-endpoint-ready", "300ms"]);
    // The demo's server is its own: no settings of another one leak in from the environment.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ATREST_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("ATREST_LOG", "warn").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log_file));
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot start atrest serve: {e}")))?;
    let stdout = child.stdout.take();
    let mut server =
        OwnServer { child: Some(child), tmp: None, data: data.clone(), log: log.clone(), url: String::new() };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    if let Some(out) = stdout {
        // Reads the URL, then keeps draining the pipe so the server never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("atrest listening on ") {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
        });
    }
    let url =
        tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60))).await.ok().and_then(Result::ok);
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(fail(format!("the server did not start (log {}):\n{}", log.display(), tail.join("\n"))));
    };
    server.url = url.clone();
    server.tmp = Some(tmp);
    let boot = read_env_file(&data.join("bootstrap-credentials")).map_err(|e| fail(e.to_string()))?;
    let get = |k: &str| boot.get(k).cloned().ok_or_else(|| fail(format!("{k} missing in bootstrap-credentials")));
    let setup = Setup {
        creds: Credentials { url, public_key: get("ATREST_PUBLIC_KEY")?, private_key: get("ATREST_PRIVATE_KEY")? },
        org_id: boot.get("ATREST_ORG_ID").cloned(),
        aws_url: get("ATREST_AWS_URL")?,
        customer: read_profile(&data.join("aws-credentials"), "customer").map_err(|e| fail(e.to_string()))?,
        // The whole temporary directory: the data directory and the server's log.
        scan_dir: server.tmp.as_ref().map(|t| t.path().to_owned()),
    };
    Ok((server, setup))
}

// ------------------------------------------------------------------------------- transcript

/// What the demo printed, step by step; printed as it happens in text mode.
struct Transcript {
    text: bool,
    steps: Vec<Value>,
    cur: Option<(usize, &'static str, Instant, Vec<Value>)>,
}

impl Transcript {
    fn header(&mut self, line: &str) {
        if self.text {
            println!("{line}");
        }
    }

    fn begin(&mut self, n: usize, title: &'static str) {
        if self.text {
            println!("\n[{n}/{}] {title}", TITLES.len());
        }
        self.cur = Some((n, title, Instant::now(), Vec::new()));
    }

    fn push(&mut self, text: String, record: Value) {
        if self.text {
            println!("  {text}");
        }
        if let Some(c) = &mut self.cur {
            c.3.push(record);
        }
    }

    fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.push(text.clone(), json!({"kind": "note", "text": text}));
    }

    fn end(&mut self, outcome: &Result<String, String>) {
        let Some((n, title, start, lines)) = self.cur.take() else { return };
        let secs = start.elapsed().as_secs_f64();
        let (ok, text) = match outcome {
            Ok(o) => (true, o.clone()),
            Err(e) => (false, e.clone()),
        };
        if self.text {
            let mark = if ok { "✓" } else { "✗" };
            println!("  {mark} {text} ({secs:.1} s)");
        }
        self.steps.push(json!({
            "n": n, "title": title, "ok": ok, "outcome": text,
            "seconds": (secs * 100.0).round() / 100.0, "lines": lines,
        }));
    }
}

/// Compact JSON, cut to `max` characters.
fn short(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.chars().count() <= max {
        s
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

fn error_code(body: &Value) -> String {
    body["errorCode"].as_str().unwrap_or("").to_owned()
}

fn aws_err<E: std::error::Error + 'static>(what: &str, e: E) -> String {
    format!("{what}: {}", DisplayErrorContext(&e))
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

// ------------------------------------------------------------------------------------- demo

struct Failure {
    n: usize,
    title: &'static str,
    reason: String,
}

#[derive(Clone, Debug)]
struct Endpoint {
    region: &'static str,
    id: String,
    vpce: String,
}

enum Poll<T> {
    Pending(String),
    Done(T),
}

struct Demo {
    api: Api,
    api_url: String,
    t: Transcript,
    org_id: Option<String>,
    aws_url: String,
    customer: StaticCredentials,
    kms: aws_sdk_kms::Client,
    iam: aws_sdk_iam::Client,
    http: reqwest::Client,
    scan_dir: Option<PathBuf>,
    timeout: Duration,
    poll: Duration,
    suffix: String,
    g: String,
    role_id: String,
    atlas_arn: String,
    external_id: String,
    key_id: String,
    key_arn: String,
    role_arn: String,
    endpoints: Vec<Endpoint>,
    marker: String,
    acceptance_set: bool,
}

impl Demo {
    fn new(s: Setup, args: &DemoArgs) -> Result<Demo, String> {
        let api = Api::new(s.creds.clone()).map_err(|e| e.to_string())?;
        let suffix = hex8();
        Ok(Demo {
            api,
            api_url: s.creds.url.clone(),
            t: Transcript { text: args.output == DemoOutput::Text, steps: Vec::new(), cur: None },
            org_id: s.org_id,
            kms: kms_client(&s.aws_url, "us-east-1", &s.customer),
            iam: iam_client(&s.aws_url, &s.customer),
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().map_err(|e| e.to_string())?,
            aws_url: s.aws_url.trim_end_matches('/').to_owned(),
            customer: s.customer,
            scan_dir: s.scan_dir,
            timeout: Duration::from_secs(args.timeout.max(1)),
            poll: Duration::from_millis(100),
            marker: format!("ATREST-DEMO-PLAINTEXT-{suffix}{}", hex8()),
            suffix,
            g: String::new(),
            role_id: String::new(),
            atlas_arn: String::new(),
            external_id: String::new(),
            key_id: String::new(),
            key_arn: String::new(),
            role_arn: String::new(),
            endpoints: Vec::new(),
            acceptance_set: false,
        })
    }

    async fn run_all(&mut self) -> Result<(), Failure> {
        for (i, title) in TITLES.iter().enumerate() {
            let n = i + 1;
            self.t.begin(n, title);
            let r = match n {
                1 => self.create_project().await,
                2 => self.atlas_role().await,
                3 => self.customer_key_and_role().await,
                4 => self.authorize().await,
                5 => self.enable_cmk().await,
                6 => self.require_private_networking().await,
                7 => self.create_endpoints().await,
                8 => self.lock_key_policy().await,
                9 => self.create_cluster().await,
                10 => self.write_documents().await,
                11 => self.disable_key().await,
                12 => self.enable_key().await,
                13 => self.reject_endpoint().await,
                14 => self.refused_while_endpoints_exist().await,
                15 => self.delete_endpoints().await,
                16 => self.stop_requiring_private_networking().await,
                17 => self.refused_while_cluster_uses_key().await,
                18 => self.cluster_to_none().await,
                19 => self.disable_project().await,
                _ => Err("no such step".into()),
            };
            self.t.end(&r);
            if let Err(reason) = r {
                return Err(Failure { n, title, reason });
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ helpers: Admin API

    fn ear(&self) -> String {
        format!("/api/atlas/v2/groups/{}/encryptionAtRest", seg(&self.g))
    }

    fn pes(&self) -> String {
        format!("{}/AWS/privateEndpoints", self.ear())
    }

    fn cluster_path(&self) -> String {
        format!("/api/atlas/v2/groups/{}/clusters/{CLUSTER}", seg(&self.g))
    }

    fn data_path(&self, action: &str) -> String {
        format!("/data/v1/groups/{}/clusters/{CLUSTER}/action/{action}", seg(&self.g))
    }

    /// One narrated call: `METHOD path body → status [errorCode]`.
    async fn call(&mut self, req: Request) -> Result<(u16, Value), String> {
        let resp = self.quiet(&req).await?;
        let (status, body) = resp;
        let code = error_code(&body);
        let mut line = format!("{} {}", req.method, req.path);
        if let Some(b) = &req.body {
            line.push(' ');
            line.push_str(&short(b, 110));
        }
        line.push_str(&format!(" → {status}"));
        if !code.is_empty() {
            line.push_str(&format!(" {code}"));
        }
        let record = json!({
            "kind": "api", "method": req.method.as_str(), "path": req.path, "body": req.body,
            "status": status, "errorCode": if code.is_empty() { Value::Null } else { json!(code) },
        });
        self.t.push(line, record);
        Ok((status, body))
    }

    /// A call that is not narrated (polls).
    async fn quiet(&self, req: &Request) -> Result<(u16, Value), String> {
        let Response { status, body } =
            self.api.execute(req).await.map_err(|e| e.to_string().trim_start_matches("Error: ").to_owned())?;
        let v = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or_else(|_| Value::String(body.clone()))
        };
        Ok((status, v))
    }

    async fn expect(&mut self, req: Request, want: u16) -> Result<Value, String> {
        let (path, method) = (req.path.clone(), req.method.clone());
        let (status, body) = self.call(req).await?;
        ensure(status == want, || format!("{method} {path} answered {status}, not {want}: {}", short(&body, 300)))?;
        Ok(body)
    }

    async fn refused(&mut self, req: Request, want: u16, code: &str) -> Result<Value, String> {
        let (path, method) = (req.path.clone(), req.method.clone());
        let (status, body) = self.call(req).await?;
        ensure(status == want && error_code(&body) == code, || {
            format!("{method} {path} answered {status} {}, not {want} {code}", short(&body, 300))
        })?;
        if let Some(d) = body["detail"].as_str() {
            self.t.note(format!("  \"{d}\""));
        }
        Ok(body)
    }

    /// Polls `check` until done, with a spinner (terminal) or one line per change on stderr.
    async fn wait<T>(
        &self,
        label: &str,
        mut check: impl AsyncFnMut(&Demo) -> Result<Poll<T>, String>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + self.timeout;
        let mut progress = Progress::new(label);
        loop {
            match check(self).await? {
                Poll::Done(v) => return Ok(v),
                Poll::Pending(status) => {
                    progress.set(&status);
                    if Instant::now() >= deadline {
                        return Err(format!("{label}: still {status} after {} s", self.timeout.as_secs()));
                    }
                }
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn endpoint_list(&self) -> Result<Vec<Value>, String> {
        let (status, body) = self.quiet(&Request::get(format!("{}?itemsPerPage=500", self.pes()))).await?;
        ensure(status == 200, || format!("listing the private endpoints answered {status}: {}", short(&body, 200)))?;
        Ok(body["results"].as_array().cloned().unwrap_or_default())
    }

    async fn ear_valid(&mut self) -> Result<Value, String> {
        let body = self.expect(Request::get(self.ear()), 200).await?;
        let k = &body["awsKms"];
        self.t.note(format!(
            "enabled: {}, valid: {}, requirePrivateNetworking: {}",
            k["enabled"], k["valid"], k["requirePrivateNetworking"]
        ));
        Ok(body)
    }

    async fn find_one(&self, n: usize) -> Result<(u16, Value), String> {
        let req = Request::post(
            self.data_path("findOne"),
            json!({"database": "shop", "collection": "orders", "filter": {"n": n}}),
        )
        .accept(PLAIN_JSON);
        self.quiet(&req).await
    }

    async fn count_docs(&mut self) -> Result<usize, String> {
        let req = Request::post(
            self.data_path("find"),
            json!({"database": "shop", "collection": "orders", "limit": DOCS * 2}),
        )
        .accept(PLAIN_JSON);
        let body = self.expect(req, 200).await?;
        let n = body["documents"].as_array().map(Vec::len).unwrap_or(0);
        self.t.note(format!("find → {n} documents"));
        Ok(n)
    }

    async fn wait_cluster_idle(&self) -> Result<Value, String> {
        let path = self.cluster_path();
        self.wait(&format!("cluster {CLUSTER}"), async |d: &Demo| {
            let (status, body) = d.quiet(&Request::get(path.clone()).accept(V2_CLUSTERS)).await?;
            ensure(status == 200, || format!("GET {path} answered {status}: {}", short(&body, 200)))?;
            let state = body["stateName"].as_str().unwrap_or("?").to_owned();
            Ok(if state == "IDLE" { Poll::Done(body) } else { Poll::Pending(state) })
        })
        .await
    }

    // ------------------------------------------------------------- helpers: customer side

    fn customer_line(&mut self, op: &str, detail: impl Into<String>) {
        let detail = detail.into();
        self.t.push(
            format!("customer AWS: {op} {detail}"),
            json!({"kind": "aws", "profile": "customer", "operation": op, "detail": detail}),
        );
    }

    fn ec2(&self) -> Ec2Client {
        Ec2Client::new(&self.aws_url, "us-east-1", self.customer.clone())
    }

    fn account(&self) -> String {
        self.key_arn.split(':').nth(4).unwrap_or("").to_owned()
    }

    /// The key policy: the account administers the key from anywhere; when `vpces` is given,
    /// the use of the key (Encrypt, Decrypt, DescribeKey, GenerateDataKey*) is denied unless the
    /// call arrives through one of those VPC endpoints.
    async fn put_key_policy(&mut self, vpces: Option<&[String]>) -> Result<(), String> {
        let mut statements = vec![json!({
            "Sid": "Enable IAM policies", "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{}:root", self.account())},
            "Action": "kms:*", "Resource": "*"
        })];
        if let Some(v) = vpces {
            statements.push(json!({
                "Sid": "Use only through the private endpoints", "Effect": "Deny", "Principal": "*",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:SourceVpce": v}}
            }));
        }
        let policy = json!({"Version": "2012-10-17", "Statement": statements});
        self.kms
            .put_key_policy()
            .key_id(&self.key_id)
            .policy_name("default")
            .policy(policy.to_string())
            .send()
            .await
            .map_err(|e| aws_err("kms PutKeyPolicy", e))?;
        let what = match vpces {
            Some(v) => format!("(Deny kms:Encrypt/Decrypt/DescribeKey/GenerateDataKey* unless aws:SourceVpce is one of {v:?}; the account keeps kms:* for administration)"),
            None => "(back to the default: the account's IAM policies decide, from any address)".to_owned(),
        };
        self.customer_line("kms put-key-policy", what);
        Ok(())
    }

    /// The embedded AWS's operator API (`/_emulator/...`).
    async fn emulator(&self, method: Method, path: &str) -> Result<Value, String> {
        let r = self
            .http
            .request(method, format!("{}/_emulator/{path}", self.aws_url))
            .send()
            .await
            .map_err(|e| format!("the embedded AWS's admin API ({path}): {e}"))?;
        let status = r.status();
        let v = r.json::<Value>().await.unwrap_or(Value::Null);
        ensure(status.is_success(), || format!("the embedded AWS's admin API ({path}) answered {status}"))?;
        Ok(v)
    }

    async fn restore_emulator(&mut self) {
        if self.acceptance_set {
            let _ = self.emulator(Method::DELETE, "regions/us-east-1/acceptance-required").await;
            self.acceptance_set = false;
        }
    }

    // --------------------------------------------------------------------------- the steps

    async fn create_project(&mut self) -> Result<String, String> {
        let org = match self.org_id.clone() {
            Some(o) => o,
            None => {
                let body = self.expect(Request::get("/api/atlas/v2/orgs"), 200).await?;
                body["results"][0]["id"].as_str().map(str::to_owned).ok_or("no organization visible to this key")?
            }
        };
        let name = format!("atrest-demo-{}", self.suffix);
        let body = self.expect(Request::post("/api/atlas/v2/groups", json!({"name": name, "orgId": org})), 200).await?;
        self.g = body["id"].as_str().ok_or("the project has no id")?.to_owned();
        Ok(format!("project {name} ({})", self.g))
    }

    async fn atlas_role(&mut self) -> Result<String, String> {
        let path = format!("/api/atlas/v2/groups/{}/cloudProviderAccess", seg(&self.g));
        let body = self.expect(Request::post(path, json!({"providerName": "AWS"})), 200).await?;
        let field = |k: &str| body[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        self.role_id = field("roleId").ok_or("no roleId")?;
        self.atlas_arn = field("atlasAWSAccountArn").ok_or("no atlasAWSAccountArn")?;
        self.external_id = field("atlasAssumedRoleExternalId").ok_or("no atlasAssumedRoleExternalId")?;
        ensure(body["authorizedDate"].is_null(), || "the new role is already authorized".into())?;
        self.t.note(format!("atlasAWSAccountArn: {}", self.atlas_arn));
        self.t.note(format!("atlasAssumedRoleExternalId: {}", self.external_id));
        Ok(format!("roleId {} (not yet authorized)", self.role_id))
    }

    async fn customer_key_and_role(&mut self) -> Result<String, String> {
        let out = self
            .kms
            .create_key()
            .description("atrest demo customer master key")
            .send()
            .await
            .map_err(|e| aws_err("kms CreateKey", e))?;
        let m = out.key_metadata().ok_or("CreateKey returned no key")?;
        self.key_id = m.key_id().to_owned();
        self.key_arn = m.arn().unwrap_or_default().to_owned();
        self.customer_line("kms create-key", format!("→ {}", self.key_arn));

        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": self.atlas_arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": self.external_id}}
            }]
        });
        let role_name = format!("atlas-kms-{}", self.suffix);
        let role = self
            .iam
            .create_role()
            .role_name(&role_name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .map_err(|e| aws_err("iam CreateRole", e))?;
        self.role_arn = role.role().map(|r| r.arn().to_owned()).ok_or("CreateRole returned no role")?;
        self.customer_line("iam create-role", format!("{role_name} → {}", self.role_arn));
        self.t.note(format!("  trust policy: {trust}"));

        let access = json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:Encrypt", "kms:DescribeKey"],
                "Resource": [self.key_arn]
            }]
        });
        self.iam
            .put_role_policy()
            .role_name(&role_name)
            .policy_name("atlas-kms-access")
            .policy_document(access.to_string())
            .send()
            .await
            .map_err(|e| aws_err("iam PutRolePolicy", e))?;
        self.customer_line("iam put-role-policy", format!("{role_name} atlas-kms-access"));
        self.t.note(format!("  access policy: {access}"));
        Ok(format!("key {} and role {}", self.key_id, self.role_arn))
    }

    async fn authorize(&mut self) -> Result<String, String> {
        let path = format!("/api/atlas/v2/groups/{}/cloudProviderAccess/{}", seg(&self.g), seg(&self.role_id));
        let body = json!({"providerName": "AWS", "iamAssumedRoleArn": self.role_arn});
        // IAM is eventually consistent: a new trust policy may take a moment to apply.
        let deadline = Instant::now() + self.timeout;
        let resp = loop {
            let (status, resp) = self.call(Request::patch(path.clone(), body.clone())).await?;
            if status == 400 && error_code(&resp) == "CANNOT_ASSUME_ROLE" && Instant::now() < deadline {
                self.t.note("the trust policy is not in effect yet (IAM propagation); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            ensure(status == 200, || format!("PATCH {path} answered {status}: {}", short(&resp, 300)))?;
            break resp;
        };
        ensure(resp["iamAssumedRoleArn"] == json!(self.role_arn), || format!("role not recorded: {resp}"))?;
        let date = resp["authorizedDate"].as_str().ok_or("no authorizedDate")?.to_owned();
        Ok(format!("authorizedDate {date}: atrest assumed {} with the external id", self.role_arn))
    }

    async fn enable_cmk(&mut self) -> Result<String, String> {
        let body = json!({"awsKms": {"enabled": true, "customerMasterKeyID": self.key_id, "region": EAST, "roleId": self.role_id}});
        let resp = self.expect(Request::patch(self.ear(), body), 200).await?;
        let k = &resp["awsKms"];
        ensure(k["enabled"] == true && k["valid"] == true, || format!("not enabled and valid: {}", short(k, 300)))?;
        Ok("valid: true (the key encrypted and decrypted through the assumed role)".into())
    }

    async fn require_private_networking(&mut self) -> Result<String, String> {
        let resp =
            self.expect(Request::patch(self.ear(), json!({"awsKms": {"requirePrivateNetworking": true}})), 200).await?;
        ensure(resp["awsKms"]["requirePrivateNetworking"] == true, || {
            format!("requirePrivateNetworking not set: {}", short(&resp["awsKms"], 300))
        })?;
        Ok("requirePrivateNetworking: true".into())
    }

    async fn create_endpoints(&mut self) -> Result<String, String> {
        for region in [EAST, WEST] {
            let resp = self.expect(Request::post(self.pes(), json!({"regionName": region})), 202).await?;
            ensure(resp["status"] == "INITIATING", || {
                format!("{region}: status {} instead of INITIATING", resp["status"])
            })?;
            let id = resp["id"].as_str().ok_or("no endpoint id")?.to_owned();
            self.t.note(format!("{region}: {id} INITIATING"));
            self.endpoints.push(Endpoint { region, id, vpce: String::new() });
        }
        let ids: Vec<String> = self.endpoints.iter().map(|e| e.id.clone()).collect();
        let active = self
            .wait("private endpoints", async |d: &Demo| {
                let list = d.endpoint_list().await?;
                let statuses: Vec<String> = ids
                    .iter()
                    .map(|id| {
                        list.iter()
                            .find(|e| e["id"] == json!(id))
                            .map(|e| {
                                format!(
                                    "{} {}",
                                    e["regionName"].as_str().unwrap_or("?"),
                                    e["status"].as_str().unwrap_or("?")
                                )
                            })
                            .unwrap_or_else(|| "missing".into())
                    })
                    .collect();
                if statuses.iter().any(|s| s.ends_with("FAILED") || s == "missing") {
                    return Err(format!("an endpoint did not become ACTIVE: {statuses:?}"));
                }
                Ok(if statuses.iter().all(|s| s.ends_with(" ACTIVE")) {
                    Poll::Done(list)
                } else {
                    Poll::Pending(statuses.join(", "))
                })
            })
            .await?;
        let (status, page) = self.call(Request::get(self.pes())).await?;
        ensure(status == 200 && page["totalCount"] == 2, || {
            format!("the list holds {} endpoints", page["totalCount"])
        })?;
        for ep in &mut self.endpoints {
            let e = active.iter().find(|e| e["id"] == json!(ep.id)).ok_or("endpoint vanished")?;
            ep.vpce = e["privateEndpointConnectionName"].as_str().unwrap_or("").to_owned();
        }
        for ep in self.endpoints.clone() {
            ensure(ep.vpce.starts_with("vpce-"), || format!("{}: no VPC endpoint name", ep.region))?;
            self.t.note(format!("{}: {} ACTIVE via {}", ep.region, ep.id, ep.vpce));
        }
        Ok("both endpoints ACTIVE".into())
    }

    async fn lock_key_policy(&mut self) -> Result<String, String> {
        let vpces: Vec<String> = self.endpoints.iter().map(|e| e.vpce.clone()).collect();
        self.put_key_policy(Some(&vpces)).await?;
        // The customer's own use of the key from the public address is now refused.
        let public = self
            .kms
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"hello".to_vec()))
            .send()
            .await;
        match &public {
            Ok(_) => return Err("kms Encrypt from the public address still works under the locked policy".into()),
            Err(e) => {
                let code = e.code().unwrap_or("error").to_owned();
                self.customer_line("kms encrypt", format!("from the public address → {code} (as intended)"));
            }
        }
        let counted = self.emulator(Method::DELETE, "requests").await.is_ok();
        let body = self.ear_valid().await?;
        ensure(body["awsKms"]["valid"] == true, || "validation failed under the locked key policy".into())?;
        if counted {
            let kms = self.emulator(Method::GET, "requests").await?["byService"]["kms"].clone();
            let east = &self.endpoints[0].vpce;
            let through = kms[east].as_u64().unwrap_or(0);
            let public = kms["public"].as_u64().unwrap_or(0);
            self.t.note(format!("KMS calls since the lock: {through} through {east}, {public} on the public address"));
            ensure(through > 0, || format!("no KMS call went through {east}: {kms}"))?;
        }
        Ok("valid: true — validation still succeeds, through the private endpoint".into())
    }

    async fn create_cluster(&mut self) -> Result<String, String> {
        let body = json!({
            "name": CLUSTER,
            "clusterType": "REPLICASET",
            "replicationSpecs": [{"regionConfigs": [{"providerName": "AWS", "regionName": EAST, "priority": 7,
                "electableSpecs": {"instanceSize": "M10", "nodeCount": 3}}]}],
            "encryptionAtRestProvider": "AWS",
        });
        let path = format!("/api/atlas/v2/groups/{}/clusters", seg(&self.g));
        let resp = self.expect(Request::post(path, body).accept(V2_CLUSTERS), 201).await?;
        self.t.note(format!(
            "stateName: {}, encryptionAtRestProvider: {}",
            resp["stateName"].as_str().unwrap_or("?"),
            resp["encryptionAtRestProvider"].as_str().unwrap_or("?")
        ));
        let idle = self.wait_cluster_idle().await?;
        self.t.note(format!("GET {} (polled) → stateName: IDLE", self.cluster_path()));
        ensure(idle["encryptionAtRestProvider"] == "AWS", || {
            format!("encryptionAtRestProvider is {}", idle["encryptionAtRestProvider"])
        })?;
        Ok(format!("cluster {CLUSTER} IDLE with encryptionAtRestProvider: AWS"))
    }

    async fn write_documents(&mut self) -> Result<String, String> {
        let marker = self.marker.clone();
        let docs: Vec<Value> = (0..DOCS)
            .map(|i| json!({"n": i, "note": format!("{marker} order #{i}"), "card": "4111 1111 1111 1111"}))
            .collect();
        let req = Request::post(
            self.data_path("insertMany"),
            json!({"database": "shop", "collection": "orders", "documents": docs}),
        )
        .accept(PLAIN_JSON);
        // Narrate without the thousand documents.
        let (status, body) = self.quiet(&req).await?;
        self.t.push(
            format!("POST {} {{\"documents\":[… {DOCS} documents, each with the marker …]}} → {status}", req.path),
            json!({"kind": "api", "method": "POST", "path": req.path, "body": {"documents": DOCS}, "status": status}),
        );
        ensure(status == 200, || format!("insertMany answered {status}: {}", short(&body, 300)))?;
        let n = self.count_docs().await?;
        ensure(n == DOCS, || format!("{n} documents read back, not {DOCS}"))?;
        let (status, one) = self.find_one(42).await?;
        ensure(status == 200, || format!("findOne answered {status}"))?;
        let note = one["document"]["note"].as_str().unwrap_or("").to_owned();
        ensure(note == format!("{marker} order #42"), || format!("findOne returned {one}"))?;
        self.t.note(format!("findOne {{n: 42}} → note: \"{note}\" (the API returns plaintext)"));
        let Some(dir) = self.scan_dir.clone() else {
            self.t.note("scan of the files on disk skipped: the demo did not start this server (give --data-dir)");
            return Ok(format!("{DOCS} documents written and read back; on-disk scan skipped"));
        };
        let files = files_under(&dir);
        let mut bytes = 0u64;
        let mut hits = Vec::new();
        for f in &files {
            let data = std::fs::read(f).unwrap_or_default();
            bytes += data.len() as u64;
            if contains(&data, marker.as_bytes()) || contains(&data, b"4111 1111 1111 1111") {
                hits.push(f.display().to_string());
            }
        }
        let databases = files
            .iter()
            .filter(|f| f.components().any(|c| c.as_os_str() == "clusters") && f.to_string_lossy().contains("sqlite"))
            .count();
        self.t.note(format!(
            "scanned {} files ({} KiB, {databases} of them the cluster's database files) under {} for \"{marker}\" and the card number",
            files.len(),
            bytes / 1024,
            dir.display()
        ));
        ensure(hits.is_empty(), || format!("plaintext found on disk in {hits:?}"))?;
        ensure(!files.is_empty(), || "no files to scan".into())?;
        Ok(format!("{DOCS} documents written; no plaintext in any file on disk"))
    }

    async fn disable_key(&mut self) -> Result<String, String> {
        self.kms.disable_key().key_id(&self.key_id).send().await.map_err(|e| aws_err("kms DisableKey", e))?;
        self.customer_line(
            "kms disable-key",
            format!(
                "{} (from the public address: the Deny covers only the key's use, not its administration)",
                self.key_id
            ),
        );
        let disabled_at = Instant::now();
        let (status, body) = self
            .wait("data API after DisableKey", async |d: &Demo| {
                let (status, body) = d.find_one(1).await?;
                Ok(if status == 200 { Poll::Pending("served (200)".into()) } else { Poll::Done((status, body)) })
            })
            .await?;
        let dark_after = disabled_at.elapsed().as_secs_f64();
        let code = error_code(&body);
        self.t.push(
            format!("POST {} {{\"filter\":{{\"n\":1}}}} → {status} {code}", self.data_path("findOne")),
            json!({"kind": "api", "method": "POST", "path": self.data_path("findOne"), "status": status, "errorCode": code}),
        );
        ensure(status == 503 && code == "ENCRYPTION_AT_REST_KEY_INACCESSIBLE", || {
            format!("the data API answered {status} {}", short(&body, 300))
        })?;
        let ear = self.ear_valid().await?;
        ensure(ear["awsKms"]["valid"] == false, || "valid is still true with the key disabled".into())?;
        let events = self
            .expect(Request::get(format!("/api/atlas/v2/groups/{}/events?itemsPerPage=50", seg(&self.g))), 200)
            .await?;
        let names: Vec<&str> =
            events["results"].as_array().into_iter().flatten().filter_map(|e| e["eventTypeName"].as_str()).collect();
        if names.contains(&"ENCRYPTION_AT_REST_CONFIG_NO_LONGER_VALID") {
            self.t.note("event: ENCRYPTION_AT_REST_CONFIG_NO_LONGER_VALID");
        }
        Ok(format!("503 ENCRYPTION_AT_REST_KEY_INACCESSIBLE {dark_after:.1} s after DisableKey: the data is dark, valid: false"))
    }

    async fn enable_key(&mut self) -> Result<String, String> {
        self.kms.enable_key().key_id(&self.key_id).send().await.map_err(|e| aws_err("kms EnableKey", e))?;
        self.customer_line("kms enable-key", self.key_id.clone());
        let body = self
            .wait("data API after EnableKey", async |d: &Demo| {
                let (status, body) = d.find_one(1).await?;
                Ok(if status == 200 {
                    Poll::Done(body)
                } else {
                    Poll::Pending(format!("{status} {}", error_code(&body)))
                })
            })
            .await?;
        self.t.push(
            format!("POST {} {{\"filter\":{{\"n\":1}}}} → 200", self.data_path("findOne")),
            json!({"kind": "api", "method": "POST", "path": self.data_path("findOne"), "status": 200}),
        );
        ensure(body["document"]["n"] == 1, || format!("findOne returned {body}"))?;
        let n = self.count_docs().await?;
        ensure(n == DOCS, || format!("{n} documents after the key came back, not {DOCS}"))?;
        let ear = self.ear_valid().await?;
        ensure(ear["awsKms"]["valid"] == true, || "valid is not true again".into())?;
        Ok(format!("served again: all {DOCS} documents, valid: true"))
    }

    async fn reject_endpoint(&mut self) -> Result<String, String> {
        let old = self.endpoints[0].clone();
        self.emulator(Method::POST, "regions/us-east-1/acceptance-required").await?;
        self.acceptance_set = true;
        self.t.push(
            "embedded AWS: new us-east-1 KMS endpoint connections now wait for the customer's acceptance".into(),
            json!({"kind": "emulator", "path": "/_emulator/regions/us-east-1/acceptance-required"}),
        );
        let service = aws_emulator::ec2::service_id("us-east-1");
        let ec2 = self.ec2();
        let bad = ec2
            .reject_vpc_endpoint_connections(&service, std::slice::from_ref(&old.vpce))
            .await
            .map_err(|e| format!("ec2 RejectVpcEndpointConnections: {e}"))?;
        ensure(bad.is_empty(), || format!("the rejection failed: {bad:?}"))?;
        self.customer_line("ec2 reject-vpc-endpoint-connections", format!("{} on {service}", old.vpce));

        let mut seen: Vec<String> = Vec::new();
        let old_id = old.id.clone();
        let replacement = self
            .wait("endpoint recreation", async |d: &Demo| {
                let list = d.endpoint_list().await?;
                let old_status = list
                    .iter()
                    .find(|e| e["id"] == json!(old_id))
                    .and_then(|e| e["status"].as_str())
                    .unwrap_or("missing")
                    .to_owned();
                let new = list.iter().find(|e| e["id"] != json!(old_id) && e["regionName"] == EAST).cloned();
                let new_status = new.as_ref().and_then(|e| e["status"].as_str()).unwrap_or("none yet").to_owned();
                if new.is_some() && seen.last() != Some(&new_status) {
                    seen.push(new_status.clone());
                }
                if new_status == "FAILED" {
                    return Err(format!("the new endpoint FAILED: {}", new.unwrap_or_default()));
                }
                Ok(if old_status == "PENDING_RECREATION" && new_status == "PENDING_ACCEPTANCE" {
                    Poll::Done((list, new.unwrap_or_default()))
                } else {
                    Poll::Pending(format!("rejected: {old_status}, new: {new_status}"))
                })
            })
            .await?;
        let (status, page) = self.call(Request::get(self.pes())).await?;
        ensure(status == 200, || format!("GET privateEndpoints answered {status}"))?;
        for e in page["results"].as_array().cloned().unwrap_or_else(|| replacement.0.clone()) {
            self.t.note(format!(
                "{} {} {} {}",
                e["regionName"].as_str().unwrap_or("?"),
                e["id"].as_str().unwrap_or("?"),
                e["privateEndpointConnectionName"].as_str().unwrap_or("-"),
                e["status"].as_str().unwrap_or("?")
            ));
        }
        let new = replacement.1;
        let new_id = new["id"].as_str().unwrap_or("").to_owned();
        let new_vpce = new["privateEndpointConnectionName"].as_str().unwrap_or("").to_owned();
        self.t.note(format!("the new endpoint went through {}", seen.join(" → ")));
        ensure(new_vpce.starts_with("vpce-") && new_vpce != old.vpce, || format!("the new endpoint's name: {new}"))?;

        // The customer lets the new endpoint use the key, then accepts its connection.
        let vpces = vec![new_vpce.clone(), self.endpoints[1].vpce.clone()];
        self.put_key_policy(Some(&vpces)).await?;
        let bad = ec2
            .accept_vpc_endpoint_connections(&service, std::slice::from_ref(&new_vpce))
            .await
            .map_err(|e| format!("ec2 AcceptVpcEndpointConnections: {e}"))?;
        ensure(bad.is_empty(), || format!("the acceptance failed: {bad:?}"))?;
        self.customer_line("ec2 accept-vpc-endpoint-connections", format!("{new_vpce} on {service}"));
        let (nid, oid) = (new_id.clone(), old.id.clone());
        self.wait("new endpoint", async |d: &Demo| {
            let list = d.endpoint_list().await?;
            let status = |id: &str| {
                list.iter()
                    .find(|e| e["id"] == json!(id))
                    .and_then(|e| e["status"].as_str())
                    .unwrap_or("gone")
                    .to_owned()
            };
            let (n, o) = (status(&nid), status(&oid));
            Ok(if n == "ACTIVE" && o == "gone" {
                Poll::Done(())
            } else {
                Poll::Pending(format!("new: {n}, rejected: {o}"))
            })
        })
        .await?;
        let (status, _) = self.call(Request::get(format!("{}/{}", self.pes(), seg(&old.id)))).await?;
        ensure(status == 404, || format!("the rejected endpoint's record is still there ({status})"))?;
        let (status, e) = self.call(Request::get(format!("{}/{}", self.pes(), seg(&new_id)))).await?;
        ensure(status == 200 && e["status"] == "ACTIVE", || format!("the new endpoint: {status} {}", short(&e, 200)))?;
        self.t.note(format!("{EAST}: {new_id} ACTIVE via {new_vpce}; the rejected record is retired"));
        self.endpoints[0] = Endpoint { region: EAST, id: new_id, vpce: new_vpce };
        self.restore_emulator().await;
        let ear = self.ear_valid().await?;
        ensure(ear["awsKms"]["valid"] == true, || "the key is not valid through the new endpoint".into())?;
        Ok("PENDING_RECREATION, new endpoint PENDING_ACCEPTANCE, accepted, ACTIVE".into())
    }

    async fn refused_while_endpoints_exist(&mut self) -> Result<String, String> {
        const CODE: &str = "CANNOT_DISABLE_ENCRYPTION_AT_REST_REQUIRE_PRIVATE_NETWORKING_WHILE_PRIVATE_ENDPOINTS_EXIST";
        self.refused(Request::patch(self.ear(), json!({"awsKms": {"enabled": false}})), 409, CODE).await?;
        self.refused(Request::patch(self.ear(), json!({"awsKms": {"requirePrivateNetworking": false}})), 409, CODE)
            .await?;
        let ear = self.ear_valid().await?;
        ensure(ear["awsKms"]["enabled"] == true && ear["awsKms"]["requirePrivateNetworking"] == true, || {
            "the refused changes were applied anyway".into()
        })?;
        Ok(format!("both refused: 409 {CODE}; nothing changed"))
    }

    async fn delete_endpoints(&mut self) -> Result<String, String> {
        for ep in self.endpoints.clone() {
            self.expect(Request::delete(format!("{}/{}", self.pes(), seg(&ep.id))), 204).await?;
            let (status, e) = self.quiet(&Request::get(format!("{}/{}", self.pes(), seg(&ep.id)))).await?;
            if status == 200 {
                self.t.note(format!("{}: {} {}", ep.region, ep.id, e["status"].as_str().unwrap_or("?")));
            }
        }
        self.wait("private endpoints", async |d: &Demo| {
            let list = d.endpoint_list().await?;
            Ok(if list.is_empty() {
                Poll::Done(())
            } else {
                let s: Vec<&str> = list.iter().filter_map(|e| e["status"].as_str()).collect();
                Poll::Pending(s.join(", "))
            })
        })
        .await?;
        let (status, page) = self.call(Request::get(self.pes())).await?;
        ensure(status == 200 && page["totalCount"] == 0, || format!("endpoints left: {}", short(&page, 300)))?;
        Ok("both endpoints DELETING, then gone (totalCount: 0)".into())
    }

    async fn stop_requiring_private_networking(&mut self) -> Result<String, String> {
        // Atlas will reach the key on its public address again: the customer lifts the Deny.
        self.put_key_policy(None).await?;
        let resp = self
            .expect(Request::patch(self.ear(), json!({"awsKms": {"requirePrivateNetworking": false}})), 200)
            .await?;
        let k = &resp["awsKms"];
        ensure(k["requirePrivateNetworking"] == false && k["enabled"] == true, || {
            format!("awsKms: {}", short(k, 300))
        })?;
        self.t.note(format!("requirePrivateNetworking: false, valid: {}", k["valid"]));
        Ok("requirePrivateNetworking: false".into())
    }

    async fn refused_while_cluster_uses_key(&mut self) -> Result<String, String> {
        self.refused(
            Request::patch(self.ear(), json!({"awsKms": {"enabled": false}})),
            409,
            "CANNOT_DISABLE_ENCRYPTION_AT_REST",
        )
        .await?;
        Ok("409 CANNOT_DISABLE_ENCRYPTION_AT_REST: cluster demo-orders still uses the key".into())
    }

    async fn cluster_to_none(&mut self) -> Result<String, String> {
        let resp = self
            .expect(
                Request::patch(self.cluster_path(), json!({"encryptionAtRestProvider": "NONE"})).accept(V2_CLUSTERS),
                200,
            )
            .await?;
        self.t.note(format!("stateName: {}", resp["stateName"].as_str().unwrap_or("?")));
        ensure(resp["stateName"] == "UPDATING", || format!("stateName {} instead of UPDATING", resp["stateName"]))?;
        let idle = self.wait_cluster_idle().await?;
        self.t.note(format!("GET {} (polled) → stateName: IDLE", self.cluster_path()));
        ensure(idle["encryptionAtRestProvider"] == "NONE", || {
            format!("encryptionAtRestProvider is {}", idle["encryptionAtRestProvider"])
        })?;
        let n = self.count_docs().await?;
        ensure(n == DOCS, || format!("{n} documents after re-encryption, not {DOCS}"))?;
        Ok(format!("IDLE with encryptionAtRestProvider: NONE; all {DOCS} documents kept"))
    }

    async fn disable_project(&mut self) -> Result<String, String> {
        let resp = self.expect(Request::patch(self.ear(), json!({"awsKms": {"enabled": false}})), 200).await?;
        ensure(resp["awsKms"]["enabled"] == false, || format!("awsKms: {}", short(&resp["awsKms"], 300)))?;
        self.t.note("awsKms: {\"enabled\": false}");
        let n = self.count_docs().await?;
        ensure(n == DOCS, || format!("{n} documents after disabling, not {DOCS}"))?;
        Ok(format!("enabled: false; the cluster still serves all {DOCS} documents"))
    }
}

fn hex8() -> String {
    format!("{:08x}", rand::random::<u32>())
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() || hay.len() < needle.len() {
        return needle.is_empty();
    }
    let first = needle[0];
    let mut i = 0;
    while let Some(p) = hay[i..=hay.len() - needle.len()].iter().position(|&b| b == first) {
        let at = i + p;
        if &hay[at..at + needle.len()] == needle {
            return true;
        }
        i = at + 1;
        if i > hay.len() - needle.len() {
            break;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_marker_anywhere() {
        assert!(contains(b"abcMARKERdef", b"MARKER"));
        assert!(contains(b"MARKER", b"MARKER"));
        assert!(contains(b"xxMARKER", b"MARKER"));
        assert!(!contains(b"MARKE", b"MARKER"));
        assert!(!contains(b"MMARKEMARKEr", b"MARKER"));
    }

    #[test]
    fn short_cuts_long_bodies() {
        assert_eq!(short(&json!({"a": 1}), 20), "{\"a\":1}");
        assert!(short(&json!({"a": "x".repeat(50)}), 10).ends_with('…'));
    }

    #[test]
    fn every_step_has_a_title() {
        assert_eq!(TITLES.len(), 19);
    }
}
