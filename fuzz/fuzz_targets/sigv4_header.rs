//! The SigV4 `Authorization` header and the request it signs, as the embedded AWS checks every
//! request: parse, then verify against a known secret (never panics, never accepts a forgery).
#![no_main]

use aws_emulator::sigv4::{parse_authorization, verify, SignedRequest, SigningKeys};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fuzz_target!(|data: &[u8]| {
    // Authorization header, X-Amz-Date, path, body: separated by NUL bytes.
    let mut parts = data.splitn(4, |b| *b == 0);
    let header = parts.next().unwrap_or_default();
    let date = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let Ok(header) = std::str::from_utf8(header) else { return };
    let Ok(auth) = parse_authorization(header) else { return };
    let _ = auth.scope();
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(date) {
        headers.insert("x-amz-date", v);
    }
    headers.insert("host", http::HeaderValue::from_static("127.0.0.1:4566"));
    let path = String::from_utf8_lossy(path);
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (path.into_owned(), None),
    };
    let req = SignedRequest { method: "POST", path: &path, query: query.as_deref(), headers: &headers, body };
    let now = aws_emulator::sigv4::parse_amz_date(&String::from_utf8_lossy(date))
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    let verdict = verify(&req, &auth, SECRET, now, std::time::Duration::from_secs(300), &SigningKeys::default());
    // A fuzzer cannot know HMAC-SHA256 under the secret.
    assert!(verdict.is_err(), "forged signature accepted: {header}");
});
