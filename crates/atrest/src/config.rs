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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AwsMode {
    /// The embedded AWS emulator, on its own loopback port.
    Embedded,
    /// Real AWS (or any endpoint given by --aws-endpoint-url), with credentials from the
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN variables or the shared
    /// credentials file (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE).
    Real,
}

/// `500ms`, `2s`, `1m`, `1h`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s, m, h or d)")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
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
    /// Which AWS atrest talks to [default: embedded]
    #[arg(long, env = "ATREST_AWS", value_enum)]
    pub aws: Option<AwsMode>,
    /// Address of the embedded AWS emulator; port 0 picks a free port [default: 127.0.0.1:4566]
    #[arg(long, env = "ATREST_AWS_LISTEN")]
    pub aws_listen: Option<SocketAddr>,
    /// With --aws real: send STS and KMS calls to this URL instead of AWS's (e.g. a moto_server)
    #[arg(long, env = "ATREST_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// Timeout of every call to AWS, e.g. 10s [default: 10s]
    #[arg(long, env = "ATREST_AWS_CALL_TIMEOUT", value_parser = parse_duration)]
    pub aws_call_timeout: Option<Duration>,
    /// Embedded emulator: seconds before a new or changed IAM trust policy applies [default: 0]
    #[arg(long, env = "ATREST_AWS_IAM_PROPAGATION_SECS")]
    pub aws_iam_propagation_secs: Option<u64>,
    /// Embedded emulator: how long a new VPC endpoint stays pending, e.g. 2s [default: 2s]
    #[arg(long, env = "ATREST_AWS_ENDPOINT_READY", value_parser = parse_duration)]
    pub aws_endpoint_ready: Option<Duration>,
    /// Embedded emulator: how long one day of a key's pending-deletion window lasts [default: 24h]
    #[arg(long, env = "ATREST_AWS_KEY_DELETION_DAY", value_parser = parse_duration)]
    pub aws_key_deletion_day: Option<Duration>,
    /// How often every enabled project's key is re-checked, e.g. 60s [default: 60s]
    #[arg(long, env = "ATREST_KEY_CHECK_INTERVAL", value_parser = parse_duration)]
    pub key_check_interval: Option<Duration>,
    /// How often reconcilers (private endpoints) look at AWS, e.g. 5s [default: 5s]
    #[arg(long, env = "ATREST_RECONCILE_INTERVAL", value_parser = parse_duration)]
    pub reconcile_interval: Option<Duration>,
    /// atrest's VPC for KMS private endpoints: `vpc-id`, or per region `us-east-1=vpc-a,eu-west-1=vpc-b`
    /// [default: vpc-a7e5e57000000001, which the embedded AWS accepts]
    #[arg(long, env = "ATREST_AWS_ENDPOINT_VPC")]
    pub aws_endpoint_vpc: Option<String>,
    /// Clusters' master keys rotate at least this often, e.g. 90d [default: 90d]
    #[arg(long, env = "ATREST_MASTER_KEY_ROTATION_PERIOD", value_parser = parse_duration)]
    pub master_key_rotation_period: Option<Duration>,
    /// PEM certificate chain: serve HTTPS (with --tls-key)
    #[arg(long, env = "ATREST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, env = "ATREST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Admin API requests per minute per API key or service account; 0 turns it off [default: 1000]
    #[arg(long, env = "ATREST_RATE_LIMIT_PER_KEY")]
    pub rate_limit_per_key: Option<u32>,
    /// Admin API requests per minute per project; 0 turns it off [default: 500]
    #[arg(long, env = "ATREST_RATE_LIMIT_PER_PROJECT")]
    pub rate_limit_per_project: Option<u32>,
    /// The store: `postgres://user:password@host:port/database` for PostgreSQL, shared by several
    /// replicas (no TLS: sslmode=disable) [default: SQLite in the data directory]
    #[arg(long, env = "ATREST_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// This replica's name among those sharing the database; a replica restarted with the same
    /// name takes its clusters back at once [default: random on every start]
    #[arg(long, env = "ATREST_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// The URL other replicas use to reach this one [default: http://<listen address>]
    #[arg(long, env = "ATREST_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// How long a cluster stays with a replica that stopped renewing its lease, e.g. 10s [default: 10s]
    #[arg(long, env = "ATREST_LEASE_TTL", value_parser = parse_duration)]
    pub lease_ttl: Option<Duration>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    digest_nonce_ttl: Option<u64>,
    aws: Option<AwsMode>,
    aws_listen: Option<SocketAddr>,
    aws_endpoint_url: Option<String>,
    aws_call_timeout: Option<String>,
    aws_iam_propagation_secs: Option<u64>,
    aws_endpoint_ready: Option<String>,
    aws_key_deletion_day: Option<String>,
    key_check_interval: Option<String>,
    reconcile_interval: Option<String>,
    aws_endpoint_vpc: Option<String>,
    master_key_rotation_period: Option<String>,
    rate_limit_per_key: Option<u32>,
    rate_limit_per_project: Option<u32>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    database_url: Option<String>,
    replica_id: Option<String>,
    advertise_url: Option<String>,
    lease_ttl: Option<String>,
}

fn file_duration(v: Option<String>, key: &str) -> anyhow::Result<Option<Duration>> {
    v.map(|s| parse_duration(&s).map_err(|e| anyhow::anyhow!("{key}: {e}"))).transpose()
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub log_level: String,
    pub digest_nonce_ttl: Duration,
    pub aws: AwsMode,
    pub aws_listen: SocketAddr,
    pub aws_endpoint_url: Option<String>,
    pub aws_call_timeout: Duration,
    pub aws_iam_propagation: Duration,
    pub aws_endpoint_ready: Duration,
    pub aws_key_deletion_day: Duration,
    pub key_check_interval: Duration,
    pub reconcile_interval: Duration,
    pub aws_endpoint_vpc: String,
    pub master_key_rotation_period: Duration,
    pub rate_limits: atrest_api::rate_limit::Limits,
    /// Certificate chain and key files, when serving HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub database_url: Option<String>,
    pub replica_id: Option<String>,
    pub advertise_url: Option<String>,
    pub lease_ttl: Duration,
}

impl Settings {
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file: FileConfig = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        Ok(Settings {
            data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("./atrest-data")),
            listen: args.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Human),
            log_level: args.log_level.or(file.log_level).unwrap_or_else(|| "info".into()),
            digest_nonce_ttl: Duration::from_secs(args.digest_nonce_ttl.or(file.digest_nonce_ttl).unwrap_or(300)),
            aws: args.aws.or(file.aws).unwrap_or(AwsMode::Embedded),
            aws_listen: args.aws_listen.or(file.aws_listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 4566))),
            aws_endpoint_url: args.aws_endpoint_url.or(file.aws_endpoint_url),
            aws_call_timeout: args
                .aws_call_timeout
                .or(file_duration(file.aws_call_timeout, "aws-call-timeout")?)
                .unwrap_or(Duration::from_secs(10)),
            aws_iam_propagation: Duration::from_secs(
                args.aws_iam_propagation_secs.or(file.aws_iam_propagation_secs).unwrap_or(0),
            ),
            aws_endpoint_ready: args
                .aws_endpoint_ready
                .or(file_duration(file.aws_endpoint_ready, "aws-endpoint-ready")?)
                .unwrap_or(Duration::from_secs(2)),
            aws_key_deletion_day: args
                .aws_key_deletion_day
                .or(file_duration(file.aws_key_deletion_day, "aws-key-deletion-day")?)
                .unwrap_or(Duration::from_secs(24 * 3600)),
            key_check_interval: args
                .key_check_interval
                .or(file_duration(file.key_check_interval, "key-check-interval")?)
                .unwrap_or(Duration::from_secs(60)),
            reconcile_interval: args
                .reconcile_interval
                .or(file_duration(file.reconcile_interval, "reconcile-interval")?)
                .unwrap_or(Duration::from_secs(5)),
            aws_endpoint_vpc: args
                .aws_endpoint_vpc
                .or(file.aws_endpoint_vpc)
                .unwrap_or_else(|| "vpc-a7e5e57000000001".into()),
            master_key_rotation_period: args
                .master_key_rotation_period
                .or(file_duration(file.master_key_rotation_period, "master-key-rotation-period")?)
                .unwrap_or(Duration::from_secs(90 * 86400)),
            tls: match (args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key)) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => anyhow::bail!("tls-cert and tls-key go together: give both or neither"),
            },
            rate_limits: {
                let d = atrest_api::rate_limit::Limits::default();
                atrest_api::rate_limit::Limits {
                    per_key: args.rate_limit_per_key.or(file.rate_limit_per_key).unwrap_or(d.per_key),
                    per_project: args.rate_limit_per_project.or(file.rate_limit_per_project).unwrap_or(d.per_project),
                }
            },
            database_url: args.database_url.or(file.database_url),
            replica_id: args.replica_id.or(file.replica_id),
            advertise_url: args.advertise_url.or(file.advertise_url),
            lease_ttl: args
                .lease_ttl
                .or(file_duration(file.lease_ttl, "lease-ttl")?)
                .unwrap_or(Duration::from_secs(10)),
        })
    }
}
