//! The raw crypto ceiling (BENCHMARKS.md, "Raw crypto ceiling"), with criterion:
//!
//! * `aead`: AES-256-GCM (the `aes-gcm` crate that wraps database keys and service-key master
//!   keys), encrypt and decrypt of 4 KiB and 64 KiB buffers: bytes per second of the AEAD.
//! * `page_cipher`: SQLCipher's page cipher (AES-256-CBC + HMAC-SHA512 per 4 KiB page, OpenSSL's
//!   libcrypto) measured where it runs: a full read of a database with an 8-page cache, so every
//!   page comes from the (OS-cached) file through the codec, keyed vs the same file unkeyed. The
//!   difference of the two is the page cipher's cost.
//!
//! `cargo bench -p atrest-dataplane --bench crypto`; under `cargo test --benches` criterion runs
//! each benchmark once (the quick mode of scripts/test).

use std::hint::black_box;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use atrest_dataplane::baseline::Storage;
use atrest_dataplane::Key32;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::json;

fn aead(c: &mut Criterion) {
    let cipher = Aes256Gcm::new(Key32::random().expose().into());
    let nonce = Nonce::from_slice(&[7u8; 12]);
    let mut g = c.benchmark_group("aead_aes256gcm");
    for size in [4096usize, 65536] {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5au8; size];
        g.bench_with_input(BenchmarkId::new("encrypt", size), &size, |b, _| {
            b.iter(|| black_box(cipher.encrypt_in_place_detached(nonce, b"aad", &mut buf).expect("encrypt")))
        });
        let mut sealed = vec![0x5au8; size];
        let tag = cipher.encrypt_in_place_detached(nonce, b"aad", &mut sealed).expect("encrypt");
        g.bench_with_input(BenchmarkId::new("decrypt", size), &size, |b, _| {
            b.iter(|| {
                let mut work = sealed.clone();
                cipher.decrypt_in_place_detached(nonce, b"aad", &mut work, &tag).expect("authentic");
                black_box(work)
            })
        });
    }
    g.finish();
}

fn page_cipher(c: &mut Criterion) {
    // 16 MiB of 1 KB documents: big enough that an 8-page cache holds nothing, small enough
    // for the quick mode.
    let dir = tempfile::tempdir().expect("tempdir");
    let key = Key32::random();
    let docs = |batch: usize| -> Vec<serde_json::Value> {
        (0..1000).map(|i| json!({"n": batch * 1000 + i, "pad": "p".repeat(1000)})).collect()
    };
    let mut g = c.benchmark_group("page_cipher_full_read");
    for (name, page_key) in [("sqlcipher", Some(&key)), ("unencrypted", None)] {
        let db = Storage::open(&dir.path().join(format!("{name}.sqlite3")), page_key).expect("open");
        for batch in 0..16 {
            db.insert_many("d", docs(batch)).expect("insert");
        }
        db.checkpoint().expect("checkpoint");
        let bytes = db.scan("d", 8).expect("scan");
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(name, |b| b.iter(|| black_box(db.scan("d", 8).expect("scan"))));
    }
    g.finish();
}

criterion_group!(benches, aead, page_cipher);
criterion_main!(benches);
