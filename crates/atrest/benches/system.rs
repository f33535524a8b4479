//! Whole-system benchmarks (BENCHMARKS.md): the real `atrest` binary with its embedded AWS on
//! loopback, driven through its APIs by the test harness's clients (tests/common). Sections, each
//! printing a table and adding to bench/results/system.json:
//!
//! * `startup`: time from spawn to `GET /readyz` 200, resident memory at idle and under load;
//! * `data_api`: data API inserts and point reads, a customer-key cluster vs a service-key one;
//! * `kms_calls`: KMS calls per 1,000,000 document writes after open, and per key validity check;
//! * `rotation`: master-key rotation and CMK change on clusters of 10 MB, 100 MB and 1 GB, next
//!   to a full re-encryption of the same data and one KMS round trip;
//! * `revocation`: time from the key disabled in KMS to the first refused read;
//! * `admin_api`: requests/s and p50/p99 of `GET encryptionAtRest`, `GET privateEndpoints` (100
//!   endpoints across projects) and `POST clusters`, with Digest and with bearer tokens of an
//!   org-owner service account.
//!
//! `cargo bench -p atrest --bench system [-- SECTION...]` is the full run (release binary);
//! `cargo test -p atrest --bench system` the quick one (debug binary, tiny sizes, nothing
//! asserted about speed).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "report/mod.rs"]
mod report;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cluster_body, Client, Server, V2024};
use report::{count, median, ms, percentile, Mode, Table};
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Samples a process's resident memory every 50 ms until dropped; keeps the peak.
struct RssPeak {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssPeak {
    fn watch(pid: u32) -> RssPeak {
        let (peak, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                p.fetch_max(rss_kib(pid), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssPeak { peak, stop }
    }
    fn kib(&self) -> u64 {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for RssPeak {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// Starts a server and waits for `/readyz`; returns it and the time from spawn to ready.
async fn start(extra: &[&str]) -> (Server, Duration) {
    let t0 = Instant::now();
    let s = Server::start_with(extra);
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", s.url)).send().await {
            if r.status() == StatusCode::OK {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (s, t0.elapsed())
}

/// KMS requests the embedded AWS has served, by operation.
async fn kms_calls(s: &Server) -> Map<String, Value> {
    let mut out = Map::new();
    for e in s.admin(Method::GET, "requests", None).await["requests"].as_array().cloned().unwrap_or_default() {
        if e["service"] == "kms" || e["service"] == "sts" {
            let key = format!("{}:{}", e["service"].as_str().unwrap_or(""), e["operation"].as_str().unwrap_or(""));
            let n = out.get(&key).and_then(Value::as_u64).unwrap_or(0) + e["count"].as_u64().unwrap_or(0);
            out.insert(key, json!(n));
        }
    }
    out
}

fn calls_between(before: &Map<String, Value>, after: &Map<String, Value>) -> Map<String, Value> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v.as_u64().unwrap_or(0) - before.get(k).and_then(Value::as_u64).unwrap_or(0);
            (d > 0).then(|| (k.clone(), json!(d)))
        })
        .collect()
}

fn total(m: &Map<String, Value>, service: &str) -> u64 {
    m.iter().filter(|(k, _)| k.starts_with(service)).filter_map(|(_, v)| v.as_u64()).sum()
}

fn describe(m: &Map<String, Value>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

fn docs(n: usize, start: usize, pad: &str) -> Vec<Value> {
    (start..start + n).map(|i| json!({"k": i, "pad": pad})).collect()
}

/// Inserts `n` documents of ~1 KB in batches of 1,000 through the data API.
async fn fill(c: &Client, g: &str, cluster: &str, db: &str, n: usize) {
    let pad = "p".repeat(1000);
    for start in (0..n).step_by(1000) {
        let body = json!({"database": db, "collection": "d", "documents": docs(1000.min(n - start), start, &pad)});
        let r = c.data(g, cluster, "insertMany", &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
}

async fn cluster_state(c: &Client, g: &str, name: &str) -> Value {
    c.clone().with_accept(V2024).get(&format!("/api/atlas/v2/groups/{g}/clusters/{name}")).await.json()
}

async fn wait_idle(c: &Client, g: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    while cluster_state(c, g, name).await["stateName"] != "IDLE" {
        assert!(Instant::now() < deadline, "cluster {name} never became IDLE");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bytes of a cluster's database files.
fn cluster_bytes(s: &Server, cluster_id: &str) -> u64 {
    std::fs::read_dir(s.dir.join("clusters").join(cluster_id).join("db"))
        .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

struct Load {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn json(&self) -> Value {
        json!({"requests": self.requests, "errors": self.errors, "seconds": self.elapsed.as_secs_f64(),
               "requestsPerSecond": self.rps(), "p50Ms": percentile(&self.latencies, 50.0).as_secs_f64() * 1e3,
               "p99Ms": percentile(&self.latencies, 99.0).as_secs_f64() * 1e3})
    }
}

/// `tasks` clients each calling `call(task, i)` in a loop for `dur` (at least once), `cap`
/// calls at most in all; `call` says whether the answer was the expected one.
async fn load<F, Fut>(tasks: usize, dur: Duration, cap: u64, call: F) -> Load
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let (call, issued) = (call.clone(), issued.clone());
        set.spawn(async move {
            let (mut lat, mut errors, mut i) = (vec![], 0, 0u64);
            while (i == 0 || start.elapsed() < dur) && issued.fetch_add(1, Ordering::SeqCst) < cap {
                let t0 = Instant::now();
                if !call(t, i).await {
                    errors += 1;
                }
                lat.push(t0.elapsed());
                i += 1;
            }
            (lat, errors)
        });
    }
    let mut out = Load { requests: 0, errors: 0, elapsed: Duration::ZERO, latencies: vec![] };
    while let Some(r) = set.join_next().await {
        let (lat, errors) = r.expect("load task");
        out.requests += lat.len() as u64;
        out.errors += errors;
        out.latencies.extend(lat);
    }
    out.elapsed = start.elapsed();
    out.latencies.sort();
    out
}

struct Run {
    mode: Mode,
    results: Map<String, Value>,
    startups: Vec<Duration>,
    rss_idle: Vec<u64>,
    rss_load: Vec<(String, u64)>,
}

impl Run {
    async fn server(&mut self, extra: &[&str]) -> Server {
        let (s, took) = start(extra).await;
        self.startups.push(took);
        s
    }

    // ----- data API -------------------------------------------------------------------------

    async fn data_api(&mut self) {
        let s = self.server(&["--key-check-interval", "1h", "--reconcile-interval", "200ms"]).await;
        let c = s.client();
        let g = s.enable_cmk("data-api").await.g;
        let clusters = [("with-cmk", "AWS"), ("service-key", "NONE")];
        for (cluster, provider) in clusters {
            c.create_cluster(&g, &cluster_body(cluster, "M10", provider, &["US_EAST_1"])).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.rss_idle.push(rss_kib(s.child.id()));
        let peak = RssPeak::watch(s.child.id());
        // An even number of rounds: each cluster goes first in half of them. The first cell of a
        // round runs while the disk still writes back the previous cell's pages, so with an odd
        // count the cluster that went first more often looked slower.
        let (rounds, batches, reads) = self.mode.pick((4, 10, 400), (2, 1, 10));
        let pad = "p".repeat(900);
        let mut rows: Vec<(String, usize, [Vec<f64>; 2])> = vec![];
        for (what, tasks) in [("insertMany (500 docs/request)", 1), ("insertMany (500 docs/request)", 8)]
            .into_iter()
            .chain([("findOne by _id", 1), ("findOne by _id", 8)])
        {
            let mut per = [vec![], vec![]];
            for round in 0..rounds {
                // Alternate which cluster goes first, so that neither always follows the other.
                for k in 0..clusters.len() {
                    let ci = (k + round) % clusters.len();
                    let cluster = clusters[ci].0;
                    let (c, g, pad) = (c.clone(), g.clone(), pad.clone());
                    let cluster = cluster.to_string();
                    let insert = what.starts_with("insert");
                    let per_task = if insert { batches } else { reads } as u64;
                    let t0 = Instant::now();
                    let mut set = tokio::task::JoinSet::new();
                    for t in 0..tasks {
                        let (c, g, cluster, pad) = (c.clone(), g.clone(), cluster.clone(), pad.clone());
                        set.spawn(async move {
                            for i in 0..per_task {
                                let r = if insert {
                                    let docs: Vec<Value> = (0..500)
                                        .map(|j| json!({"_id": format!("{round}-{tasks}-{t}-{i}-{j}"), "pad": pad}))
                                        .collect();
                                    let body = json!({"database": "b", "collection": "d", "documents": docs});
                                    c.data(&g, &cluster, "insertMany", &body).await
                                } else {
                                    let k = format!("{round}-1-0-{}-{}", i % batches as u64, i % 500);
                                    let body = json!({"database": "b", "collection": "d", "filter": {"_id": k}});
                                    c.data(&g, &cluster, "findOne", &body).await
                                };
                                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
                                if !insert {
                                    assert!(r.json()["document"].is_object(), "{}", r.text);
                                }
                            }
                        });
                    }
                    while let Some(r) = set.join_next().await {
                        r.expect("client task");
                    }
                    let n = tasks as u64 * per_task * if insert { 500 } else { 1 };
                    per[ci].push(n as f64 / t0.elapsed().as_secs_f64());
                }
            }
            rows.push((what.into(), tasks, per));
        }
        self.rss_load.push(("data API load".into(), peak.kib()));
        let mut table = Table::new(
            "Data API: customer-key cluster vs service-key cluster (docs/s, median of rounds)",
            &["operation", "clients", "with customer keys", "service key", "ratio"],
        );
        let mut out = vec![];
        for (what, tasks, per) in &rows {
            let ratio = median(&per[0].iter().zip(&per[1]).map(|(a, b)| a / b).collect::<Vec<_>>());
            table.row(vec![
                what.clone(),
                tasks.to_string(),
                count(median(&per[0])),
                count(median(&per[1])),
                format!("{ratio:.2}"),
            ]);
            out.push(json!({"operation": what, "clients": tasks, "customerKeys": per[0], "serviceKey": per[1], "ratio": ratio}));
        }
        table.print();
        self.results.insert("dataApi".into(), json!(out));
    }

    // ----- KMS calls --------------------------------------------------------------------------

    async fn kms_calls(&mut self) {
        // Document writes on a server whose periodic checks are an hour apart, so that every
        // KMS call counted during the writes would be the writes' own.
        let s = self.server(&["--key-check-interval", "1h", "--reconcile-interval", "200ms"]).await;
        let c = s.client();
        let g = s.enable_cmk("kms-calls").await.g;
        c.create_cluster(&g, &cluster_body("counted", "M10", "AWS", &["US_EAST_1"])).await;
        let writes: usize = self.mode.pick(1_000_000, 2_000);
        // Small documents, 1,000 per request, in two databases.
        let before = kms_calls(&s).await;
        let t0 = Instant::now();
        for start in (0..writes).step_by(1000) {
            let docs: Vec<Value> = (start..start + 1000).map(|i| json!({"n": i})).collect();
            let db = if start % 2000 == 0 { "a" } else { "b" };
            let body = json!({"database": db, "collection": "c", "documents": docs});
            let r = c.data(&g, "counted", "insertMany", &body).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
        let write_secs = t0.elapsed().as_secs_f64();
        let during_writes = calls_between(&before, &kms_calls(&s).await);
        // One on-demand check: GET encryptionAtRest re-checks the key.
        let before = kms_calls(&s).await;
        let r = c.get(&format!("/api/atlas/v2/groups/{g}/encryptionAtRest")).await;
        assert_eq!(r.json()["awsKms"]["valid"], true, "{}", r.text);
        let on_demand = calls_between(&before, &kms_calls(&s).await);
        drop(s);
        // Periodic checks: a server checking every `interval`, one project with one cluster.
        let (interval, interval_d) = self.mode.pick(("2s", Duration::from_secs(2)), ("1s", Duration::from_secs(1)));
        let s = self.server(&["--key-check-interval", interval, "--reconcile-interval", "200ms"]).await;
        let c = s.client();
        let g = s.enable_cmk("kms-checks").await.g;
        c.create_cluster(&g, &cluster_body("checked", "M10", "AWS", &["US_EAST_1"])).await;
        let checks_window = self.mode.pick(10u32, 2);
        let before = kms_calls(&s).await;
        tokio::time::sleep(interval_d * checks_window).await;
        let periodic = calls_between(&before, &kms_calls(&s).await);
        let per_million = total(&during_writes, "kms") as f64 * 1e6 / writes as f64;
        let mut table = Table::new("KMS calls", &["what", "KMS calls", "STS calls", "by operation", "target"]);
        table.row(vec![
            format!("{} document writes after open ({:.0} docs/s)", count(writes as f64), writes as f64 / write_secs),
            format!("{} ({per_million:.0} per 1,000,000)", total(&during_writes, "kms")),
            total(&during_writes, "sts").to_string(),
            describe(&during_writes),
            format!("0: {}", if per_million == 0.0 { "met" } else { "missed" }),
        ]);
        table.row(vec![
            "one on-demand validity check (GET encryptionAtRest)".into(),
            total(&on_demand, "kms").to_string(),
            total(&on_demand, "sts").to_string(),
            describe(&on_demand),
            "-".into(),
        ]);
        table.row(vec![
            format!("periodic checks, {checks_window} intervals of {interval} (1 project, 1 cluster)"),
            format!(
                "{} ({:.1} per interval)",
                total(&periodic, "kms"),
                total(&periodic, "kms") as f64 / checks_window as f64
            ),
            total(&periodic, "sts").to_string(),
            describe(&periodic),
            "-".into(),
        ]);
        table.print();
        self.results.insert(
            "kmsCalls".into(),
            json!({"documentWrites": writes, "duringWrites": during_writes, "perMillionWrites": per_million,
                   "onDemandCheck": on_demand, "periodic": {"intervals": checks_window, "interval": interval, "calls": periodic}}),
        );
    }

    // ----- rotation ---------------------------------------------------------------------------

    async fn rotation(&mut self) {
        let s = self.server(&["--key-check-interval", "1h", "--reconcile-interval", "100ms"]).await;
        let c = s.client();
        let customer = s.customer();
        // One KMS round trip, as the SDK sees it on loopback.
        let (_, probe_key) = customer.create_key().await;
        let mut rtt = vec![];
        for _ in 0..20 {
            let t0 = Instant::now();
            customer.kms.encrypt().key_id(&probe_key).plaintext(vec![7u8; 32].into()).send().await.expect("encrypt");
            rtt.push(t0.elapsed());
        }
        rtt.sort();
        let kms_rtt = percentile(&rtt, 50.0);
        let sizes: Vec<(&str, usize)> =
            self.mode.pick(vec![("10 MB", 10_000), ("100 MB", 100_000), ("1 GB", 1_000_000)], vec![("1 MB", 1_000)]);
        let repeats = self.mode.pick(3, 1);
        let mut table = Table::new(
            &format!("Rotation cost vs data size (one KMS round trip: {} ms)", ms(kms_rtt)),
            &[
                "data (1 KB docs)",
                "on disk MB",
                "fill through the data API s",
                "master-key rotation ms",
                "CMK change ms",
                "full re-encryption s",
                "target: rotation and CMK change < 100 ms + 1 KMS round trip",
            ],
        );
        let mut out = vec![];
        for (i, (label, n)) in sizes.iter().enumerate() {
            let cmk = s.enable_cmk(&format!("rotation-{i}")).await;
            let g = cmk.g.as_str();
            let (key2, key2_arn) = customer.create_key().await;
            customer.allow_keys(&cmk.role_name, &[&cmk.key_arn, &key2_arn]).await;
            let name = format!("size-{i}");
            let created = c.create_cluster(g, &cluster_body(&name, "M10", "AWS", &["US_EAST_1"])).await.json();
            let id = created["id"].as_str().expect("cluster id").to_owned();
            let t0 = Instant::now();
            fill(&c, g, &name, "data", *n).await;
            let fill_secs = t0.elapsed().as_secs_f64();
            let bytes = cluster_bytes(&s, &id);
            let plain = c.clone().with_accept("application/json");
            let mut rotations = vec![];
            for _ in 0..repeats {
                let t0 = Instant::now();
                let r =
                    plain.post(&format!("/api/atrest/v1/groups/{g}/clusters/{name}/rotateMasterKey"), &json!({})).await;
                rotations.push(t0.elapsed());
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            }
            let mut changes = vec![];
            for k in 0..repeats.max(2) {
                let to = if k % 2 == 0 { &key2 } else { &cmk.key_id };
                let t0 = Instant::now();
                let r = c
                    .patch(
                        &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
                        &json!({"awsKms": {"customerMasterKeyID": to}}),
                    )
                    .await;
                changes.push(t0.elapsed());
                assert_eq!(r.json()["awsKms"]["valid"], true, "{}", r.text);
            }
            let t0 = Instant::now();
            let r = c
                .clone()
                .with_accept(V2024)
                .patch(
                    &format!("/api/atlas/v2/groups/{g}/clusters/{name}"),
                    &json!({"encryptionAtRestProvider": "NONE"}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            wait_idle(&c, g, &name).await;
            let reencrypt = t0.elapsed();
            let check = json!({"database": "data", "collection": "d", "filter": {"k": n - 1}});
            assert!(c.data(g, &name, "findOne", &check).await.json()["document"].is_object());
            rotations.sort();
            changes.sort();
            let (rot, chg) = (percentile(&rotations, 50.0), percentile(&changes, 50.0));
            let limit = Duration::from_millis(100) + kms_rtt;
            table.row(vec![
                label.to_string(),
                format!("{:.0}", bytes as f64 / 1e6),
                format!("{fill_secs:.1}"),
                ms(rot),
                ms(chg),
                format!("{:.2}", reencrypt.as_secs_f64()),
                if rot < limit && chg < limit { "met" } else { "missed" }.into(),
            ]);
            out.push(json!({"label": label, "documents": n, "bytesOnDisk": bytes, "fillSeconds": fill_secs,
                "rotationMs": rotations.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>(),
                "cmkChangeMs": changes.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>(),
                "reencryptionSeconds": reencrypt.as_secs_f64()}));
            let r = c.clone().with_accept(V2024).delete(&format!("/api/atlas/v2/groups/{g}/clusters/{name}")).await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        }
        table.print();
        self.results.insert("rotation".into(), json!({"kmsRoundTripMs": kms_rtt.as_secs_f64() * 1e3, "sizes": out}));
    }

    // ----- revocation -------------------------------------------------------------------------

    async fn revocation(&mut self) {
        let (interval, secs) = self.mode.pick(("5s", 5.0), ("1s", 1.0));
        let s = self.server(&["--key-check-interval", interval, "--reconcile-interval", "200ms"]).await;
        let c = s.client();
        let cmk = s.enable_cmk("revocation").await;
        let g = cmk.g.as_str();
        c.create_cluster(g, &cluster_body("revoked", "M10", "AWS", &["US_EAST_1"])).await;
        let r =
            c.data(g, "revoked", "insertOne", &json!({"database": "b", "collection": "d", "document": {"n": 1}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let customer = s.customer();
        let read = json!({"database": "b", "collection": "d", "filter": {"n": 1}});
        let trials = self.mode.pick(6, 1);
        let mut latencies = vec![];
        for trial in 0..trials {
            // Disable at a different phase of the check cycle each time.
            tokio::time::sleep(Duration::from_secs_f64(secs * trial as f64 / trials as f64)).await;
            customer.disable_key(&cmk.key_arn).await;
            let t0 = Instant::now();
            loop {
                let r = c.data(g, "revoked", "findOne", &read).await;
                if r.status == StatusCode::SERVICE_UNAVAILABLE {
                    break;
                }
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
                assert!(t0.elapsed() < Duration::from_secs_f64(secs * 10.0), "reads never refused");
            }
            latencies.push(t0.elapsed());
            customer.enable_key(&cmk.key_arn).await;
            let t1 = Instant::now();
            while c.data(g, "revoked", "findOne", &read).await.status != StatusCode::OK {
                assert!(t1.elapsed() < Duration::from_secs_f64(secs * 10.0), "reads never served again");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut sorted = latencies.clone();
        sorted.sort();
        let worst = *sorted.last().unwrap_or(&Duration::ZERO);
        let mut table = Table::new(
            "Revocation latency: key disabled in KMS to the first refused read",
            &["check interval", "trials", "median s", "max s", "target: ≤ one interval"],
        );
        table.row(vec![
            interval.into(),
            trials.to_string(),
            format!("{:.2}", percentile(&sorted, 50.0).as_secs_f64()),
            format!("{:.2}", worst.as_secs_f64()),
            if worst.as_secs_f64() <= secs { "met" } else { "missed" }.into(),
        ]);
        table.print();
        self.results.insert(
            "revocation".into(),
            json!({"intervalSeconds": secs, "latencySeconds": latencies.iter().map(Duration::as_secs_f64).collect::<Vec<_>>()}),
        );
    }

    // ----- admin API --------------------------------------------------------------------------

    async fn admin_api(&mut self) {
        let s = self
            .server(&["--key-check-interval", "1h", "--reconcile-interval", "200ms", "--aws-endpoint-ready", "100ms"])
            .await;
        let c = s.client();
        let (projects, regions) = self.mode.pick((10, 10), (2, 2));
        let region_names: Vec<&str> = atrest_core::regions::AWS_REGIONS
            .iter()
            .copied()
            .filter(|r| !r.starts_with("US_GOV") && !r.starts_with("CN_") && *r != "GLOBAL")
            .take(regions)
            .collect();
        let mut groups = vec![];
        for p in 0..projects {
            let g = s.enable_cmk(&format!("admin-{p}")).await.g;
            let ear = format!("/api/atlas/v2/groups/{g}/encryptionAtRest");
            let r = c.patch(&ear, &json!({"awsKms": {"requirePrivateNetworking": true}})).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            for region in &region_names {
                let r = c.post(&format!("{ear}/AWS/privateEndpoints"), &json!({"regionName": region})).await;
                assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
            }
            groups.push(g);
        }
        // Wait until every endpoint is ACTIVE, so the reconciler is quiet during the load.
        for g in &groups {
            let path = format!("/api/atlas/v2/groups/{g}/encryptionAtRest/AWS/privateEndpoints");
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let r = c.get(&path).await.json();
                let all = r["results"].as_array().cloned().unwrap_or_default();
                if all.len() == regions && all.iter().all(|e| e["status"] == "ACTIVE") {
                    break;
                }
                assert!(Instant::now() < deadline, "endpoints never ACTIVE: {r}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // POST clusters creates clusters, at most 25 per project: projects of their own, enough
        // for every POST cell (2 client counts x 2 auth modes), each cell capped to its share.
        let mut post_groups = vec![];
        for p in 0..self.mode.pick(20, 2) {
            post_groups.push(s.enable_cmk(&format!("clusters-{p}")).await.g);
        }
        let post_cap = (post_groups.len() * atrest_core::clusters::MAX_CLUSTERS_PER_PROJECT / 4) as u64;
        // Bearer tokens: an org-owner service account made through the API, as an Atlas user would.
        let org = s.org_id();
        let r = c
            .clone()
            .with_accept(V2024)
            .post(
                &format!("/api/atlas/v2/orgs/{org}/serviceAccounts"),
                &json!({"name": "bench", "description": "admin API load", "roles": ["ORG_OWNER"],
                        "secretExpiresAfterHours": 24}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let sa = r.json();
        let (id, secret) = (sa["clientId"].as_str().unwrap(), sa["secrets"][0]["secret"].as_str().unwrap());
        let bearer = Client::with_service_account(&s.url, id, secret).await.expect("bearer token");
        let dur = self.mode.pick(Duration::from_secs(5), Duration::from_millis(200));
        let peak = RssPeak::watch(s.child.id());
        let (groups, post_groups) = (Arc::new(groups), Arc::new(post_groups));
        let seq = Arc::new(AtomicU64::new(0));
        let mut table = Table::new(
            &format!(
                "Admin API on loopback ({projects} projects, {} private endpoints; {} s per cell, POST clusters at most {post_cap} per cell)",
                projects * regions,
                dur.as_secs_f64()
            ),
            &["request", "clients", "Digest req/s", "Digest p50 / p99 ms", "bearer req/s", "bearer p50 / p99 ms"],
        );
        let mut out = vec![];
        for (what, expect) in [
            ("GET encryptionAtRest", StatusCode::OK),
            ("GET privateEndpoints", StatusCode::OK),
            ("POST clusters", StatusCode::CREATED),
        ] {
            for tasks in [1usize, 8] {
                let mut cells = vec![];
                for client in [c.clone(), bearer.clone()] {
                    let (groups, post_groups, seq) = (groups.clone(), post_groups.clone(), seq.clone());
                    let cap = if what.starts_with("POST") { post_cap } else { u64::MAX };
                    let l = load(tasks, dur, cap, move |t, i| {
                        let (client, groups, post_groups, seq) =
                            (client.clone(), groups.clone(), post_groups.clone(), seq.clone());
                        async move {
                            let g = &groups[(t + i as usize) % groups.len()];
                            let r = match what {
                                "GET encryptionAtRest" => {
                                    client.get(&format!("/api/atlas/v2/groups/{g}/encryptionAtRest")).await
                                }
                                "GET privateEndpoints" => {
                                    client
                                        .get(&format!("/api/atlas/v2/groups/{g}/encryptionAtRest/AWS/privateEndpoints"))
                                        .await
                                }
                                _ => {
                                    let n = seq.fetch_add(1, Ordering::SeqCst) as usize;
                                    let g = &post_groups[n % post_groups.len()];
                                    let name = format!("load-{n}");
                                    let body = cluster_body(&name, "M10", "AWS", &["US_EAST_1"]);
                                    client
                                        .clone()
                                        .with_accept(V2024)
                                        .post(&format!("/api/atlas/v2/groups/{g}/clusters"), &body)
                                        .await
                                }
                            };
                            r.status == expect
                        }
                    })
                    .await;
                    cells.push(l);
                }
                let cell = |l: &Load| {
                    (
                        format!(
                            "{}{}",
                            count(l.rps()),
                            if l.errors > 0 { format!(" ({} errors)", l.errors) } else { String::new() }
                        ),
                        format!("{} / {}", ms(percentile(&l.latencies, 50.0)), ms(percentile(&l.latencies, 99.0))),
                    )
                };
                let (d, b) = (cell(&cells[0]), cell(&cells[1]));
                table.row(vec![what.into(), tasks.to_string(), d.0, d.1, b.0, b.1]);
                out.push(json!({"request": what, "clients": tasks,
                    "digest": cells[0].json(), "bearer": cells[1].json()}));
            }
        }
        self.rss_load.push(("admin API load".into(), peak.kib()));
        table.print();
        println!("Digest: each request is sent unauthenticated, answered 401 with a challenge, then sent again with its answer (as Atlas's Go client does).");
        self.results.insert("adminApi".into(), json!(out));
    }

    // ----- start-up and memory ----------------------------------------------------------------

    async fn startup(&mut self) {
        for _ in 0..self.mode.pick(5, 1) {
            let s = self.server(&[]).await;
            tokio::time::sleep(Duration::from_secs(self.mode.pick(2, 0))).await;
            self.rss_idle.push(rss_kib(s.child.id()));
        }
    }

    fn startup_table(&mut self) {
        let mut sorted = self.startups.clone();
        sorted.sort();
        let mut table = Table::new("Start-up and memory", &["what", "value"]);
        table.row(vec![
            format!("start-up to ready (spawn to GET /readyz 200), {} starts", sorted.len()),
            format!(
                "median {} ms, max {} ms",
                ms(percentile(&sorted, 50.0)),
                ms(*sorted.last().unwrap_or(&Duration::ZERO))
            ),
        ]);
        let idle: Vec<f64> = self.rss_idle.iter().map(|&k| k as f64).collect();
        table.row(vec!["resident memory at idle".into(), format!("{} MiB (median)", mib(median(&idle) as u64))]);
        for (what, kib) in &self.rss_load {
            table.row(vec![format!("resident memory, peak under {what}"), format!("{} MiB", mib(*kib))]);
        }
        table.print();
        self.results.insert(
            "startup".into(),
            json!({"readyMs": self.startups.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>(),
                   "rssIdleKiB": self.rss_idle, "rssPeakKiB": self.rss_load.iter().map(|(w, k)| json!({"under": w, "kib": k})).collect::<Vec<_>>()}),
        );
    }
}

#[tokio::main]
async fn main() {
    let mode = Mode::from_args();
    let mut run = Run { mode, results: Map::new(), startups: vec![], rss_idle: vec![], rss_load: vec![] };
    println!("atrest system benchmarks, {} mode, binary {}", run.mode.name(), env!("CARGO_BIN_EXE_atrest"));
    if run.mode.wants("startup") {
        run.startup().await;
    }
    if run.mode.wants("data_api") {
        run.data_api().await;
    }
    if run.mode.wants("kms_calls") {
        run.kms_calls().await;
    }
    if run.mode.wants("rotation") {
        run.rotation().await;
    }
    if run.mode.wants("revocation") {
        run.revocation().await;
    }
    if run.mode.wants("admin_api") {
        run.admin_api().await;
    }
    run.startup_table();
    report::write_results(&run.mode, "system", Value::Object(run.results));
}
