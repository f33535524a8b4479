//! HTTP Digest authentication (RFC 7616) as Atlas serves it and as Atlas's Go client demands:
//! realm "MMS Public API", qop "auth", MD5 or SHA-256, one challenge whose directives are joined
//! by ", " and limited to realm, domain, nonce, algorithm, qop and stale.
//!
//! Nonces are stateless (issue time + random, MACed with a per-process key) and expire; the
//! nonce counts seen per nonce are remembered until the nonce expires, so a replayed `nc` fails.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub const REALM: &str = "MMS Public API";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn parse(s: Option<&str>) -> Option<Self> {
        match s {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex::encode(Md5::digest(data)),
            Algorithm::Sha256 => hex::encode(Sha256::digest(data)),
        }
    }
}

/// What a server keeps to verify a user's Digest responses: `H(username:realm:password)` for
/// each algorithm. It is password-equivalent for Digest, so it is stored only sealed.
pub struct Verifier {
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

impl Verifier {
    pub fn new(username: &str, password: &str) -> Self {
        let input = Zeroizing::new(format!("{username}:{REALM}:{password}"));
        Verifier {
            ha1_md5: Algorithm::Md5.hash_hex(input.as_bytes()),
            ha1_sha256: Algorithm::Sha256.hash_hex(input.as_bytes()),
        }
    }

    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(format!("{}:{}", self.ha1_md5, self.ha1_sha256).into_bytes())
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(b).ok()?;
        let (md5, sha) = s.split_once(':')?;
        Some(Verifier { ha1_md5: md5.to_owned(), ha1_sha256: sha.to_owned() })
    }

    fn ha1(&self, alg: Algorithm) -> &str {
        match alg {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.ha1_md5.zeroize();
        self.ha1_sha256.zeroize();
    }
}

/// The parsed `Authorization: Digest ...` header.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
}

/// Parses the `Digest` credentials; `None` for anything that is not well formed.
pub fn parse_authorization(header: &str) -> Option<Credentials> {
    let rest = header.trim_start();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut creds = Credentials::default();
    for (k, v) in parse_params(params)? {
        let slot = match k.to_ascii_lowercase().as_str() {
            "username" => &mut creds.username,
            "realm" => &mut creds.realm,
            "nonce" => &mut creds.nonce,
            "uri" => &mut creds.uri,
            "response" => &mut creds.response,
            "algorithm" => {
                creds.algorithm = Some(v);
                continue;
            }
            "qop" => {
                creds.qop = Some(v);
                continue;
            }
            "nc" => {
                creds.nc = Some(v);
                continue;
            }
            "cnonce" => {
                creds.cnonce = Some(v);
                continue;
            }
            "opaque" => {
                creds.opaque = Some(v);
                continue;
            }
            _ => continue,
        };
        *slot = v;
    }
    if creds.username.is_empty() || creds.nonce.is_empty() || creds.response.is_empty() || creds.uri.is_empty() {
        return None;
    }
    Some(creds)
}

/// `key=value` or `key="quoted, value"` pairs separated by commas.
fn parse_params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return None;
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim_end().to_owned();
        }
        if out.len() > 32 || value.len() > 8192 {
            return None;
        }
        out.push((key, value));
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Credentials are right and fresh.
    Accepted,
    /// The response matches but the nonce expired or came from another server run: retry.
    Stale,
    /// Anything else.
    Rejected,
}

type HmacSha256 = Hmac<Sha256>;

pub struct DigestAuth {
    nonce_key: Zeroizing<[u8; 32]>,
    nonce_ttl: Duration,
    seen: Mutex<HashMap<String, (u64, u32)>>,
}

impl DigestAuth {
    pub fn new(nonce_ttl: Duration) -> Self {
        DigestAuth { nonce_key: Zeroizing::new(rand::random()), nonce_ttl, seen: Mutex::new(HashMap::new()) }
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    fn mac(&self, body: &[u8]) -> [u8; 16] {
        let mut mac = HmacSha256::new_from_slice(&*self.nonce_key).expect("any key length");
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    pub fn new_nonce(&self) -> String {
        let mut raw = Vec::with_capacity(36);
        raw.extend_from_slice(&Self::now().to_be_bytes());
        raw.extend_from_slice(&rand::random::<[u8; 12]>());
        let tag = self.mac(&raw);
        raw.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The nonce's issue time, if this server run issued it.
    fn nonce_issued(&self, nonce: &str) -> Option<u64> {
        let raw = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        if raw.len() != 36 {
            return None;
        }
        let (body, tag) = raw.split_at(20);
        if !bool::from(self.mac(body).ct_eq(tag)) {
            return None;
        }
        Some(u64::from_be_bytes(body[..8].try_into().ok()?))
    }

    /// The `WWW-Authenticate` value, in the exact shape Atlas's Go client accepts.
    pub fn challenge(&self, stale: bool) -> String {
        format!(
            "Digest realm=\"{REALM}\", domain=\"\", nonce=\"{}\", algorithm=MD5, qop=\"auth\", stale={}",
            self.new_nonce(),
            if stale { "true" } else { "false" }
        )
    }

    /// Verifies `creds` for a request with `method` and raw request target `target`.
    pub fn verify(&self, creds: &Credentials, verifier: &Verifier, method: &str, target: &str) -> Outcome {
        let Some(alg) = Algorithm::parse(creds.algorithm.as_deref()) else {
            return Outcome::Rejected;
        };
        if creds.realm != REALM || !uri_matches(&creds.uri, target) {
            return Outcome::Rejected;
        }
        let (Some(qop), Some(nc), Some(cnonce)) = (&creds.qop, &creds.nc, &creds.cnonce) else {
            return Outcome::Rejected;
        };
        if qop != "auth" || nc.len() != 8 {
            return Outcome::Rejected;
        }
        let Ok(nc_value) = u32::from_str_radix(nc, 16) else {
            return Outcome::Rejected;
        };
        let ha2 = alg.hash_hex(format!("{method}:{}", creds.uri).as_bytes());
        let expected =
            alg.hash_hex(format!("{}:{}:{nc}:{cnonce}:{qop}:{ha2}", verifier.ha1(alg), creds.nonce).as_bytes());
        if !bool::from(expected.as_bytes().ct_eq(creds.response.to_ascii_lowercase().as_bytes())) {
            return Outcome::Rejected;
        }
        let now = Self::now();
        let Some(issued) = self.nonce_issued(&creds.nonce) else {
            return Outcome::Stale;
        };
        if now.saturating_sub(issued) > self.nonce_ttl.as_secs() || issued > now + 60 {
            return Outcome::Stale;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 10_000 {
            let ttl = self.nonce_ttl.as_secs();
            seen.retain(|_, (at, _)| now.saturating_sub(*at) <= ttl);
        }
        match seen.get_mut(&creds.nonce) {
            Some((_, last)) if nc_value <= *last => Outcome::Rejected,
            Some((_, last)) => {
                *last = nc_value;
                Outcome::Accepted
            }
            None => {
                seen.insert(creds.nonce.clone(), (issued, nc_value));
                Outcome::Accepted
            }
        }
    }
}

/// The `uri` directive must name the request target; some clients send it absolute.
fn uri_matches(uri: &str, target: &str) -> bool {
    if uri == target {
        return true;
    }
    if let Some(rest) = uri.strip_prefix("http://").or_else(|| uri.strip_prefix("https://")) {
        if let Some(i) = rest.find('/') {
            return &rest[i..] == target;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn respond(alg: Algorithm, v: &Verifier, user: &str, nonce: &str, uri: &str, nc: &str) -> Credentials {
        let ha2 = alg.hash_hex(format!("GET:{uri}").as_bytes());
        let response = alg.hash_hex(format!("{}:{nonce}:{nc}:abc:auth:{ha2}", v.ha1(alg)).as_bytes());
        Credentials {
            username: user.into(),
            realm: REALM.into(),
            nonce: nonce.into(),
            uri: uri.into(),
            response,
            algorithm: Some(if alg == Algorithm::Md5 { "MD5" } else { "SHA-256" }.into()),
            qop: Some("auth".into()),
            nc: Some(nc.into()),
            cnonce: Some("abc".into()),
            opaque: None,
        }
    }

    #[test]
    fn accepts_both_algorithms_and_refuses_replay() {
        let auth = DigestAuth::new(Duration::from_secs(300));
        let v = Verifier::new("user", "pass");
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let nonce = auth.new_nonce();
            let c = respond(alg, &v, "user", &nonce, "/x?y=1", "00000001");
            assert_eq!(auth.verify(&c, &v, "GET", "/x?y=1"), Outcome::Accepted);
            assert_eq!(auth.verify(&c, &v, "GET", "/x?y=1"), Outcome::Rejected, "replayed nc");
            let c2 = respond(alg, &v, "user", &nonce, "/x?y=1", "00000002");
            assert_eq!(auth.verify(&c2, &v, "GET", "/x?y=1"), Outcome::Accepted);
            assert_eq!(auth.verify(&c2, &v, "GET", "/other"), Outcome::Rejected, "uri mismatch");
        }
    }

    #[test]
    fn wrong_password_rejected_and_foreign_nonce_stale() {
        let auth = DigestAuth::new(Duration::from_secs(300));
        let v = Verifier::new("user", "pass");
        let wrong = Verifier::new("user", "nope");
        let nonce = auth.new_nonce();
        let c = respond(Algorithm::Md5, &wrong, "user", &nonce, "/x", "00000001");
        assert_eq!(auth.verify(&c, &v, "GET", "/x"), Outcome::Rejected);
        let other = DigestAuth::new(Duration::from_secs(300));
        let c = respond(Algorithm::Md5, &v, "user", &other.new_nonce(), "/x", "00000001");
        assert_eq!(auth.verify(&c, &v, "GET", "/x"), Outcome::Stale);
    }

    #[test]
    fn expired_nonce_is_stale() {
        let auth = DigestAuth::new(Duration::from_secs(0));
        let v = Verifier::new("u", "p");
        let mut raw = Vec::new();
        raw.extend_from_slice(&(DigestAuth::now() - 10).to_be_bytes());
        raw.extend_from_slice(&[7u8; 12]);
        let tag = auth.mac(&raw);
        raw.extend_from_slice(&tag);
        let nonce = URL_SAFE_NO_PAD.encode(raw);
        let c = respond(Algorithm::Md5, &v, "u", &nonce, "/x", "00000001");
        assert_eq!(auth.verify(&c, &v, "GET", "/x"), Outcome::Stale);
    }

    #[test]
    fn parses_headers_without_panicking() {
        let h = r#"Digest username="ab", realm="MMS Public API", nonce="n,1", uri="/a?b=c", response="ff", algorithm=MD5, qop=auth, nc=00000001, cnonce="c""#;
        let c = parse_authorization(h).unwrap();
        assert_eq!(c.nonce, "n,1");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        for bad in ["", "Digest", "Basic abc", "Digest username", "Digest username=\"unterminated", "Digest ==,,"] {
            assert!(parse_authorization(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn challenge_shape() {
        let c = DigestAuth::new(Duration::from_secs(1)).challenge(false);
        let body = c.strip_prefix("Digest ").unwrap();
        let keys: Vec<&str> = body.split(", ").map(|p| p.split('=').next().unwrap()).collect();
        assert_eq!(keys, ["realm", "domain", "nonce", "algorithm", "qop", "stale"]);
    }
}
