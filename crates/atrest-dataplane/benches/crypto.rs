//! The raw crypto ceiling (BENCHMARKS.md, "Raw crypto ceiling"), with criterion:
//!
//! * `aead`: AES-256-GCM (the `aes-gcm` crate that wraps database keys and service-key master
//!   keys), encrypt and decrypt of 4 KiB and 64 KiB buffers: bytes per second of the AEAD.
//! * `page_cipher`: SQLCipher's page cipher (AES-256-CBC + HMAC-SHA512 per 4 KiB page, OpenSSL's
//!   libcrypto) measured where it runs: a full read of a database with an 8-page cache, so every
//!   page comes from the (OS-cached) file through the codec, keyed vs the same file unkeyed. The
//!   difference of the two is the page cipher's cost.
//! * `page_hmac_insert`: what a page HMAC of SHA-256 instead of SQLCipher's default SHA-512 would
//!   buy on writes (BENCHMARKS.md section 1, "What would close it"): a transaction of 100
//!   random-key ~1 KB rows (the index pages it dirties are spread like `_id`s), with SQLite's
//!   own connection settings as atrest opens a database (WAL, `synchronous=FULL`, 64 MiB
//!   cache), unencrypted vs HMAC-SHA512 (atrest today) vs HMAC-SHA256. Raw `rusqlite`: the
//!   HMAC choice is not a product option.
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

fn page_hmac_insert(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = Key32::random();
    let pad = "p".repeat(1000);
    let mut g = c.benchmark_group("page_hmac_insert");
    g.throughput(Throughput::Elements(100));
    for (name, hmac) in
        [("unencrypted", None), ("hmac_sha512", Some("HMAC_SHA512")), ("hmac_sha256", Some("HMAC_SHA256"))]
    {
        let mut conn = rusqlite::Connection::open(dir.path().join(format!("{name}.sqlite3"))).expect("open");
        if let Some(hmac) = hmac {
            conn.execute_batch(&format!(
                "PRAGMA cipher_memory_security = OFF; PRAGMA key = \"x'{}'\"; PRAGMA cipher_hmac_algorithm = {hmac};",
                hex::encode(key.expose())
            ))
            .expect("key");
            let set: String = conn.query_row("PRAGMA cipher_hmac_algorithm", [], |r| r.get(0)).expect("hmac");
            assert_eq!(set, hmac, "SQLCipher took the HMAC setting");
        }
        let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).expect("wal");
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;
             CREATE TABLE d (id TEXT PRIMARY KEY, doc TEXT NOT NULL);",
        )
        .expect("schema");
        g.bench_function(name, |b| {
            b.iter(|| {
                let tx = conn.transaction().expect("begin");
                for _ in 0..100 {
                    let id = hex::encode(rand::random::<[u8; 12]>());
                    tx.execute("INSERT INTO d VALUES (?1, ?2)", rusqlite::params![id, pad]).expect("insert");
                }
                tx.commit().expect("commit")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, aead, page_cipher, page_hmac_insert);
criterion_main!(benches);
