//! KMS ciphertext blobs as `Decrypt` and `ReEncrypt` receive them: parsed and opened with a key
//! material (never panics, never opens bytes that were not sealed with it).
#![no_main]

use std::collections::BTreeMap;

use aws_emulator::ciphertext::{decrypt, parse};
use libfuzzer_sys::fuzz_target;

const MATERIAL: [u8; 32] = [7; 32];

fuzz_target!(|data: &[u8]| {
    let Ok(blob) = parse(data) else { return };
    let mut context = BTreeMap::new();
    assert!(decrypt(&MATERIAL, &blob, &context).is_err(), "a forged blob opened");
    context.insert("atrest".to_owned(), "fuzz".to_owned());
    assert!(decrypt(&MATERIAL, &blob, &context).is_err(), "a forged blob opened");
});
