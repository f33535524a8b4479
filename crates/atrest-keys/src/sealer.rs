//! The server secret and what it seals: secrets atrest must keep (Digest verifiers, legacy AWS
//! secret keys) are stored only as AES-256-GCM ciphertext bound to the row they belong to.
//!
//! Sealed format: `0x01 || nonce (12) || ciphertext || tag (16)`.

use std::fs;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const SECRET_FILE: &str = "server-secret";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("server secret file {0}: {1}")]
    SecretFile(String, std::io::Error),
    #[error("server secret file {0} is not 32 bytes")]
    SecretLength(String),
    #[error("sealed value is malformed or was not sealed by this server for this purpose")]
    Open,
}

pub struct Sealer {
    cipher: Aes256Gcm,
    /// For requests between replicas sharing this secret (see [`Sealer::forwarding_key`]).
    forwarding: Zeroizing<[u8; 32]>,
}

impl Sealer {
    /// Loads `<data_dir>/server-secret`, creating it (mode 0600) with 32 random bytes if absent.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SealError> {
        let path = data_dir.join(SECRET_FILE);
        let shown = path.display().to_string();
        let secret: Zeroizing<Vec<u8>> = match fs::read(&path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut fresh = Zeroizing::new(vec![0u8; 32]);
                rand::rngs::OsRng.fill_bytes(&mut fresh);
                write_private_file(&path, &fresh).map_err(|e| SealError::SecretFile(shown.clone(), e))?;
                fresh
            }
            Err(e) => return Err(SealError::SecretFile(shown, e)),
        };
        if secret.len() != 32 {
            return Err(SealError::SecretLength(shown));
        }
        Ok(Self::from_key(&secret))
    }

    pub fn from_key(key: &[u8]) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"atrest/replica-forwarding/v1\0");
        h.update(key);
        let forwarding = Zeroizing::new(h.finalize().into());
        Sealer { cipher: Aes256Gcm::new_from_slice(key).expect("32-byte key"), forwarding }
    }

    /// A key derived from the server secret (never the secret itself) that replicas sharing it
    /// use to authenticate requests they forward to each other.
    pub fn forwarding_key(&self) -> &[u8; 32] {
        &self.forwarding
    }

    /// Seals `plaintext`; `context` (for example the owning row's id) must be given again to open.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: context })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(SealError::Open);
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: context })
            .map(Zeroizing::new)
            .map_err(|_| SealError::Open)
    }
}

/// Writes a file readable by its owner only, durably: temp file, fsync, rename, fsync the folder.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("secret")));
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_bound_to_context_and_server() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sealer::load_or_create(dir.path()).unwrap();
        let sealed = s.seal(b"secret", b"row-1");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(&*s.open(&sealed, b"row-1").unwrap(), b"secret");
        assert!(s.open(&sealed, b"row-2").is_err());
        let again = Sealer::load_or_create(dir.path()).unwrap();
        assert_eq!(&*again.open(&sealed, b"row-1").unwrap(), b"secret");
        let other = Sealer::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.open(&sealed, b"row-1").is_err());
        assert!(s.open(&[1, 2, 3], b"row-1").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
