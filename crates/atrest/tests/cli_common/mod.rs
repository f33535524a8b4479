//! Harness for the CLI scenarios: the real server (from the shared harness in `common/`) and the
//! real `atrest` binary run as a subprocess, with credentials in its environment and a private
//! configuration directory (so no profile of the machine's user is ever read or written).
#![allow(dead_code)]

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use common::Server;
use serde_json::Value;

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr: {}", self.stdout, self.stderr))
    }

    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

/// One CLI user: a config directory and the environment the CLI runs with.
pub struct Cli {
    pub config_dir: PathBuf,
    pub env: Vec<(String, String)>,
    _tmp: tempfile::TempDir,
}

impl Cli {
    /// No credentials at all (only a private config directory).
    pub fn bare() -> Cli {
        let tmp = tempfile::tempdir().unwrap();
        Cli { config_dir: tmp.path().join("config"), env: Vec::new(), _tmp: tmp }
    }

    /// The server's bootstrap Organization Owner key in ATREST_URL / _PUBLIC_KEY / _PRIVATE_KEY.
    pub fn for_server(s: &Server) -> Cli {
        Cli::bare()
            .with("ATREST_URL", &s.url)
            .with("ATREST_PUBLIC_KEY", &s.creds["ATREST_PUBLIC_KEY"])
            .with("ATREST_PRIVATE_KEY", &s.creds["ATREST_PRIVATE_KEY"])
    }

    pub fn with(mut self, k: &str, v: &str) -> Cli {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_stdin(args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_atrest"));
        cmd.args(args);
        // Nothing from the test runner's own environment leaks into the client.
        for (k, _) in std::env::vars() {
            if k.starts_with("ATREST_") || k == "XDG_CONFIG_HOME" {
                cmd.env_remove(k);
            }
        }
        cmd.env("ATREST_CONFIG_DIR", &self.config_dir).env("HOME", self.config_dir.parent().unwrap());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run atrest");
        if let Some(text) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        let o = child.wait_with_output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn profiles_path(&self) -> PathBuf {
        self.config_dir.join("profiles.toml")
    }
}

#[cfg(unix)]
pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A local port nothing listens on.
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}
