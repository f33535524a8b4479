//! `atrest serve`: open the data directory, bootstrap on first start, serve until signalled.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use atrest_api::auth::digest::DigestAuth;
use atrest_api::AppState;
use atrest_core::orgs::Org;
use atrest_core::roles::{Grants, OrgRole};
use atrest_core::time_fmt;
use atrest_core::ObjectId;
use atrest_keys::sealer::write_private_file;
use atrest_keys::Sealer;
use atrest_store::{PgStore, SqliteStore, Store};
use zeroize::Zeroizing;

use atrest_control::{Control, ControlSettings};
use atrest_keys::aws::{Aws, AwsSettings, StaticKeys};
use atrest_keys::ec2::{Ec2, Ec2Settings};

use crate::config::{AwsMode, LogFormat, Settings};

const CREDENTIALS_FILE: &str = "bootstrap-credentials";

pub fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

fn create_data_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Rewrites `key=value` lines of the credentials file, keeping the others (the private key).
fn update_credentials(dir: &Path, updates: &[(&str, String)]) -> anyhow::Result<()> {
    let path = dir.join(CREDENTIALS_FILE);
    let existing = Zeroizing::new(fs::read_to_string(&path).unwrap_or_default());
    let mut lines: Vec<String> = existing.lines().map(str::to_owned).collect();
    for (key, value) in updates {
        let line = format!("{key}={value}");
        match lines.iter_mut().find(|l| l.starts_with(&format!("{key}="))) {
            Some(l) => *l = line,
            None => lines.push(line),
        }
    }
    let text = Zeroizing::new(lines.join("\n") + "\n");
    write_private_file(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// First start: an organization and its Organization Owner key, shown once. The credentials file
/// is written before the store commits, so a crash in between leaves no key nobody can use.
/// Replicas starting together on an empty database take turns through a lease: one bootstraps.
async fn bootstrap(store: &dyn Store, sealer: &Sealer, dir: &Path, replica: &str) -> anyhow::Result<ObjectId> {
    let ttl = std::time::Duration::from_secs(30);
    loop {
        if let Some(org) = store.get_meta("bootstrapped_org").await? {
            return ObjectId::parse(&org).context("stored organization id is corrupt");
        }
        if store.acquire_lease("bootstrap", replica, "", ttl).await? {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    if let Some(org) = store.get_meta("bootstrapped_org").await? {
        store.release_lease("bootstrap", replica).await?;
        return ObjectId::parse(&org).context("stored organization id is corrupt");
    }
    let org = Org { id: ObjectId::new(), name: "atrest".into(), created: time_fmt::now() };
    let grants = Grants { org_roles: vec![OrgRole::OrgOwner], ..Default::default() };
    let (key, sealed, private) =
        atrest_api::api_keys::mint(sealer, org.id, "bootstrap Organization Owner key".into(), grants);
    update_credentials(
        dir,
        &[
            ("ATREST_ORG_ID", org.id.to_string()),
            ("ATREST_PUBLIC_KEY", key.public_key.clone()),
            ("ATREST_PRIVATE_KEY", (*private).clone()),
        ],
    )?;
    store.bootstrap(&org, &key, &sealed).await?;
    store.release_lease("bootstrap", replica).await?;
    println!("Created organization {} and its Organization Owner API key (shown once):", org.id);
    println!("  public key:  {}", key.public_key);
    println!("  private key: {}", &*private);
    println!("Saved to {} (mode 0600).", dir.join(CREDENTIALS_FILE).display());
    Ok(org.id)
}

/// Operator credentials for `--aws real`: the standard variables, then the shared credentials file.
fn real_operator_keys() -> anyhow::Result<StaticKeys> {
    if let (Ok(id), Ok(secret)) = (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY")) {
        let mut keys = StaticKeys::new(&id, &secret);
        keys.session_token = std::env::var("AWS_SESSION_TOKEN").ok().map(Zeroizing::new);
        return Ok(keys);
    }
    let file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".aws").join("credentials")));
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let file = file.context("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")?;
    let c = aws_emulator::client::read_profile(&file, &profile)?;
    let mut keys = StaticKeys::new(&c.access_key_id, &c.secret_access_key);
    keys.session_token = c.session_token.map(Zeroizing::new);
    Ok(keys)
}

/// Starts the embedded AWS, or connects to the configured one; returns atrest's AWS access.
/// `vpc-x`, or `region=vpc-a,region=vpc-b` with an optional bare default among them.
fn vpc_settings(spec: &str) -> anyhow::Result<(std::collections::HashMap<String, String>, String)> {
    let mut map = std::collections::HashMap::new();
    let mut default = "vpc-a7e5e57000000001".to_owned();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((region, vpc)) => {
                map.insert(region.trim().to_owned(), vpc.trim().to_owned());
            }
            None => default = part.to_owned(),
        }
    }
    for vpc in map.values().chain(std::iter::once(&default)) {
        anyhow::ensure!(vpc.starts_with("vpc-"), "--aws-endpoint-vpc: {vpc} is not a VPC id (vpc-...)");
    }
    Ok((map, default))
}

async fn start_aws(settings: &Settings) -> anyhow::Result<(Arc<Aws>, Arc<Ec2>, Option<aws_emulator::Emulator>)> {
    let (vpc_ids, default_vpc_id) = vpc_settings(&settings.aws_endpoint_vpc)?;
    match settings.aws {
        AwsMode::Embedded => {
            let emulator = aws_emulator::Emulator::start(aws_emulator::EmulatorConfig {
                data_dir: settings.data_dir.clone(),
                listen: settings.aws_listen,
                iam_propagation_delay: settings.aws_iam_propagation,
                endpoint_ready_delay: settings.aws_endpoint_ready,
                key_deletion_day: settings.aws_key_deletion_day,
                ..Default::default()
            })
            .await
            .with_context(|| format!("starting the embedded AWS on {}", settings.aws_listen))?;
            let op = emulator.operator();
            let operator = StaticKeys::new(&op.access_key_id, &op.secret_access_key);
            let ec2 = Ec2::new(Ec2Settings { endpoint: Some(emulator.url()), vpc_ids, default_vpc_id }, &operator);
            let aws = Aws::new(AwsSettings {
                sts_endpoint: Some(emulator.url()),
                kms_endpoint: Some(emulator.url()),
                operator,
                call_timeout: settings.aws_call_timeout,
            });
            Ok((Arc::new(aws), Arc::new(ec2), Some(emulator)))
        }
        AwsMode::Real => {
            let operator = real_operator_keys()?;
            let ec2 = Ec2::new(
                Ec2Settings { endpoint: settings.aws_endpoint_url.clone(), vpc_ids, default_vpc_id },
                &operator,
            );
            let aws = Aws::new(AwsSettings {
                sts_endpoint: settings.aws_endpoint_url.clone(),
                kms_endpoint: settings.aws_endpoint_url.clone(),
                operator,
                call_timeout: settings.aws_call_timeout,
            });
            Ok((Arc::new(aws), Arc::new(ec2), None))
        }
    }
}

/// atrest's own key for clusters without customer keys (provider NONE): `<data-dir>/service-key`,
/// 32 random bytes, mode 0600, created on first start.
fn service_key(dir: &Path) -> anyhow::Result<atrest_dataplane::ServiceKeyWrapper> {
    let path = dir.join("service-key");
    let bytes = match fs::read(&path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fresh = Zeroizing::new(atrest_dataplane::Key32::random().expose().to_vec());
            write_private_file(&path, &fresh)?;
            fresh
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let key = atrest_dataplane::Key32::from_slice(&bytes).context("service-key must be 32 bytes")?;
    Ok(atrest_dataplane::ServiceKeyWrapper::new(key, "atrest-service-key"))
}

/// SQLite in the data directory, or the PostgreSQL database the URL names.
async fn open_store(settings: &Settings) -> anyhow::Result<(Arc<dyn Store>, bool)> {
    match settings.database_url.as_deref() {
        None => Ok((Arc::new(SqliteStore::open(&settings.data_dir.join("atrest.sqlite3"))?), false)),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PgStore::connect(url).await.map_err(|e| anyhow::anyhow!(e))?;
            Ok((Arc::new(store), true))
        }
        Some(_) => anyhow::bail!("--database-url must be a postgres:// or postgresql:// URL"),
    }
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    create_data_dir(&settings.data_dir)?;
    let sealer = Arc::new(Sealer::load_or_create(&settings.data_dir)?);
    let (store, shared) = open_store(&settings).await?;
    let replica_id = settings.replica_id.clone().unwrap_or_else(|| ObjectId::new().to_string());
    let org = bootstrap(store.as_ref(), &sealer, &settings.data_dir, &replica_id).await?;

    let (aws, ec2, emulator) = start_aws(&settings).await?;
    if let Some(e) = &emulator {
        update_credentials(&settings.data_dir, &[("ATREST_AWS_URL", e.url())])?;
        println!(
            "embedded AWS listening on {} (profiles operator and customer in {})",
            e.url(),
            e.credentials_file().display()
        );
    }
    let atlas_arn = aws.operator_arn().await.context("learning atrest's own AWS identity (GetCallerIdentity)")?;
    let listener =
        tokio::net::TcpListener::bind(settings.listen).await.with_context(|| format!("binding {}", settings.listen))?;
    let tls = match &settings.tls {
        Some((cert, key)) => Some(atrest_api::tls_acceptor(cert, key).map_err(|e| anyhow::anyhow!("TLS: {e}"))?),
        None => None,
    };
    let url = format!("{}://{}", if tls.is_some() { "https" } else { "http" }, listener.local_addr()?);
    let control = Control::new(atrest_control::Parts {
        store: store.clone(),
        sealer: sealer.clone(),
        aws,
        ec2,
        atlas_aws_account_arn: atlas_arn,
        settings: ControlSettings {
            key_check_interval: settings.key_check_interval,
            reconcile_interval: settings.reconcile_interval,
            master_key_rotation_period: settings.master_key_rotation_period,
        },
        data: Arc::new(atrest_dataplane::DataPlane::new(settings.data_dir.join("clusters"))),
        service_key: Arc::new(service_key(&settings.data_dir)?),
        replica: atrest_control::Replica {
            id: replica_id,
            url: settings.advertise_url.clone().unwrap_or_else(|| url.clone()),
            shared,
            lease_ttl: settings.lease_ttl,
        },
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.changed().await;
    };
    let reconcilers = [
        tokio::spawn(atrest_control::key_validity::run(control.clone(), stopped(stop_rx.clone()))),
        tokio::spawn(atrest_control::private_endpoints::run(control.clone(), stopped(stop_rx.clone()))),
        tokio::spawn(atrest_control::clusters::run(control.clone(), stopped(stop_rx.clone()))),
    ];

    update_credentials(&settings.data_dir, &[("ATREST_URL", url.clone())])?;
    println!(
        "atrest listening on {url} (organization {org}; credentials in {})",
        settings.data_dir.join(CREDENTIALS_FILE).display()
    );
    tracing::info!(%url, data_dir = %settings.data_dir.display(), "ready");

    let state = AppState::new(store, sealer, Arc::new(DigestAuth::new(settings.digest_nonce_ttl)), control.clone())
        .with_tls(tls.is_some())
        .with_limits(settings.rate_limits);
    atrest_api::serve_with(listener, state, shutdown_signal(), atrest_api::HEADER_READ_TIMEOUT, tls).await?;
    let _ = stop_tx.send(true);
    for r in reconcilers {
        let _ = r.await;
    }
    // The other replicas take this one's clusters at once rather than after the lease expires.
    control.release_all().await;
    if let Some(e) = emulator {
        e.shutdown().await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
