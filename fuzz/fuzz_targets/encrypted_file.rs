//! atrest's encrypted file formats as read back from disk: the cluster keyring (`ATRK`), wrapped
//! database keys, service-key blobs, and values sealed under the server secret (never panics,
//! never opens what was not sealed with the key).
#![no_main]

use atrest_dataplane::{parse_service_blob, Keyring, WrappedDbKey};
use atrest_keys::Sealer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = Keyring::decode(data) {
        // Whatever decodes re-encodes to bytes that decode to the same keyring.
        let again = Keyring::decode(&k.encode().expect("encodes")).expect("round trip");
        assert_eq!(again, k);
    }
    if let Ok(w) = WrappedDbKey::parse(data) {
        assert_eq!(WrappedDbKey::parse(&w.to_bytes()).expect("round trip"), w);
    }
    let _ = parse_service_blob(data);
    let sealer = Sealer::from_key(&[9u8; 32]);
    assert!(sealer.open(data, b"api-key:fuzz").is_err(), "forged sealed value opened");
});
