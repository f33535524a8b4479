//! The emulator's root key and sealing of secrets at rest (AES-256-GCM).

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

pub type KeyBytes = Zeroizing<[u8; 32]>;

#[derive(Debug, thiserror::Error)]
#[error("authenticated decryption failed")]
pub struct OpenError;

pub fn random_key() -> KeyBytes {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(k.as_mut());
    k
}

pub fn random_bytes(n: usize) -> Zeroizing<Vec<u8>> {
    let mut v = Zeroizing::new(vec![0u8; n]);
    rand::rngs::OsRng.fill_bytes(v.as_mut_slice());
    v
}

/// Write a file readable only by its owner (mode 0600), atomically, and fsync it.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
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
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Load `<data-dir>/aws-root-key` (32 raw bytes), creating it on first start.
pub fn load_or_create_root_key(path: &Path) -> anyhow::Result<KeyBytes> {
    if path.exists() {
        let bytes = Zeroizing::new(std::fs::read(path)?);
        if bytes.len() != 32 {
            anyhow::bail!("{} must hold exactly 32 bytes", path.display());
        }
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&bytes);
        return Ok(k);
    }
    let k = random_key();
    write_private_file(path, k.as_ref())?;
    Ok(k)
}

/// `nonce(12) || AES-256-GCM(ct || tag)`.
pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad }).unwrap_or_default(); // encryption of in-memory data cannot fail for sane sizes
    let mut out = Vec::with_capacity(12 + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if sealed.len() < 12 + 16 {
        return Err(OpenError);
    }
    let (nonce, ct) = sealed.split_at(12);
    let cipher = Aes256Gcm::new(key.into());
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad }).map(Zeroizing::new).map_err(|_| OpenError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_aad_binding() {
        let k = random_key();
        let s = seal(&k, b"aad", b"secret");
        assert_eq!(open(&k, b"aad", &s).unwrap().as_slice(), b"secret");
        assert!(open(&k, b"other", &s).is_err());
        assert!(open(&k, b"aad", &s[..10]).is_err());
    }

    #[test]
    fn root_key_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("aws-root-key");
        let a = load_or_create_root_key(&p).unwrap();
        let b = load_or_create_root_key(&p).unwrap();
        assert_eq!(a.as_ref(), b.as_ref());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
