//! kms-loadgen: drives Encrypt / Decrypt / GenerateDataKey against a KMS endpoint (the atrest
//! emulator or moto_server) with N concurrent tasks for a fixed duration, and prints one JSON line:
//! `{"op","concurrency","requests","errors","seconds","throughput","p50_ms","p99_ms","mean_ms"}`.
//!
//! Two clients: `--client sdk` (default), each task with its own aws-sdk-kms client (own
//! connection pool); `--client raw` (src/raw.rs), each task with one keep-alive connection and
//! requests signed by aws-sigv4 directly, for a client that costs less CPU than the server.
//!
//! kms-loadgen --endpoint URL --access-key AK --secret-key SK --key-id KEY --op Encrypt
//!             [--client sdk|raw] [--region us-east-1] [--concurrency 16] [--duration 10]
//!             [--threads 1] [--warmup 20]

mod raw;

use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_sdk_kms::Client;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
struct Args {
    endpoint: String,
    access_key: String,
    secret_key: String,
    region: String,
    key_id: String,
    op: String,
    concurrency: usize,
    duration: f64,
    threads: usize,
    warmup: usize,
    client: String,
}

fn parse() -> Result<Args, Error> {
    let mut a = Args {
        endpoint: String::new(),
        access_key: String::new(),
        secret_key: String::new(),
        region: "us-east-1".into(),
        key_id: String::new(),
        op: "Encrypt".into(),
        concurrency: 1,
        duration: 10.0,
        threads: 1,
        warmup: 20,
        client: "sdk".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--endpoint" => a.endpoint = v,
            "--access-key" => a.access_key = v,
            "--secret-key" => a.secret_key = v,
            "--region" => a.region = v,
            "--key-id" => a.key_id = v,
            "--op" => a.op = v,
            "--concurrency" => a.concurrency = v.parse()?,
            "--duration" => a.duration = v.parse()?,
            "--threads" => a.threads = v.parse()?,
            "--warmup" => a.warmup = v.parse()?,
            "--client" if v == "sdk" || v == "raw" => a.client = v,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if a.endpoint.is_empty() || a.key_id.is_empty() || a.access_key.is_empty() {
        return Err("--endpoint, --access-key, --secret-key and --key-id are required".into());
    }
    Ok(a)
}

fn client(a: &Args) -> Client {
    let creds = aws_credential_types::Credentials::new(
        a.access_key.clone(),
        a.secret_key.clone(),
        None,
        None,
        "kms-loadgen",
    );
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(a.region.clone()))
        .endpoint_url(a.endpoint.clone())
        .credentials_provider(creds)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(conf)
}

async fn one(c: &Client, op: &str, key: &str, ct: &Blob) -> Result<(), Error> {
    match op {
        "Encrypt" => {
            c.encrypt()
                .key_id(key)
                .plaintext(Blob::new(vec![7u8; 32]))
                .encryption_context("bench", "1")
                .send()
                .await?;
        }
        "Decrypt" => {
            c.decrypt()
                .ciphertext_blob(ct.clone())
                .encryption_context("bench", "1")
                .send()
                .await?;
        }
        "GenerateDataKey" => {
            c.generate_data_key()
                .key_id(key)
                .key_spec(DataKeySpec::Aes256)
                .encryption_context("bench", "1")
                .send()
                .await?;
        }
        _ => return Err(format!("unknown op {op}").into()),
    }
    Ok(())
}

async fn run(a: Args) -> Result<(), Error> {
    let setup = client(&a);
    let ct = setup
        .encrypt()
        .key_id(&a.key_id)
        .plaintext(Blob::new(vec![7u8; 32]))
        .encryption_context("bench", "1")
        .send()
        .await?
        .ciphertext_blob
        .ok_or("no ciphertext")?;
    let clients: Vec<Client> = (0..a.concurrency).map(|_| client(&a)).collect();
    for c in &clients {
        for _ in 0..a.warmup {
            one(c, &a.op, &a.key_id, &ct).await?;
        }
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.duration);
    let mut tasks = Vec::new();
    for c in clients {
        let (op, key, ct) = (a.op.clone(), a.key_id.clone(), ct.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u64> = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                match one(&c, &op, &key, &ct).await {
                    Ok(()) => lat.push(t.elapsed().as_nanos() as u64),
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("kms-loadgen: {op}: {e:?}");
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    report(&a, tasks, start).await
}

type Task = tokio::task::JoinHandle<(Vec<u64>, u64)>;

/// Wait for the tasks, print the JSON line.
async fn report(a: &Args, tasks: Vec<Task>, start: Instant) -> Result<(), Error> {
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        lat.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1e6
    };
    let mean = if lat.is_empty() {
        0.0
    } else {
        lat.iter().sum::<u64>() as f64 / lat.len() as f64 / 1e6
    };
    let connections = match a.client.as_str() {
        "raw" => format!(
            ",\"connections\":{}",
            raw::CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed)
        ),
        _ => String::new(),
    };
    println!(
        "{{\"op\":\"{}\",\"concurrency\":{},\"requests\":{},\"errors\":{},\"seconds\":{:.3},\"throughput\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"mean_ms\":{:.3}{}}}",
        a.op,
        a.concurrency,
        lat.len(),
        errors,
        secs,
        lat.len() as f64 / secs,
        pct(0.50),
        pct(0.99),
        mean,
        connections
    );
    Ok(())
}

/// The raw client: one connection per task, one request in flight on each.
async fn run_raw(a: Args) -> Result<(), Error> {
    if !matches!(a.op.as_str(), "Encrypt" | "Decrypt" | "GenerateDataKey") {
        return Err(format!("unknown op {}", a.op).into());
    }
    let t = std::sync::Arc::new(raw::Target::new(
        &a.endpoint,
        &a.access_key,
        &a.secret_key,
        &a.region,
        &a.key_id,
    )?);
    let mut setup = raw::Conn::open(&t).await?;
    let ct = setup
        .call(&t, "Encrypt", &raw::input(&t, "Encrypt", ""))
        .await?;
    let ct = ct["CiphertextBlob"]
        .as_str()
        .ok_or("no ciphertext")?
        .to_string();
    let input = raw::input(&t, &a.op, &ct);
    let mut conns = Vec::new();
    for _ in 0..a.concurrency {
        let mut c = raw::Conn::open(&t).await?;
        for _ in 0..a.warmup {
            c.call(&t, &a.op, &input).await?;
        }
        conns.push(c);
    }
    // Count only the connections opened while measuring.
    raw::CONNECTIONS.store(0, std::sync::atomic::Ordering::Relaxed);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.duration);
    let mut tasks = Vec::new();
    for mut c in conns {
        let (t, op, input) = (t.clone(), a.op.clone(), input.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u64> = Vec::with_capacity(1 << 18);
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let started = Instant::now();
                match c.call(&t, &op, &input).await {
                    Ok(_) => lat.push(started.elapsed().as_nanos() as u64),
                    Err(e) => {
                        errors += 1;
                        if errors == 1 {
                            eprintln!("kms-loadgen: {op}: {e}");
                        }
                        // The connection may be gone: open a new one (counted in the next call's time).
                        match raw::Conn::open(&t).await {
                            Ok(fresh) => c = fresh,
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    report(&a, tasks, start).await
}

fn main() -> Result<(), Error> {
    let a = parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .enable_all()
        .build()?;
    if a.client == "raw" {
        rt.block_on(run_raw(a))
    } else {
        rt.block_on(run(a))
    }
}
