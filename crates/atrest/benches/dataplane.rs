//! Data plane throughput (BENCHMARKS.md, "Data plane: customer keys vs encryption off"):
//! inserts and point reads of ~1 KB documents with 1 and 8 client threads (reads over a
//! collection half the size of each database's 64 MiB page cache, warmed), side by side in one
//! run, for
//!
//! * a cluster with customer keys: the whole `DataPlane` path (keyring, database key, SQLCipher
//!   page cipher), its master key wrapped by a counting wrapper that stands for KMS;
//! * the same storage code with only SQLCipher (no cluster), to split the cost;
//! * the same storage code with encryption off (`atrest_dataplane::baseline`, a benchmark-only
//!   entry point: never a product option).
//!
//! Cells are interleaved (round by round, variant order rotated) and each ratio is the median of
//! the per-round ratios, so load from other processes hits all variants alike.
//!
//! `cargo bench -p atrest --bench dataplane` (release, 5 rounds of 2 s cells);
//! `cargo test -p atrest --bench dataplane` runs the quick mode (debug, tiny, asserts nothing
//! about speed). Writes bench/results/dataplane.json (quick: <target>/bench-quick/).

#[path = "report/mod.rs"]
mod report;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atrest_dataplane::baseline::Storage;
use atrest_dataplane::{CountingWrapper, DataPlane, Key32, ServiceKeyWrapper};
use report::{count, median, Mode, Table};
use serde_json::{json, Value};

const DB: &str = "bench";
const COLL: &str = "docs";

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    CustomerKeys,
    SqlcipherOnly,
    Off,
}

const VARIANTS: [Variant; 3] = [Variant::CustomerKeys, Variant::SqlcipherOnly, Variant::Off];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::CustomerKeys => "customer keys",
            Variant::SqlcipherOnly => "SQLCipher only",
            Variant::Off => "encryption off",
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    /// One document per transaction (each commit is an fsync: `synchronous=FULL`).
    Insert,
    /// 100 documents per transaction (`insertMany`).
    InsertBatch,
    /// `findOne` by `_id`, random ids over a preloaded collection.
    PointRead,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Insert => "insert, 1 doc/transaction",
            Op::InsertBatch => "insert, 100 docs/transaction",
            Op::PointRead => "point read by _id (collection in the page cache)",
        }
    }
    fn docs_per_op(self) -> u64 {
        match self {
            Op::InsertBatch => 100,
            _ => 1,
        }
    }
}

struct Bench {
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
    plane: DataPlane,
    wrapper: Arc<CountingWrapper>,
    next: AtomicU64,
    pad: String,
}

/// Where documents go: a cluster of the data plane, or one database of the bare storage.
enum Target {
    Cluster(String),
    Storage(Storage, PathBuf),
}

impl Bench {
    fn new(dir: &Path) -> Bench {
        let plane = DataPlane::new(dir.join("clusters"));
        let wrapper = Arc::new(CountingWrapper::new(Arc::new(ServiceKeyWrapper::new(Key32::random(), "bench-cmk"))));
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        Bench { rt, dir: dir.to_owned(), plane, wrapper, next: AtomicU64::new(0), pad: "p".repeat(1000) }
    }

    fn target(&self, variant: Variant) -> Target {
        let name = format!("t{}", self.next.fetch_add(1, Ordering::SeqCst));
        match variant {
            Variant::CustomerKeys => {
                self.rt.block_on(self.plane.create_cluster(&name, &["US_EAST_1"], &*self.wrapper)).expect("cluster");
                Target::Cluster(name)
            }
            Variant::SqlcipherOnly | Variant::Off => {
                let path = self.dir.join(format!("{name}.sqlite3"));
                let key = Key32::random();
                let page_key = (variant == Variant::SqlcipherOnly).then_some(&key);
                Target::Storage(Storage::open(&path, page_key).expect("open"), path)
            }
        }
    }

    fn drop_target(&self, t: Target) {
        match t {
            Target::Cluster(name) => self.rt.block_on(self.plane.destroy_cluster(&name)).expect("destroy"),
            Target::Storage(s, path) => {
                drop(s);
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }

    fn doc(&self, id: Option<u64>) -> Value {
        match id {
            Some(id) => json!({"_id": id, "sku": format!("sku-{id}"), "qty": id % 7, "pad": self.pad}),
            None => json!({"sku": "sku", "qty": 3, "pad": self.pad}),
        }
    }

    fn insert(&self, t: &Target, docs: Vec<Value>) {
        match t {
            Target::Cluster(c) => self.plane.insert_many(c, DB, COLL, Value::Array(docs)).map(drop),
            Target::Storage(s, _) => s.insert_many(COLL, docs).map(drop),
        }
        .expect("insert")
    }

    fn find(&self, t: &Target, id: u64) -> Option<Value> {
        let filter = json!({"_id": id});
        match t {
            Target::Cluster(c) => self.plane.find_one(c, DB, COLL, &filter),
            Target::Storage(s, _) => s.find_one(COLL, &filter),
        }
        .expect("find")
    }

    /// Runs `op` on `threads` threads for `dur`; documents per second.
    fn cell(&self, t: &Target, op: Op, threads: usize, dur: Duration, fixture_docs: u64) -> f64 {
        let ops = AtomicU64::new(0);
        let start = Instant::now();
        std::thread::scope(|s| {
            for thread in 0..threads {
                let ops = &ops;
                s.spawn(move || {
                    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (thread as u64 + 1);
                    let mut n = 0;
                    // At least one operation, so that the quick mode always exercises each path.
                    while n == 0 || start.elapsed() < dur {
                        match op {
                            Op::Insert => self.insert(t, vec![self.doc(None)]),
                            Op::InsertBatch => self.insert(t, (0..100).map(|_| self.doc(None)).collect()),
                            Op::PointRead => {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                let doc = self.find(t, x % fixture_docs);
                                assert!(doc.is_some(), "every preloaded document is found");
                            }
                        }
                        n += 1;
                    }
                    ops.fetch_add(n, Ordering::SeqCst);
                });
            }
        });
        (ops.load(Ordering::SeqCst) * op.docs_per_op()) as f64 / start.elapsed().as_secs_f64()
    }
}

fn main() {
    let mode = Mode::from_args();
    let rounds = mode.pick(5, 1);
    let dur = mode.pick(Duration::from_secs(2), Duration::from_millis(20));
    // Half the 64 MiB page cache of each database (the size on disk is printed below). Reads that
    // miss the cache cost what the crypto benchmark's page_cipher_full_read measures per page.
    let small_docs: u64 = mode.pick(20_000, 300);
    let tmp = tempfile::tempdir().expect("tempdir");
    let b = Bench::new(tmp.path());

    // The point-read fixtures, one per variant and size, loaded once.
    let fixture = |v: Variant, n: u64| {
        let t = b.target(v);
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            b.insert(&t, chunk.iter().map(|&i| b.doc(Some(i))).collect());
        }
        t
    };
    let fixtures: Vec<Target> = VARIANTS.iter().map(|&v| fixture(v, small_docs)).collect();
    let on_disk = |t: &Target| -> u64 {
        let Target::Storage(_, path) = t else { return 0 };
        ["", "-wal"]
            .iter()
            .map(|suffix| {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
            })
            .sum()
    };
    let fixture_mb = on_disk(&fixtures[1]) as f64 / 1e6;
    println!(
        "point-read collection (SQLCipher only, database + WAL): {small_docs} documents, {fixture_mb:.0} MB; \
         page cache 64 MiB per database"
    );
    let calls_after_open = b.wrapper.calls();
    let mut docs_written: f64 = 0.0;

    let ops = [Op::Insert, Op::InsertBatch, Op::PointRead];
    let threads = [1usize, 8];
    // results[op][threads][variant] = docs/s per round
    let mut results = vec![vec![vec![Vec::new(); VARIANTS.len()]; threads.len()]; ops.len()];
    for round in 0..rounds {
        for (oi, &op) in ops.iter().enumerate() {
            for (ti, &n) in threads.iter().enumerate() {
                for k in 0..VARIANTS.len() {
                    let vi = (k + round) % VARIANTS.len();
                    let rate = match op {
                        Op::PointRead => {
                            // The other databases' pages may have taken its cache (SQLite's page
                            // caches share one LRU in this build): read it whole first, untimed.
                            for id in 0..small_docs {
                                b.find(&fixtures[vi], id);
                            }
                            b.cell(&fixtures[vi], op, n, dur, small_docs)
                        }
                        _ => {
                            let t = b.target(VARIANTS[vi]);
                            let rate = b.cell(&t, op, n, dur, small_docs);
                            b.drop_target(t);
                            if vi == 0 {
                                docs_written += rate * dur.as_secs_f64();
                            }
                            rate
                        }
                    };
                    results[oi][ti][vi].push(rate);
                }
            }
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    let fresh_cluster_calls = b.wrapper.calls() - calls_after_open;

    let mut table = Table::new(
        "Data plane: customer keys vs encryption off (docs/s, median of rounds)",
        &[
            "operation",
            "threads",
            "customer keys",
            "SQLCipher only",
            "encryption off",
            "ratio customer keys / off",
            "ratio SQLCipher only / off",
            "target ≥ 0.90",
        ],
    );
    let mut json_rows = vec![];
    for (oi, op) in ops.iter().enumerate() {
        for (ti, n) in threads.iter().enumerate() {
            let r = &results[oi][ti];
            let per_round = |a: usize| -> Vec<f64> { r[a].iter().zip(&r[2]).map(|(x, off)| x / off).collect() };
            let ratio = median(&per_round(0));
            let ratio_cipher = median(&per_round(1));
            table.row(vec![
                op.name().into(),
                n.to_string(),
                count(median(&r[0])),
                count(median(&r[1])),
                count(median(&r[2])),
                format!("{ratio:.2}"),
                format!("{ratio_cipher:.2}"),
                if ratio >= 0.90 { "met" } else { "missed" }.into(),
            ]);
            json_rows.push(json!({
                "operation": op.name(), "threads": n,
                "docsPerSecondByRound": {
                    "customerKeys": r[0], "sqlcipherOnly": r[1], "encryptionOff": r[2],
                },
                "ratioCustomerKeysToOff": ratio, "ratioSqlcipherOnlyToOff": ratio_cipher,
            }));
        }
    }
    table.print();
    // Each insert cell of the customer-key variant uses a fresh cluster (created, then destroyed):
    // 1 wrap each. Beyond those, the document writes made no wrapper (KMS) call.
    let insert_cells = (rounds * 2 * threads.len()) as u64;
    let per_doc_calls = fresh_cluster_calls.saturating_sub(insert_cells);
    println!(
        "wrapper (KMS) calls during {} document writes to open clusters: {per_doc_calls} \
         (plus 1 per fresh cluster created for a cell: {insert_cells})",
        count(docs_written)
    );
    report::write_results(
        &mode,
        "dataplane",
        json!({
            "variants": VARIANTS.map(Variant::name), "rounds": rounds, "cellSeconds": dur.as_secs_f64(), "pointReadFixtureDocs": small_docs, "pointReadFixtureMegabytes": fixture_mb,
            "documentBytes": b.doc(Some(1)).to_string().len(),
            "rows": json_rows,
            "wrapperCallsDuringDocumentWrites": per_doc_calls, "documentWrites": docs_written.round(),
        }),
    );
}
