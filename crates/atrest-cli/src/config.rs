//! Where the client's settings come from: flags, `ATREST_*` environment variables, and the
//! profile file written by `atrest login` (`$ATREST_CONFIG_DIR/profiles.toml`, default
//! `~/.config/atrest/profiles.toml`, mode 0600).
//!
//! Precedence for the URL and keys: flag, then the profile named by `--profile` (if given),
//! then `ATREST_URL` / `ATREST_PUBLIC_KEY` / `ATREST_PRIVATE_KEY`, then the `default` profile.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};
use crate::http::Credentials;

pub const DEFAULT_PROFILE: &str = "default";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub url: String,
    pub public_key: String,
    pub private_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

/// The directory holding `profiles.toml`.
pub fn config_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("ATREST_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("atrest"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".config").join("atrest")),
        None => Err(CliError::usage("cannot find the configuration directory: set ATREST_CONFIG_DIR or HOME")),
    }
}

pub fn profiles_path() -> Result<PathBuf> {
    Ok(config_dir()?.join("profiles.toml"))
}

pub fn load_profiles(path: &Path) -> Result<BTreeMap<String, Profile>> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| CliError::other(format!("cannot read the profiles in {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(CliError::other(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Writes the whole file, owner-only (0600), replacing it atomically.
pub fn save_profiles(path: &Path, profiles: &BTreeMap<String, Profile>) -> Result<()> {
    let text = toml::to_string(profiles).map_err(|e| CliError::other(format!("cannot encode the profiles: {e}")))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |e: std::io::Error| CliError::other(format!("cannot write {}: {e}", path.display()));
    create_private_dir(dir).map_err(io)?;
    let tmp = dir.join(format!(".profiles.toml.{}.tmp", std::process::id()));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        f.write_all(b"# atrest client profiles, written by `atrest login`. Holds private API keys: keep it 0600.\n")
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Reads a `KEY=value` file such as `<data-dir>/bootstrap-credentials`.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let k = k.trim().trim_start_matches("export ").trim();
            let v = v.trim().trim_matches('"').trim_matches('\'');
            (k.to_owned(), v.to_owned())
        })
        .collect())
}

/// What the command line said about the connection (before profiles and environment).
#[derive(Debug, Clone, Default)]
pub struct ConnectionFlags {
    pub url: Option<String>,
    pub public_key: Option<String>,
    pub private_key: Option<String>,
    pub profile: Option<String>,
}

/// The settled connection: credentials and, where known, the organization.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub creds: Credentials,
    pub org_id: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn resolve(flags: &ConnectionFlags) -> Result<Resolved> {
    let path = profiles_path();
    let profiles = match &path {
        Ok(p) => load_profiles(p)?,
        Err(_) => BTreeMap::new(),
    };
    let explicit = match &flags.profile {
        Some(name) => Some(profiles.get(name).cloned().ok_or_else(|| {
            CliError::usage(format!(
                "no profile named {name:?} in {} (create it with `atrest login --profile {name}`)",
                path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
            ))
        })?),
        None => None,
    };
    let fallback = profiles.get(DEFAULT_PROFILE).cloned();
    let pick = |flag: &Option<String>, envname: &str, get: fn(&Profile) -> &String| {
        flag.clone()
            .filter(|v| !v.is_empty())
            .or_else(|| explicit.as_ref().map(|p| get(p).clone()))
            .or_else(|| env(envname))
            .or_else(|| fallback.as_ref().map(|p| get(p).clone()))
            .filter(|v| !v.is_empty())
    };
    let url = pick(&flags.url, "ATREST_URL", |p| &p.url);
    let public_key = pick(&flags.public_key, "ATREST_PUBLIC_KEY", |p| &p.public_key);
    let private_key = pick(&flags.private_key, "ATREST_PRIVATE_KEY", |p| &p.private_key);
    let (Some(url), Some(public_key), Some(private_key)) = (url, public_key, private_key) else {
        return Err(CliError::usage(
            "no server credentials: run `atrest login`, or give --url, --public-key and \
             --private-key (or ATREST_URL, ATREST_PUBLIC_KEY, ATREST_PRIVATE_KEY)",
        ));
    };
    let org_id = env("ATREST_ORG_ID")
        .filter(|_| explicit.is_none())
        .or_else(|| explicit.as_ref().and_then(|p| p.org_id.clone()))
        .or_else(|| fallback.as_ref().and_then(|p| p.org_id.clone()));
    Ok(Resolved { creds: Credentials { url, public_key, private_key }, org_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_round_trip_with_owner_only_mode() {
        let dir = std::env::temp_dir().join(format!("atrest-cli-test-{}", std::process::id()));
        let path = dir.join("nested").join("profiles.toml");
        let mut m = BTreeMap::new();
        m.insert(
            "default".to_owned(),
            Profile {
                url: "http://127.0.0.1:8080".into(),
                public_key: "abcdefgh".into(),
                private_key: "0000-\"quoted\"".into(),
                org_id: Some("0123456789abcdef01234567".into()),
            },
        );
        save_profiles(&path, &m).unwrap();
        assert_eq!(load_profiles(&path).unwrap(), m);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bootstrap_credentials_file_is_read() {
        let dir = std::env::temp_dir().join(format!("atrest-cli-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bootstrap-credentials");
        std::fs::write(&p, "ATREST_ORG_ID=o1\nATREST_PUBLIC_KEY=pk\nATREST_PRIVATE_KEY=a-b=c\nATREST_URL=http://x:1\n")
            .unwrap();
        let m = read_env_file(&p).unwrap();
        assert_eq!(m["ATREST_PRIVATE_KEY"], "a-b=c");
        assert_eq!(m["ATREST_URL"], "http://x:1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
