//! The `Authorization: Digest ...` header of every Admin API request: parsed, then verified
//! against a known key as the server does (never panics, never accepts a forged response).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use atrest_api::auth::digest::{parse_authorization, DigestAuth, Outcome, Verifier};
use libfuzzer_sys::fuzz_target;

fn auth() -> &'static (DigestAuth, Verifier) {
    static A: OnceLock<(DigestAuth, Verifier)> = OnceLock::new();
    A.get_or_init(|| (DigestAuth::new(Duration::from_secs(300)), Verifier::new("fuzzuser", "fuzz-password")))
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    let Some(creds) = parse_authorization(header) else { return };
    let (digest, verifier) = auth();
    for method in ["GET", "POST"] {
        let outcome = digest.verify(&creds, verifier, method, &creds.uri);
        // Without the password no response can be right: the nonce was never issued.
        assert!(!matches!(outcome, Outcome::Accepted), "forged Digest response accepted: {header}");
    }
});
