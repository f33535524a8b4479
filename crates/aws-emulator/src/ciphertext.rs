//! KMS ciphertext blob format (version 1).
//!
//! ```text
//! u8   format version (1)
//! u8   key id length L (1..=64)
//! L    key id, ASCII (UUID or mrk-<32 hex>)
//! u32  key material version, big endian
//! 12   AES-GCM nonce
//! ..   AES-256-GCM ciphertext || 16-byte tag
//! ```
//! The associated data binds the format version, the key id, the material version and the
//! canonical (sorted, length-prefixed) encryption context, so any change to the header or the
//! context makes decryption fail.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

pub const VERSION: u8 = 1;
const AAD_LABEL: &[u8] = b"atrest-aws-emulator/kms-ciphertext/v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CiphertextError {
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("unsupported ciphertext format version {0}")]
    UnsupportedVersion(u8),
    #[error("ciphertext failed authentication")]
    Authentication,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob<'a> {
    pub key_id: &'a str,
    pub material_version: u32,
    pub nonce: [u8; 12],
    pub sealed: &'a [u8],
}

pub fn parse(bytes: &[u8]) -> Result<Blob<'_>, CiphertextError> {
    let (&version, rest) = bytes.split_first().ok_or(CiphertextError::Malformed)?;
    if version != VERSION {
        return Err(CiphertextError::UnsupportedVersion(version));
    }
    let (&len, rest) = rest.split_first().ok_or(CiphertextError::Malformed)?;
    let len = len as usize;
    if len == 0 || len > 64 || rest.len() < len + 4 + 12 + 16 {
        return Err(CiphertextError::Malformed);
    }
    let (id, rest) = rest.split_at(len);
    let key_id = std::str::from_utf8(id).map_err(|_| CiphertextError::Malformed)?;
    if !key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(CiphertextError::Malformed);
    }
    let (ver, rest) = rest.split_at(4);
    let material_version = u32::from_be_bytes([ver[0], ver[1], ver[2], ver[3]]);
    let (nonce, sealed) = rest.split_at(12);
    let mut n = [0u8; 12];
    n.copy_from_slice(nonce);
    Ok(Blob { key_id, material_version, nonce: n, sealed })
}

fn aad(key_id: &str, material_version: u32, context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(AAD_LABEL);
    out.push(VERSION);
    out.push(key_id.len() as u8);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&material_version.to_be_bytes());
    out.extend_from_slice(&(context.len() as u32).to_be_bytes());
    for (k, v) in context {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

pub fn encrypt(
    material: &[u8; 32],
    key_id: &str,
    material_version: u32,
    context: &BTreeMap<String, String>,
    plaintext: &[u8],
) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new(material.into());
    let aad = aad(key_id, material_version, context);
    let ct = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad }).unwrap_or_default();
    let mut out = Vec::with_capacity(2 + key_id.len() + 4 + 12 + ct.len());
    out.push(VERSION);
    out.push(key_id.len() as u8);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&material_version.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

pub fn decrypt(
    material: &[u8; 32],
    blob: &Blob<'_>,
    context: &BTreeMap<String, String>,
) -> Result<Zeroizing<Vec<u8>>, CiphertextError> {
    let cipher = Aes256Gcm::new(material.into());
    let aad = aad(blob.key_id, blob.material_version, context);
    cipher
        .decrypt(Nonce::from_slice(&blob.nonce), Payload { msg: blob.sealed, aad: &aad })
        .map(Zeroizing::new)
        .map_err(|_| CiphertextError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn roundtrip_and_binding() {
        let m = [7u8; 32];
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let c = ctx(&[("project", "p1"), ("cluster", "c1")]);
        let blob = encrypt(&m, id, 2, &c, b"hello");
        assert_eq!(blob[0], VERSION);
        let parsed = parse(&blob).unwrap();
        assert_eq!(parsed.key_id, id);
        assert_eq!(parsed.material_version, 2);
        assert_eq!(decrypt(&m, &parsed, &c).unwrap().as_slice(), b"hello");
        // wrong context, wrong key, tampered header
        assert!(decrypt(&m, &parsed, &ctx(&[("project", "p2")])).is_err());
        assert!(decrypt(&[8u8; 32], &parsed, &c).is_err());
        let mut t = blob.clone();
        let pos = 2 + id.len() + 3;
        t[pos] ^= 1; // material version
        let p2 = parse(&t).unwrap();
        assert!(decrypt(&m, &p2, &c).is_err());
    }

    #[test]
    fn parser_never_panics_on_garbage() {
        let mut rng = rand::thread_rng();
        for len in 0..200 {
            for _ in 0..20 {
                let mut v = vec![0u8; len];
                rng.fill_bytes(&mut v);
                if !v.is_empty() && rng.next_u32().is_multiple_of(2) {
                    v[0] = VERSION;
                }
                if v.len() > 1 && rng.next_u32().is_multiple_of(2) {
                    v[1] = (rng.next_u32() % 70) as u8;
                }
                let _ = parse(&v);
            }
        }
        assert_eq!(parse(&[]), Err(CiphertextError::Malformed));
        assert_eq!(parse(&[9]), Err(CiphertextError::UnsupportedVersion(9)));
    }
}
