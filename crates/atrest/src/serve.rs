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
use atrest_store::{SqliteStore, Store};
use zeroize::Zeroizing;

use crate::config::{LogFormat, Settings};

const CREDENTIALS_FILE: &str = "bootstrap-credentials";

pub fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

fn create_data_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
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
    write_private_file(&path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// First start: an organization and its Organization Owner key, shown once. The credentials file
/// is written before the store commits, so a crash in between leaves no key nobody can use.
async fn bootstrap(store: &dyn Store, sealer: &Sealer, dir: &Path) -> anyhow::Result<ObjectId> {
    if let Some(org) = store.get_meta("bootstrapped_org").await? {
        return ObjectId::parse(&org).context("stored organization id is corrupt");
    }
    let org = Org {
        id: ObjectId::new(),
        name: "atrest".into(),
        created: time_fmt::now(),
    };
    let grants = Grants {
        org_roles: vec![OrgRole::OrgOwner],
        ..Default::default()
    };
    let (key, sealed, private) = atrest_api::api_keys::mint(
        sealer,
        org.id,
        "bootstrap Organization Owner key".into(),
        grants,
    );
    update_credentials(
        dir,
        &[
            ("ATREST_ORG_ID", org.id.to_string()),
            ("ATREST_PUBLIC_KEY", key.public_key.clone()),
            ("ATREST_PRIVATE_KEY", (*private).clone()),
        ],
    )?;
    store.bootstrap(&org, &key, &sealed).await?;
    println!(
        "Created organization {} and its Organization Owner API key (shown once):",
        org.id
    );
    println!("  public key:  {}", key.public_key);
    println!("  private key: {}", &*private);
    println!(
        "Saved to {} (mode 0600).",
        dir.join(CREDENTIALS_FILE).display()
    );
    Ok(org.id)
}

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    create_data_dir(&settings.data_dir)?;
    let sealer = Arc::new(Sealer::load_or_create(&settings.data_dir)?);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(
        &settings.data_dir.join("atrest.sqlite3"),
    )?);
    let org = bootstrap(store.as_ref(), &sealer, &settings.data_dir).await?;

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    update_credentials(&settings.data_dir, &[("ATREST_URL", url.clone())])?;
    println!(
        "atrest listening on {url} (organization {org}; credentials in {})",
        settings.data_dir.join(CREDENTIALS_FILE).display()
    );
    tracing::info!(%url, data_dir = %settings.data_dir.display(), "ready");

    let state = AppState {
        store,
        sealer,
        digest: Arc::new(DigestAuth::new(settings.digest_nonce_ttl)),
    };
    atrest_api::serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
