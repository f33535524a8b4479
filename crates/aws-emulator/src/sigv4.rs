//! Server-side AWS Signature Version 4 verification (header form).
//!
//! The canonical request and string to sign are built here; the HMAC-SHA256 arithmetic is
//! RustCrypto's `hmac` + `sha2`, and signatures are compared in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Request is missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Incomplete(String),
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    SignatureMismatch,
    #[error("{0}")]
    SignatureExpired(String),
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    #[error("{0}")]
    WrongScope(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl AuthHeader {
    pub fn scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

/// Parse `AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=hex`.
pub fn parse_authorization(value: &str) -> Result<AuthHeader, AuthError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .ok_or_else(|| AuthError::Incomplete(format!("Unsupported authorization type; expected {ALGORITHM}")))?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some((k, v)) = part.split_once('=') {
            match k.trim() {
                "Credential" => credential = Some(v.trim()),
                "SignedHeaders" => signed = Some(v.trim()),
                "Signature" => signature = Some(v.trim()),
                _ => {}
            }
        }
    }
    let missing = |what: &str| {
        AuthError::Incomplete(format!("Authorization header requires '{what}' parameter. Authorization={value}"))
    };
    let credential = credential.ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| missing("Signature"))?;
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" || parts.iter().any(|p| p.is_empty()) {
        return Err(AuthError::Incomplete(format!(
            "Credential should be scoped to a valid region, service and aws4_request terminator. Credential={credential}"
        )));
    }
    if parts[1].len() != 8 || !parts[1].bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::Incomplete(format!(
            "Credential should be scoped to a valid date. Credential={credential}"
        )));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::Incomplete("Signature must be 64 hexadecimal characters".into()));
    }
    let signed_headers: Vec<String> =
        signed.split(';').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect();
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::Incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.".into()));
    }
    Ok(AuthHeader {
        access_key_id: parts[0].to_string(),
        date: parts[1].to_string(),
        region: parts[2].to_string(),
        service: parts[3].to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// `20260101T120000Z`.
pub fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, &fmt).ok().map(|p| p.assume_utc())
}

pub fn format_amz_date(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(&fmt).unwrap_or_default()
}

const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn uri_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Non-S3 services: every path segment (as sent, already encoded once) is encoded again.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() || path == "/" {
        return "/".into();
    }
    path.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
}

fn canonical_query(query: Option<&str>) -> String {
    let Some(q) = query else {
        return String::new();
    };
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&decode(k)), uri_encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn canonical_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &http::HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(method);
    out.push('\n');
    out.push_str(&canonical_uri(path));
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        // Values joined by commas, each trimmed with inner whitespace runs collapsed, written
        // straight into the canonical request.
        for (i, v) in headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            for (j, word) in String::from_utf8_lossy(v.as_bytes()).split_whitespace().enumerate() {
                if j > 0 {
                    out.push(' ');
                }
                out.push_str(word);
            }
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; new_from_slice cannot fail for HMAC.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0u8; 32],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// Derived signing keys by (secret, date, region, service). A client signs every request of a day
/// with the same derived key, so the four chained HMACs need to run once per day and scope, not
/// once per request. The secrets come from the emulator's own state (never from the request), so
/// plain comparisons are fine here. Bounded: the oldest entry goes first.
#[derive(Default)]
pub struct SigningKeys {
    entries: std::sync::Mutex<std::collections::VecDeque<CachedKey>>,
}

struct CachedKey {
    secret: zeroize::Zeroizing<String>,
    date: String,
    region: String,
    service: String,
    key: zeroize::Zeroizing<[u8; 32]>,
}

const MAX_CACHED_KEYS: usize = 256;

impl SigningKeys {
    pub fn get(&self, secret: &str, date: &str, region: &str, service: &str) -> zeroize::Zeroizing<[u8; 32]> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let hit = entries
            .iter()
            .find(|e| e.date == date && e.region == region && e.service == service && e.secret.as_str() == secret);
        if let Some(e) = hit {
            return e.key.clone();
        }
        let key = zeroize::Zeroizing::new(signing_key(secret, date, region, service));
        if entries.len() >= MAX_CACHED_KEYS {
            entries.pop_front();
        }
        entries.push_back(CachedKey {
            secret: zeroize::Zeroizing::new(secret.to_string()),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            key: key.clone(),
        });
        key
    }
}

pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac(signing_key, string_to_sign.as_bytes()))
}

/// Everything needed to check one request's signature.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// Check date skew and signature. `secret` is the secret of `auth.access_key_id`; its derived
/// signing key comes from `keys`.
pub fn verify(
    req: &SignedRequest<'_>,
    auth: &AuthHeader,
    secret: &str,
    now: OffsetDateTime,
    max_skew: std::time::Duration,
    keys: &SigningKeys,
) -> Result<(), AuthError> {
    let amz_date = req.headers.get("x-amz-date").and_then(|v| v.to_str().ok()).ok_or_else(|| {
        AuthError::Incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
        )
    })?;
    let when =
        parse_amz_date(amz_date).ok_or_else(|| AuthError::Incomplete(format!("Invalid X-Amz-Date: {amz_date}")))?;
    if !amz_date.starts_with(&auth.date) {
        return Err(AuthError::SignatureMismatch);
    }
    let skew = time::Duration::try_from(max_skew).unwrap_or(time::Duration::minutes(5));
    if when < now - skew {
        return Err(AuthError::SignatureExpired(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - {} min.)",
            format_amz_date(now - skew),
            format_amz_date(now),
            skew.whole_minutes()
        )));
    }
    if when > now + skew {
        return Err(AuthError::SignatureExpired(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + {} min.)",
            format_amz_date(now + skew),
            format_amz_date(now),
            skew.whole_minutes()
        )));
    }
    let body_hash = sha256_hex(req.body);
    if let Some(h) = req.headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()) {
        if h != body_hash && h != "UNSIGNED-PAYLOAD" {
            return Err(AuthError::SignatureMismatch);
        }
    }
    let payload_hash = match req.headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok()) {
        Some("UNSIGNED-PAYLOAD") => "UNSIGNED-PAYLOAD".to_string(),
        _ => body_hash,
    };
    let creq = canonical_request(req.method, req.path, req.query, req.headers, &auth.signed_headers, &payload_hash);
    let sts = string_to_sign(amz_date, &auth.scope(), &creq);
    let key = keys.get(secret, &auth.date, &auth.region, &auth.service);
    let expected = signature(&key, &sts);
    if expected.as_bytes().ct_eq(auth.signature.as_bytes()).into() {
        Ok(())
    } else {
        Err(AuthError::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // From the AWS SigV4 test suite ("get-vanilla").
    #[test]
    fn aws_test_suite_get_vanilla() {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let signed = vec!["host".to_string(), "x-amz-date".to_string()];
        let creq = canonical_request("GET", "/", None, &headers, &signed, &sha256_hex(b""));
        let sts = string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", &creq);
        let key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "service");
        assert_eq!(signature(&key, &sts), "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        )
        .unwrap();
        let req = SignedRequest { method: "GET", path: "/", query: None, headers: &headers, body: b"" };
        let now = parse_amz_date("20150830T123900Z").unwrap();
        let skew = std::time::Duration::from_secs(300);
        let keys = SigningKeys::default();
        // Twice: the second check uses the cached signing key, and a cached key for one secret
        // never verifies a request signed with another.
        for _ in 0..2 {
            verify(&req, &auth, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", now, skew, &keys).unwrap();
            assert_eq!(verify(&req, &auth, "wrong", now, skew, &keys), Err(AuthError::SignatureMismatch));
        }
        let late = parse_amz_date("20150830T124200Z").unwrap();
        assert!(matches!(
            verify(&req, &auth, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", late, skew, &keys),
            Err(AuthError::SignatureExpired(_))
        ));
    }

    #[test]
    fn query_canonicalisation() {
        assert_eq!(canonical_query(Some("b=2&a=1&a=0&c=x%20y")), "a=0&a=1&b=2&c=x%20y");
    }

    #[test]
    fn parse_errors_never_panic() {
        for s in [
            "",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=a/b/c",
            "AWS4-HMAC-SHA256 Credential=AK/20200101/r/s/aws4_request, SignedHeaders=host, Signature=zz",
            "Basic abc",
            "AWS4-HMAC-SHA256 ,,,==,",
        ] {
            assert!(parse_authorization(s).is_err(), "{s}");
        }
    }
}
