//! Key material and key wrapping: the master key wrapper trait (KMS or service key), plaintext
//! keys in zeroizing memory, and the versioned format of wrapped database keys.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Length of every key in the hierarchy (AES-256).
pub const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// A 256-bit plaintext key. Zeroized on drop; its `Debug` never prints the bytes.
pub struct Key32(Zeroizing<[u8; KEY_LEN]>);

impl Key32 {
    /// A fresh key from the operating system's random generator.
    pub fn random() -> Self {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        Key32(k)
    }

    /// The key from exactly 32 bytes; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        k.copy_from_slice(bytes);
        Some(Key32(k))
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The SQLCipher raw-key literal `x'<64 hex>'` (zeroized on drop).
    pub(crate) fn sqlcipher_literal(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(3 + 2 * KEY_LEN));
        s.push_str("x'");
        for b in self.0.iter() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 0xf) as usize] as char);
        }
        s.push('\'');
        s
    }

    pub(crate) fn duplicate(&self) -> Key32 {
        Key32(Zeroizing::new(*self.0))
    }
}

impl fmt::Debug for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key32(<redacted>)")
    }
}

/// What wrapped a master key: provider (`"AWS"` or `"NONE"`), key (CMK ARN or service key id),
/// and the wrapper's own version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrapperId {
    pub provider: String,
    pub key: String,
    pub version: u32,
}

impl WrapperId {
    /// Same provider and key (the version may differ, as after an automatic CMK rotation).
    pub fn same_key(&self, other: &WrapperId) -> bool {
        self.provider == other.provider && self.key == other.key
    }
}

impl fmt::Display for WrapperId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} (v{})", self.provider, self.key, self.version)
    }
}

/// Why a wrap or unwrap failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrapError {
    /// The key is disabled, deleted, or access was revoked: the data must become inaccessible.
    #[error("denied: {0}")]
    Denied(String),
    /// The key service could not be reached (network, throttling): retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The wrapped blob is malformed or does not authenticate under this key and context.
    #[error("malformed or unauthentic wrapped key: {0}")]
    Malformed(String),
}

/// Wraps node master keys: AWS KMS (Encrypt/Decrypt with the encryption context) in the control
/// plane, or [`ServiceKeyWrapper`] for clusters with provider `NONE`.
///
/// The context is `{"cluster": <id>, "region": <region>}`; an implementation may add its own
/// fixed entries (the AWS one adds `project`) as long as wrap and unwrap add the same.
#[async_trait::async_trait]
pub trait MasterKeyWrapper: Send + Sync {
    fn describe(&self) -> WrapperId;
    async fn wrap(&self, plaintext: &[u8], context: &BTreeMap<String, String>) -> Result<Vec<u8>, WrapError>;
    async fn unwrap(&self, blob: &[u8], context: &BTreeMap<String, String>) -> Result<Zeroizing<Vec<u8>>, WrapError>;
}

/// The context serialized canonically (sorted keys, length-prefixed): the AAD of service wraps.
pub fn canonical_context(context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = b"atrest-context-v1".to_vec();
    for (k, v) in context {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Format version byte of a service-key wrapped blob: `[1][nonce 12][ciphertext+tag]`.
pub const SERVICE_BLOB_V1: u8 = 1;

/// Wraps master keys with AES-256-GCM under a 32-byte service key (provider `NONE`).
pub struct ServiceKeyWrapper {
    key: Key32,
    key_id: String,
}

impl ServiceKeyWrapper {
    pub fn new(service_key: Key32, key_id: impl Into<String>) -> Self {
        ServiceKeyWrapper { key: service_key, key_id: key_id.into() }
    }
}

/// Splits a service-key blob into nonce and ciphertext; never panics on any input.
pub fn parse_service_blob(blob: &[u8]) -> Result<(&[u8; NONCE_LEN], &[u8]), WrapError> {
    let (&version, rest) = blob.split_first().ok_or_else(|| WrapError::Malformed("empty blob".into()))?;
    if version != SERVICE_BLOB_V1 {
        return Err(WrapError::Malformed(format!("unknown format version {version}")));
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(WrapError::Malformed("blob too short".into()));
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().map_err(|_| WrapError::Malformed("nonce".into()))?;
    Ok((nonce, ct))
}

#[async_trait::async_trait]
impl MasterKeyWrapper for ServiceKeyWrapper {
    fn describe(&self) -> WrapperId {
        WrapperId { provider: "NONE".into(), key: self.key_id.clone(), version: 1 }
    }

    async fn wrap(&self, plaintext: &[u8], context: &BTreeMap<String, String>) -> Result<Vec<u8>, WrapError> {
        let cipher = Aes256Gcm::new(self.key.expose().into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = canonical_context(context);
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .map_err(|_| WrapError::Malformed("encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SERVICE_BLOB_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    async fn unwrap(&self, blob: &[u8], context: &BTreeMap<String, String>) -> Result<Zeroizing<Vec<u8>>, WrapError> {
        let (nonce, ct) = parse_service_blob(blob)?;
        let cipher = Aes256Gcm::new(self.key.expose().into());
        let aad = canonical_context(context);
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| WrapError::Malformed("does not authenticate under the service key".into()))
    }
}

/// Counts every wrap and unwrap it forwards, and can be switched to refuse like a deleted CMK
/// (`Denied`) or an unreachable KMS (`Unavailable`). For tests.
pub struct CountingWrapper {
    inner: Arc<dyn MasterKeyWrapper>,
    wraps: AtomicU64,
    unwraps: AtomicU64,
    denied: AtomicBool,
    unavailable: AtomicBool,
}

impl CountingWrapper {
    pub fn new(inner: Arc<dyn MasterKeyWrapper>) -> Self {
        CountingWrapper {
            inner,
            wraps: AtomicU64::new(0),
            unwraps: AtomicU64::new(0),
            denied: AtomicBool::new(false),
            unavailable: AtomicBool::new(false),
        }
    }
    pub fn wraps(&self) -> u64 {
        self.wraps.load(Ordering::SeqCst)
    }
    pub fn unwraps(&self) -> u64 {
        self.unwraps.load(Ordering::SeqCst)
    }
    pub fn calls(&self) -> u64 {
        self.wraps() + self.unwraps()
    }
    pub fn set_denied(&self, denied: bool) {
        self.denied.store(denied, Ordering::SeqCst)
    }
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst)
    }
    fn refusal(&self) -> Option<WrapError> {
        if self.denied.load(Ordering::SeqCst) {
            Some(WrapError::Denied("KMS key is pending deletion (simulated)".into()))
        } else if self.unavailable.load(Ordering::SeqCst) {
            Some(WrapError::Unavailable("connection refused (simulated)".into()))
        } else {
            None
        }
    }
}

#[async_trait::async_trait]
impl MasterKeyWrapper for CountingWrapper {
    fn describe(&self) -> WrapperId {
        self.inner.describe()
    }
    async fn wrap(&self, plaintext: &[u8], context: &BTreeMap<String, String>) -> Result<Vec<u8>, WrapError> {
        self.wraps.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        self.inner.wrap(plaintext, context).await
    }
    async fn unwrap(&self, blob: &[u8], context: &BTreeMap<String, String>) -> Result<Zeroizing<Vec<u8>>, WrapError> {
        self.unwraps.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        self.inner.unwrap(blob, context).await
    }
}

/// Format version byte of a wrapped database key.
pub const DB_KEY_FORMAT_V1: u8 = 1;
/// Algorithm byte: AES-256-GCM with a random 96-bit nonce.
pub const ALG_AES256_GCM: u8 = 1;
const MAX_REGION_LEN: usize = 64;

/// A database key wrapped by a node master key:
///
/// ```text
/// [format=1][alg=1][master key version: u32 BE][region len: u8][region][nonce: 12][ciphertext+tag: 48]
/// ```
///
/// The header (everything before the nonce) records what wrapped the key and is authenticated,
/// together with the cluster id and the database name, as AES-GCM associated data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedDbKey {
    pub master_version: u32,
    pub region: String,
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

/// Why bytes are not a wrapped database key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("empty")]
    Empty,
    #[error("unknown format version {0}")]
    Version(u8),
    #[error("unknown algorithm {0}")]
    Algorithm(u8),
    #[error("truncated")]
    Truncated,
    #[error("bad region")]
    Region,
    #[error("wrong length")]
    Length,
}

impl WrappedDbKey {
    fn header(&self) -> Vec<u8> {
        let mut h = vec![DB_KEY_FORMAT_V1, ALG_AES256_GCM];
        h.extend_from_slice(&self.master_version.to_be_bytes());
        h.push(self.region.len() as u8);
        h.extend_from_slice(self.region.as_bytes());
        h
    }

    fn aad(header: &[u8], cluster: &str, database: &str) -> Vec<u8> {
        let mut aad = b"atrest-dbkey-v1".to_vec();
        for part in [header, cluster.as_bytes(), database.as_bytes()] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses outside bytes; never panics.
    pub fn parse(bytes: &[u8]) -> Result<Self, FormatError> {
        let (&format, rest) = bytes.split_first().ok_or(FormatError::Empty)?;
        if format != DB_KEY_FORMAT_V1 {
            return Err(FormatError::Version(format));
        }
        let (&alg, rest) = rest.split_first().ok_or(FormatError::Truncated)?;
        if alg != ALG_AES256_GCM {
            return Err(FormatError::Algorithm(alg));
        }
        let version_bytes: [u8; 4] =
            rest.get(..4).ok_or(FormatError::Truncated)?.try_into().map_err(|_| FormatError::Truncated)?;
        let rest = &rest[4..];
        let (&region_len, rest) = rest.split_first().ok_or(FormatError::Truncated)?;
        let region_len = region_len as usize;
        if region_len == 0 || region_len > MAX_REGION_LEN {
            return Err(FormatError::Region);
        }
        let region = rest.get(..region_len).ok_or(FormatError::Truncated)?;
        let region = std::str::from_utf8(region).map_err(|_| FormatError::Region)?.to_string();
        let rest = &rest[region_len..];
        let nonce: [u8; NONCE_LEN] =
            rest.get(..NONCE_LEN).ok_or(FormatError::Truncated)?.try_into().map_err(|_| FormatError::Truncated)?;
        let ct = &rest[NONCE_LEN..];
        if ct.len() != KEY_LEN + TAG_LEN {
            return Err(FormatError::Length);
        }
        Ok(WrappedDbKey { master_version: u32::from_be_bytes(version_bytes), region, nonce, ciphertext: ct.to_vec() })
    }

    /// Wraps `key` for (`cluster`, `database`) under the master key of `region`, version `master_version`.
    pub fn wrap(master: &Key32, master_version: u32, region: &str, cluster: &str, database: &str, key: &Key32) -> Self {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut w = WrappedDbKey { master_version, region: region.to_string(), nonce, ciphertext: Vec::new() };
        let aad = Self::aad(&w.header(), cluster, database);
        let cipher = Aes256Gcm::new(master.expose().into());
        w.ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: key.expose(), aad: &aad })
            .expect("AES-GCM encryption of 32 bytes cannot fail");
        w
    }

    /// Unwraps with `master`; `None` when it does not authenticate (wrong key, cluster, database,
    /// version or region).
    pub fn unwrap(&self, master: &Key32, cluster: &str, database: &str) -> Option<Key32> {
        let aad = Self::aad(&self.header(), cluster, database);
        let cipher = Aes256Gcm::new(master.expose().into());
        let pt = Zeroizing::new(
            cipher.decrypt(Nonce::from_slice(&self.nonce), Payload { msg: &self.ciphertext, aad: &aad }).ok()?,
        );
        Key32::from_slice(&pt)
    }
}
