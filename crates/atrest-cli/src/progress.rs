//! Waiting for long operations: a spinner with the current status on stderr when stderr is a
//! terminal, plain `label: STATUS` lines (one per change) otherwise.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{CliError, Result};

/// The flags every `--wait`-able command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct WaitArgs {
    /// Block until the operation has settled
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub timing: Timing,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Timing {
    /// Give up waiting after this many seconds (exit code 5)
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub timeout: u64,
    /// Seconds between two status checks while waiting
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub poll_interval: f64,
}

impl Timing {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.poll_interval.clamp(0.05, 3600.0))
    }
}

pub struct Progress {
    label: String,
    status: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    spinner: Option<std::thread::JoinHandle<()>>,
    last: String,
}

impl Progress {
    pub fn new(label: impl Into<String>) -> Progress {
        let label = label.into();
        let status = Arc::new(Mutex::new(String::from("…")));
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = if std::io::stderr().is_terminal() {
            let (label, status, stop) = (label.clone(), status.clone(), stop.clone());
            Some(std::thread::spawn(move || {
                const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
                let start = Instant::now();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let s = status.lock().map(|s| s.clone()).unwrap_or_default();
                    let mut e = std::io::stderr().lock();
                    let _ = write!(
                        e,
                        "\r\x1b[2K{} {label}: {s} ({}s)",
                        FRAMES[i % FRAMES.len()],
                        start.elapsed().as_secs()
                    );
                    let _ = e.flush();
                    drop(e);
                    i += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                let mut e = std::io::stderr().lock();
                let _ = write!(e, "\r\x1b[2K");
                let _ = e.flush();
            }))
        } else {
            None
        };
        Progress { label, status, stop, spinner, last: String::new() }
    }

    pub fn set(&mut self, status: &str) {
        if status == self.last {
            return;
        }
        self.last = status.to_owned();
        if let Ok(mut s) = self.status.lock() {
            *s = status.to_owned();
        }
        if self.spinner.is_none() {
            eprintln!("{}: {status}", self.label);
        }
    }

    /// Stops the spinner and prints a final line on stderr.
    pub fn finish(mut self, line: &str) {
        self.stop_spinner();
        eprintln!("{}: {line}", self.label);
    }

    fn stop_spinner(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.spinner.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_spinner();
    }
}

/// One look at the thing being waited for.
pub enum Poll<T> {
    /// Not settled yet; the current status.
    Pending(String),
    /// Settled: the final status and what to return.
    Done(String, T),
}

/// Polls until `check` says done, showing progress; [`CliError::Timeout`] past the timeout.
pub async fn wait_for<T>(label: &str, timing: &Timing, mut check: impl AsyncFnMut() -> Result<Poll<T>>) -> Result<T> {
    let deadline = Instant::now() + timing.timeout();
    let mut progress = Progress::new(label);
    loop {
        match check().await? {
            Poll::Done(status, v) => {
                progress.finish(&status);
                return Ok(v);
            }
            Poll::Pending(status) => {
                progress.set(&status);
                if Instant::now() >= deadline {
                    drop(progress);
                    return Err(CliError::Timeout(format!(
                        "{label}: still {status} after {} s (--timeout)",
                        timing.timeout
                    )));
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(timing.interval().min(left.max(Duration::from_millis(10)))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn times_out_with_the_last_status() {
        let t = Timing { timeout: 0, poll_interval: 0.05 };
        let r: Result<()> = wait_for("thing", &t, async || Ok(Poll::Pending("CREATING".into()))).await;
        let e = r.unwrap_err();
        assert_eq!(e.exit_code(), 5);
        assert!(e.to_string().contains("CREATING"), "{e}");
    }

    #[tokio::test]
    async fn returns_when_settled() {
        let t = Timing { timeout: 10, poll_interval: 0.05 };
        let mut n = 0;
        let r = wait_for("thing", &t, async || {
            n += 1;
            Ok(if n < 3 { Poll::Pending("CREATING".into()) } else { Poll::Done("IDLE".into(), n) })
        })
        .await
        .unwrap();
        assert_eq!(r, 3);
    }
}
