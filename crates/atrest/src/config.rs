//! `atrest serve` settings: flag, then `ATREST_*` environment, then the TOML file, then default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Deserialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with any of the options below (keys are the long option names).
    #[arg(long, env = "ATREST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory: the store, the server secret and bootstrap credentials [default: ./atrest-data]
    #[arg(long, env = "ATREST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the Admin API; port 0 picks a free port and prints the URL [default: 127.0.0.1:8080]
    #[arg(long, env = "ATREST_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Log format [default: human]
    #[arg(long, env = "ATREST_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, in `tracing` env-filter syntax [default: info]
    #[arg(long, env = "ATREST_LOG")]
    pub log_level: Option<String>,
    /// Seconds a Digest nonce stays valid before clients are told it is stale [default: 300]
    #[arg(long, env = "ATREST_DIGEST_NONCE_TTL")]
    pub digest_nonce_ttl: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    digest_nonce_ttl: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub log_level: String,
    pub digest_nonce_ttl: Duration,
}

impl Settings {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        Ok(Settings {
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./atrest-data")),
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Human),
            log_level: args
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            digest_nonce_ttl: Duration::from_secs(
                args.digest_nonce_ttl
                    .or(file.digest_nonce_ttl)
                    .unwrap_or(300),
            ),
        })
    }
}
