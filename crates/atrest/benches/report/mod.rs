//! What the whole-system and data plane benchmarks share: the mode (full under `cargo bench`,
//! quick under `cargo test --benches`), printed tables, the machine, percentiles, and the
//! machine-readable results.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

/// Full under `cargo bench` (which passes `--bench`), quick otherwise: tiny sizes, one round,
/// nothing asserted about speed. Other arguments select sections by substring.
pub struct Mode {
    pub full: bool,
    filters: Vec<String>,
}

impl Mode {
    pub fn from_args() -> Mode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let full = args.iter().any(|a| a == "--bench") && std::env::var_os("ATREST_BENCH_QUICK").is_none();
        // Other `--name` options (libtest's, passed on by cargo) are taken to carry a value.
        let mut filters = vec![];
        let mut skip_value = false;
        for a in args {
            if skip_value {
                skip_value = false;
            } else if a.starts_with("--") {
                skip_value = a != "--bench" && !a.contains('=');
            } else if !a.starts_with('-') {
                filters.push(a);
            }
        }
        Mode { full, filters }
    }

    /// Whether section `name` runs (no filter: all).
    pub fn wants(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }

    /// `full` in a full run, `quick` otherwise.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.full {
            full
        } else {
            quick
        }
    }

    pub fn name(&self) -> &'static str {
        self.pick("full", "quick")
    }
}

/// A table printed as Markdown, so it can go into BENCHMARKS.md as it is.
pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: &str, headers: &[&str]) -> Table {
        Table { title: title.into(), headers: headers.iter().map(|h| h.to_string()).collect(), rows: vec![] }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn print(&self) {
        println!("\n### {}\n", self.title);
        println!("| {} |", self.headers.join(" | "));
        println!("|{}", "---|".repeat(self.headers.len()));
        for r in &self.rows {
            println!("| {} |", r.join(" | "));
        }
        println!();
    }
}

/// The machine and its load, for the record.
pub fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']));
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpuModel": model,
        "loadavg": read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "memTotal": read("/proc/meminfo").lines().next().unwrap_or("").split_whitespace().nth(1).unwrap_or(""),
        "when": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    })
}

/// Writes `{"mode", "machine", "results"}` as `<name>.json`: into bench/results/ in a full run,
/// into the target directory in a quick one (the same code runs; the repository stays clean).
/// The machine is the last run's; a run of some sections keeps the other sections' results.
pub fn write_results(mode: &Mode, name: &str, results: Value) -> PathBuf {
    let dir = if mode.full {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/results")
    } else {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
        target.join("bench-quick")
    };
    std::fs::create_dir_all(&dir).expect("results directory");
    let path = dir.join(format!("{name}.json"));
    // A run of some sections only replaces those sections' results.
    let mut results = results;
    if !mode.filters.is_empty() {
        let old: Option<Value> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        if let (Some(Value::Object(mut all)), Value::Object(new)) = (old.map(|o| o["results"].clone()), results.clone())
        {
            all.extend(new);
            results = Value::Object(all);
        }
    }
    let doc = json!({"benchmark": name, "mode": mode.name(), "machine": machine(), "results": results});
    std::fs::write(&path, serde_json::to_string_pretty(&doc).expect("JSON") + "\n").expect("write results");
    println!("results: {}", path.display());
    path
}

/// Nearest-rank percentile of an ascending slice (`p` in 0..=100).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of some numbers (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// A count with thousands separators.
pub fn count(n: f64) -> String {
    let s = format!("{:.0}", n);
    let (sign, digits) = s.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", &s));
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{sign}{out}")
}
