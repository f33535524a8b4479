//! Identifier formats, as AWS formats them.

use rand::Rng;

const AKID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn pick(chars: &[u8], n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| chars[rng.gen_range(0..chars.len())] as char).collect()
}

fn hex_chars(n: usize) -> String {
    pick(b"0123456789abcdef", n)
}

/// Long-term access key id: `AKIA` + 16 characters (20 in all).
pub fn root_access_key_id() -> String {
    format!("AKIA{}", pick(AKID_CHARS, 16))
}

/// Temporary (session) access key id: `ASIA` + 16 characters.
pub fn session_access_key_id() -> String {
    format!("ASIA{}", pick(AKID_CHARS, 16))
}

/// Secret access key: 40 characters.
pub fn secret_access_key() -> String {
    pick(SECRET_CHARS, 40)
}

/// 12-digit account id (no leading zero).
pub fn account_id() -> String {
    let mut rng = rand::thread_rng();
    let first = rng.gen_range(1..10);
    format!("{first}{}", pick(b"0123456789", 11))
}

/// Single-region KMS key id: a UUID.
pub fn key_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Multi-region KMS key id: `mrk-` + 32 lowercase hex characters.
pub fn mrk_id() -> String {
    format!("mrk-{}", uuid::Uuid::new_v4().simple())
}

/// Request id (UUID, as in `x-amzn-RequestId`). From the thread-local generator rather than the
/// OS (one system call per request): it names a request, it protects nothing.
pub fn request_id() -> String {
    uuid::Builder::from_random_bytes(rand::thread_rng().gen()).into_uuid().to_string()
}

/// IAM role unique id: `AROA` + 17 characters.
pub fn role_id() -> String {
    format!("AROA{}", pick(AKID_CHARS, 17))
}

/// VPC endpoint id: `vpce-` + 17 hex characters.
pub fn vpce_id() -> String {
    format!("vpce-{}", hex_chars(17))
}

/// A short random suffix used in DNS names.
pub fn dns_suffix() -> String {
    pick(b"abcdefghijklmnopqrstuvwxyz0123456789", 8)
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

pub fn is_region(s: &str) -> bool {
    // e.g. us-east-1, eu-west-2, ap-southeast-1, us-gov-west-1
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().map(|n| n > 0).unwrap_or(false)
}

pub fn is_uuid(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}

pub fn is_mrk_id(s: &str) -> bool {
    s.len() == 36 && s.starts_with("mrk-") && s[4..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(root_access_key_id().len(), 20);
        assert!(root_access_key_id().starts_with("AKIA"));
        assert_eq!(session_access_key_id().len(), 20);
        assert_eq!(secret_access_key().len(), 40);
        assert!(is_account_id(&account_id()));
        assert!(is_uuid(&key_id()));
        assert!(is_mrk_id(&mrk_id()));
        assert_eq!(vpce_id().len(), 22);
        assert!(is_region("us-east-1"));
        assert!(is_region("us-gov-west-1"));
        assert!(!is_region("us-east"));
        assert!(!is_region("US-EAST-1"));
        assert!(!is_region(""));
    }
}
