//! The per-cluster keyring: wrapped master keys, wrapped database keys, and the state of an
//! unfinished re-encryption. Only wrapped keys are ever written; every write is durable
//! (temporary file, fsync, rename, fsync of the directory) before anything depends on it.
//!
//! File format: `b"ATRK"`, a version byte (1), the JSON body, then the SHA-256 of everything
//! before it (detects torn or bit-rotted files; the keys themselves are authenticated by AEAD).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
use crate::keys::WrapperId;

pub(crate) const MAGIC: &[u8; 4] = b"ATRK";
pub(crate) const KEYRING_V1: u8 = 1;

/// One region's node master key, wrapped by the cluster's wrapper (KMS or service key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedMasterKey {
    pub region: String,
    /// Master key version (bound into every database key's AAD).
    pub version: u32,
    /// What wrapped it.
    pub wrapper: WrapperId,
    /// The wrapper's opaque blob, hex.
    pub blob: String,
}

/// A generation of master keys: one per region, all of the same version and wrapper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKeySet {
    pub version: u32,
    pub wrapper: WrapperId,
    pub keys: Vec<WrappedMasterKey>,
}

/// A database key wrapped under each region's master key (hex of [`crate::keys::WrappedDbKey`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbKeyEntry {
    pub wrapped: Vec<String>,
}

/// An unfinished switch of the cluster to a new wrapper, new master keys and new database keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReencryption {
    pub target: MasterKeySet,
    /// New database keys, wrapped under `target`.
    pub databases: BTreeMap<String, DbKeyEntry>,
    /// Databases whose file is already under its new key.
    pub done: BTreeSet<String>,
    pub bytes_total: u64,
    pub bytes_done: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyring {
    pub cluster_id: String,
    /// Incremented by every write.
    pub generation: u64,
    pub regions: Vec<String>,
    /// `None` once the cluster was destroyed (a tombstone: the keys are gone).
    pub masters: Option<MasterKeySet>,
    pub databases: BTreeMap<String, DbKeyEntry>,
    pub reencryption: Option<PendingReencryption>,
}

impl Keyring {
    pub fn encode(&self) -> Result<Vec<u8>> {
        let body = serde_json::to_vec(self).map_err(|e| DataError::Storage(e.to_string()))?;
        let mut out = Vec::with_capacity(5 + body.len() + 32);
        out.extend_from_slice(MAGIC);
        out.push(KEYRING_V1);
        out.extend_from_slice(&body);
        let digest = Sha256::digest(&out);
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Parses outside bytes; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = |m: &str| DataError::Corrupt(format!("keyring: {m}"));
        if bytes.len() < MAGIC.len() + 1 + 32 {
            return Err(corrupt("too short"));
        }
        if &bytes[..4] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        if bytes[4] != KEYRING_V1 {
            return Err(corrupt(&format!("unknown format version {}", bytes[4])));
        }
        let (content, digest) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(content).as_slice() != digest {
            return Err(corrupt("checksum mismatch"));
        }
        serde_json::from_slice(&content[5..]).map_err(|e| corrupt(&e.to_string()))
    }

    pub fn load(path: &Path) -> Result<Option<Self>> {
        match fs::read(path) {
            Ok(bytes) => Self::decode(&bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the keyring durably, replacing the previous one atomically.
    pub fn store(&self, path: &Path) -> Result<()> {
        let bytes = self.encode()?;
        write_durably(path, &bytes)
    }
}

/// Writes `bytes` to `path` atomically and durably: temporary file, fsync, rename, fsync dir.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().ok_or_else(|| DataError::Storage("path without parent".into()))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}
