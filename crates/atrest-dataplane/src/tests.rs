//! The data plane's tests: plaintext never on disk, locking, KMS call counts, rotation without
//! rewriting data, crash-safe re-encryption (in child processes that abort), parser fuzzing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::keyring::Keyring;
use crate::*;

const MARKER: &str = "ATREST-PLAINTEXT-MARKER-5f1d";

fn service_key(id: &str, key: [u8; 32]) -> Arc<CountingWrapper> {
    let inner = Arc::new(ServiceKeyWrapper::new(Key32::from_slice(&key).unwrap(), id));
    Arc::new(CountingWrapper::new(inner))
}

fn random_key() -> [u8; 32] {
    *Key32::random().expose()
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() || haystack.len() < needle.len() {
        return false;
    }
    let first = needle[0];
    let last = haystack.len() - needle.len();
    let mut i = 0;
    while i <= last {
        match haystack[i..=last].iter().position(|&b| b == first) {
            None => return false,
            Some(off) => {
                i += off;
                if &haystack[i..i + needle.len()] == needle {
                    return true;
                }
                i += 1;
            }
        }
    }
    false
}

/// Every (file, needle name) where a needle occurs in a file under `root`.
fn plaintext_hits(root: &Path, needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut hits = Vec::new();
    for f in files_under(root) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        for (name, needle) in needles {
            if contains(&bytes, needle) {
                hits.push(format!("{} contains {name}", f.display()));
            }
        }
        if bytes.starts_with(b"SQLite format 3\0") {
            hits.push(format!("{} is a plaintext SQLite file", f.display()));
        }
    }
    hits
}

fn key_needles(keys: &[Vec<u8>]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        out.push((format!("key {i} (raw)"), k.clone()));
        out.push((format!("key {i} (hex)"), hex::encode(k).into_bytes()));
        out.push((format!("key {i} (HEX)"), hex::encode_upper(k).into_bytes()));
    }
    out
}

fn hash_db_files(root: &Path) -> BTreeMap<PathBuf, String> {
    files_under(root)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sqlite3"))
        .map(|p| {
            let h = hex::encode(Sha256::digest(std::fs::read(&p).unwrap()));
            (p, h)
        })
        .collect()
}

fn all(plane: &DataPlane, c: &str, db: &str, coll: &str) -> Result<Vec<Value>> {
    plane.find(c, db, coll, &json!({}), &FindOptions::default())
}

#[test]
fn sqlcipher_is_linked() {
    let v = cipher_version().expect("SQLCipher is linked in");
    assert!(v.starts_with('4'), "SQLCipher 4 expected, got {v}");
}

#[tokio::test]
async fn ten_thousand_documents_leave_no_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let plane = DataPlane::new(root.clone());
    let w = service_key("svc", random_key());
    plane.create_cluster("c1", &["us-east-1", "eu-west-1"], &*w).await.unwrap();

    let n = 10_000usize;
    let t = Instant::now();
    for batch in 0..(n / 500) {
        let docs: Vec<Value> = (0..500)
            .map(|j| {
                let i = batch * 500 + j;
                json!({"n": i, "group": i % 10, "secret": format!("{MARKER}-{i:05}"), "pad": "x".repeat(100)})
            })
            .collect();
        assert_eq!(plane.insert_many("c1", "app", "people", Value::Array(docs)).unwrap().len(), 500);
    }
    let insert_many_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut ids = Vec::new();
    for i in 0..1_000 {
        ids.push(
            plane.insert_one("c1", "app", "single", json!({"i": i, "secret": format!("{MARKER}-one-{i}")})).unwrap(),
        );
    }
    let insert_one_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let docs = all(&plane, "c1", "app", "people").unwrap();
    let scan_secs = t.elapsed().as_secs_f64();
    assert_eq!(docs.len(), n);
    for (i, d) in docs.iter().enumerate() {
        assert_eq!(d["n"], json!(i));
        assert_eq!(d["secret"], json!(format!("{MARKER}-{i:05}")));
        assert_eq!(d["_id"].as_str().unwrap().len(), 24);
    }
    let t = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        let d = plane.find_one("c1", "app", "single", &json!({"_id": id})).unwrap().unwrap();
        assert_eq!(d["i"], json!(i));
    }
    let point_secs = t.elapsed().as_secs_f64();
    println!(
        "throughput: insert_many (500/txn) {:.0} docs/s; insert_one (1 txn each, synchronous=FULL) {:.0} docs/s; \
         full scan {:.0} docs/s; find_one by _id {:.0} reads/s",
        n as f64 / insert_many_secs,
        1000.0 / insert_one_secs,
        n as f64 / scan_secs,
        1000.0 / point_secs
    );

    let keys = plane.keys_in_memory_for_test("c1");
    assert_eq!(keys.len(), 3, "two master keys and one database key");
    let mut needles = key_needles(&keys);
    needles.push(("marker".into(), MARKER.as_bytes().to_vec()));

    let wal = root.join("c1/db/app.sqlite3-wal");
    assert!(std::fs::metadata(&wal).map(|m| m.len() > 0).unwrap_or(false), "WAL in use while open");
    let hits = plaintext_hits(&root, &needles);
    assert!(hits.is_empty(), "while open: {hits:?}");

    plane.lock_cluster("c1").unwrap();
    let hits = plaintext_hits(&root, &needles);
    assert!(hits.is_empty(), "after lock: {hits:?}");
    assert!(!wal.exists(), "the WAL is checkpointed and removed on close");
    drop(plane);
    let hits = plaintext_hits(&root, &needles);
    assert!(hits.is_empty(), "after close: {hits:?}");
}

#[tokio::test]
async fn locked_cluster_refuses_and_reopens_intact() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let key = random_key();
    let w = service_key("svc", key);
    let plane = DataPlane::new(root.clone());
    plane.create_cluster("c1", &["us-east-1"], &*w).await.unwrap();
    assert!(plane.is_open("c1"));
    let docs: Vec<Value> = (0..100).map(|i| json!({"_id": format!("d{i}"), "i": i})).collect();
    plane.insert_many("c1", "shop", "orders", Value::Array(docs)).unwrap();

    plane.lock_cluster("c1").unwrap();
    assert!(!plane.is_open("c1"));
    let inaccessible = |r: Result<()>| assert!(matches!(r, Err(DataError::KeyInaccessible(_))), "{r:?}");
    inaccessible(all(&plane, "c1", "shop", "orders").map(|_| ()));
    inaccessible(plane.insert_one("c1", "shop", "orders", json!({"x": 1})).map(|_| ()));
    inaccessible(plane.insert_one("c1", "newdb", "orders", json!({"x": 1})).map(|_| ()));
    inaccessible(plane.update_one("c1", "shop", "orders", &json!({}), &json!({"$set": {"x": 1}})).map(|_| ()));
    inaccessible(plane.delete_many("c1", "shop", "orders", &json!({})).map(|_| ()));
    inaccessible(plane.rotate_master_key("c1", &*w).await.map(|_| ()));
    let stats = plane.stats("c1").unwrap();
    assert!(!stats.open);
    assert_eq!(stats.databases, 1);

    plane.open_cluster("c1", &*w).await.unwrap();
    assert_eq!(all(&plane, "c1", "shop", "orders").unwrap().len(), 100);

    // A restart: a new data plane on the same root.
    plane.lock_cluster("c1").unwrap();
    drop(plane);
    let plane = DataPlane::new(root.clone());
    assert!(matches!(all(&plane, "c1", "shop", "orders"), Err(DataError::KeyInaccessible(_))));
    let hashes = hash_db_files(&root);

    // The customer deletes the key: open is refused and the data stays.
    let w2 = service_key("svc", key);
    w2.set_denied(true);
    let e = plane.open_cluster("c1", &*w2).await.unwrap_err();
    assert!(matches!(e, DataError::KeyDenied { .. }), "{e:?}");
    assert!(!plane.is_open("c1"));
    assert_eq!(hash_db_files(&root), hashes, "data untouched");
    w2.set_unavailable(true);
    w2.set_denied(false);
    assert!(matches!(plane.open_cluster("c1", &*w2).await, Err(DataError::KeyUnavailable { .. })));
    // Another wrapper, or another service key under the same id, cannot open it.
    let other = service_key("other", random_key());
    assert!(matches!(plane.open_cluster("c1", &*other).await, Err(DataError::WrongWrapper { .. })));
    let impostor = service_key("svc", random_key());
    assert!(matches!(plane.open_cluster("c1", &*impostor).await, Err(DataError::Corrupt(_))));

    w2.set_unavailable(false);
    plane.open_cluster("c1", &*w2).await.unwrap();
    let docs = all(&plane, "c1", "shop", "orders").unwrap();
    assert_eq!(docs.len(), 100);
    assert_eq!(docs[42], json!({"_id": "d42", "i": 42}));

    // A validity check that finds the key denied locks the cluster at once.
    plane.verify_key("c1", &*w2).await.unwrap();
    w2.set_denied(true);
    assert!(matches!(plane.verify_key("c1", &*w2).await, Err(DataError::KeyDenied { .. })));
    assert!(!plane.is_open("c1"));
    assert!(matches!(all(&plane, "c1", "shop", "orders"), Err(DataError::KeyInaccessible(_))));
}

#[tokio::test]
async fn no_wrapper_calls_per_write_after_open() {
    let dir = tempfile::tempdir().unwrap();
    let w = service_key("svc", random_key());
    let plane = DataPlane::new(dir.path().to_path_buf());
    plane.create_cluster("c1", &["us-east-1", "us-west-2", "eu-west-1"], &*w).await.unwrap();
    assert_eq!((w.wraps(), w.unwraps()), (3, 0), "one wrap per region");
    plane.lock_cluster("c1").unwrap();
    plane.open_cluster("c1", &*w).await.unwrap();
    assert_eq!((w.wraps(), w.unwraps()), (3, 3), "one unwrap per region");
    let (calls, plane_calls) = (w.calls(), plane.wrapper_calls());

    let t = Instant::now();
    for i in 0..10_000u32 {
        // Writes into four databases (two created on the way) and a few collections.
        let db = ["a", "b", "c", "d"][(i % 4) as usize];
        plane.insert_one("c1", db, "events", json!({"i": i, "payload": format!("{MARKER}-{i}")})).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(plane.count("c1", "a", "events", &json!({})).unwrap(), 2_500);
    assert_eq!(w.calls(), calls, "no KMS call for 10,000 writes after open");
    assert_eq!(plane.wrapper_calls(), plane_calls);
    println!(
        "throughput: 10,000 insert_one (each its own durable transaction) in {secs:.2}s = {:.0} docs/s",
        10_000.0 / secs
    );
}

#[tokio::test]
async fn document_operations() {
    let dir = tempfile::tempdir().unwrap();
    let w = service_key("svc", random_key());
    let p = DataPlane::new(dir.path().to_path_buf());
    p.create_cluster("c1", &["r1"], &*w).await.unwrap();
    let ids = p
        .insert_many(
            "c1",
            "db",
            "people",
            json!([
                {"name": "ann", "age": 31, "tags": ["a", "b"], "addr": {"city": "Oslo"}},
                {"name": "bob", "age": 25, "tags": ["b"]},
                {"name": "cid", "age": 40.0},
                {"_id": 7, "name": "dan"},
            ]),
        )
        .unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(ids[3], json!(7));
    assert!(ids[0].as_str().unwrap().chars().all(|c| c.is_ascii_hexdigit()));

    let find = |f: Value, o: FindOptions| p.find("c1", "db", "people", &f, &o).unwrap();
    let names = |docs: Vec<Value>| docs.iter().map(|d| d["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(names(find(json!({"name": "bob"}), FindOptions::default())), ["bob"]);
    assert_eq!(names(find(json!({"tags": "b"}), FindOptions::default())), ["ann", "bob"]);
    assert_eq!(names(find(json!({"age": 40}), FindOptions::default())), ["cid"]);
    assert_eq!(names(find(json!({"addr.city": "Oslo"}), FindOptions::default())), ["ann"]);
    assert_eq!(names(find(json!({"_id": 7.0}), FindOptions::default())), ["dan"]);
    assert_eq!(names(find(json!({"_id": ids[1]}), FindOptions::default())), ["bob"]);
    assert_eq!(names(find(json!({"age": null}), FindOptions::default())), ["dan"]);
    assert_eq!(names(find(json!({}), FindOptions::default().sort(json!({"age": -1})))), ["cid", "ann", "bob", "dan"]);
    assert_eq!(names(find(json!({}), FindOptions::default().sort(json!({"age": 1})).limit(2))), ["dan", "bob"]);
    assert_eq!(
        names(find(json!({}), FindOptions::default().sort(json!([{"age": 1}, {"name": -1}])).skip(1).limit(2))),
        ["bob", "ann"]
    );
    assert!(p
        .find("c1", "db", "people", &json!({"age": {"$gt": 3}}), &FindOptions::default())
        .is_err_and(|e| matches!(e, DataError::InvalidFilter(_))));
    assert!(matches!(
        p.find("c1", "db", "people", &json!([1]), &FindOptions::default()),
        Err(DataError::InvalidFilter(_))
    ));
    assert!(matches!(
        p.find("c1", "db", "people", &json!({}), &FindOptions::default().sort(json!({"a": 1, "b": 1}))),
        Err(DataError::InvalidFilter(_))
    ));
    assert!(matches!(
        p.find("c1", "db", "people", &json!({}), &FindOptions::default().sort(json!({"a": 2}))),
        Err(DataError::InvalidFilter(_))
    ));

    // Missing database and collection read as empty and create nothing.
    assert!(all(&p, "c1", "nodb", "x").unwrap().is_empty());
    assert!(all(&p, "c1", "db", "nocoll").unwrap().is_empty());
    assert_eq!(p.list_databases("c1").unwrap(), ["db"]);

    let r = p
        .update_one(
            "c1",
            "db",
            "people",
            &json!({"name": "bob"}),
            &json!({"$set": {"age": 26, "x.y": 1}, "$unset": {"tags": ""}}),
        )
        .unwrap();
    assert_eq!(r, UpdateResult { matched: 1, modified: 1 });
    let bob = p.find_one("c1", "db", "people", &json!({"name": "bob"})).unwrap().unwrap();
    assert_eq!((bob["age"].clone(), bob["x"].clone(), bob.get("tags")), (json!(26), json!({"y": 1}), None));
    let r = p.update_one("c1", "db", "people", &json!({"name": "bob"}), &json!({"$set": {"age": 26}})).unwrap();
    assert_eq!(r, UpdateResult { matched: 1, modified: 0 });
    let r = p.update_one("c1", "db", "people", &json!({"name": "zed"}), &json!({"$set": {"age": 1}})).unwrap();
    assert_eq!(r, UpdateResult { matched: 0, modified: 0 });
    for bad in
        [json!({"age": 3}), json!({}), json!({"$inc": {"age": 1}}), json!({"$set": {"_id": 9}}), json!({"$set": 1})]
    {
        let e = p.update_one("c1", "db", "people", &json!({"name": "bob"}), &bad).unwrap_err();
        assert!(matches!(e, DataError::InvalidUpdate(_)), "{bad}: {e:?}");
    }

    assert!(matches!(p.insert_one("c1", "db", "people", json!({"_id": 7})), Err(DataError::DuplicateKey(_))));
    assert!(matches!(p.insert_one("c1", "db", "people", json!([1])), Err(DataError::InvalidDocument(_))));
    assert!(matches!(p.insert_one("c1", "db", "people", json!({"_id": [1]})), Err(DataError::InvalidDocument(_))));
    assert!(matches!(p.insert_one("c1", "db", "people", json!({"$x": 1})), Err(DataError::InvalidDocument(_))));
    assert!(matches!(
        p.insert_many("c1", "db", "people", json!([{"a": 1}, {"_id": 7}])),
        Err(DataError::DuplicateKey(_))
    ));
    assert_eq!(p.count("c1", "db", "people", &json!({"a": 1})).unwrap(), 0, "insert_many is all or nothing");

    assert_eq!(p.delete_one("c1", "db", "people", &json!({"tags": "b"})).unwrap(), 1);
    assert_eq!(p.delete_many("c1", "db", "people", &json!({"name": "nobody"})).unwrap(), 0);
    assert_eq!(p.delete_many("c1", "db", "people", &json!({})).unwrap(), 3);
    assert_eq!(p.list_collections("c1", "db").unwrap(), ["people"]);
    assert!(p.drop_collection("c1", "db", "people").unwrap());
    assert!(p.list_collections("c1", "db").unwrap().is_empty());

    for bad in ["", "a b", "../etc", "a/b", "é", "sqlite_master\"", &"x".repeat(65), "a.b"] {
        assert!(matches!(p.insert_one("c1", bad, "c", json!({})), Err(DataError::InvalidName { .. })), "{bad:?}");
        assert!(matches!(p.insert_one("c1", "db", bad, json!({})), Err(DataError::InvalidName { .. })), "{bad:?}");
        assert!(matches!(
            p.find("c1", bad, "c", &json!({}), &FindOptions::default()),
            Err(DataError::InvalidName { .. })
        ));
        assert!(matches!(p.create_cluster(bad, &["r"], &*w).await, Err(DataError::InvalidName { .. })));
    }
    assert!(matches!(p.create_cluster("c2", &["bad region"], &*w).await, Err(DataError::InvalidName { .. })));
    assert!(matches!(p.create_cluster("c2", &[], &*w).await, Err(DataError::InvalidName { .. })));
    assert!(matches!(p.create_cluster("c1", &["r1"], &*w).await, Err(DataError::ClusterExists(_))));
    assert!(matches!(p.stats("nope"), Err(DataError::ClusterNotFound(_))));
}

#[tokio::test]
async fn rotation_and_rewrap_leave_database_files_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let a = service_key("key-a", random_key());
    let p = DataPlane::new(root.clone());
    p.create_cluster("c1", &["us-east-1", "eu-west-1"], &*a).await.unwrap();
    for db in ["one", "two", "three"] {
        let docs: Vec<Value> = (0..300).map(|i| json!({"_id": i, "db": db})).collect();
        p.insert_many("c1", db, "items", Value::Array(docs)).unwrap();
    }
    let check = |p: &DataPlane| {
        for db in ["one", "two", "three"] {
            let docs = all(p, "c1", db, "items").unwrap();
            assert_eq!(docs.len(), 300);
            assert!(docs.iter().enumerate().all(|(i, d)| d == &json!({"_id": i, "db": db})));
        }
    };
    p.lock_cluster("c1").unwrap(); // closes the files: everything is checkpointed into them
    let before = hash_db_files(&root);
    assert_eq!(before.len(), 3);

    p.open_cluster("c1", &*a).await.unwrap();
    let calls = a.calls();
    assert_eq!(p.rotate_master_key("c1", &*a).await.unwrap(), 2);
    assert_eq!(a.calls() - calls, 2, "rotation: one wrap per region, nothing per database");
    assert_eq!(hash_db_files(&root), before, "rotation rewrote no database file");
    check(&p);
    let st = p.stats("c1").unwrap();
    assert_eq!((st.master_key_version, st.databases), (2, 3));
    p.lock_cluster("c1").unwrap();
    assert_eq!(hash_db_files(&root), before);

    let p = DataPlane::new(root.clone());
    p.open_cluster("c1", &*a).await.unwrap();
    check(&p);
    assert_eq!(p.rotate_master_key("c1", &*a).await.unwrap(), 3);
    p.lock_cluster("c1").unwrap();
    assert_eq!(hash_db_files(&root), before);

    // The customer changes keys: a → b. Works on a locked cluster.
    let b = service_key("key-b", random_key());
    let kr_before = Keyring::load(&root.join("c1/keyring")).unwrap().unwrap();
    p.rewrap_master_key("c1", &*a, &*b).await.unwrap();
    let kr_after = Keyring::load(&root.join("c1/keyring")).unwrap().unwrap();
    assert_eq!(kr_before.databases, kr_after.databases, "database keys untouched");
    assert_eq!(kr_after.masters.as_ref().unwrap().wrapper.key, "key-b");
    assert_eq!(kr_after.masters.as_ref().unwrap().version, 3);
    assert_eq!(hash_db_files(&root), before, "rewrap rewrote no database file");
    assert!(matches!(p.open_cluster("c1", &*a).await, Err(DataError::WrongWrapper { .. })));
    p.open_cluster("c1", &*b).await.unwrap();
    check(&p);
    // And back, while open.
    p.rewrap_master_key("c1", &*b, &*a).await.unwrap();
    check(&p);
    p.lock_cluster("c1").unwrap();
    assert_eq!(hash_db_files(&root), before);
    let p = DataPlane::new(root.clone());
    p.open_cluster("c1", &*a).await.unwrap();
    check(&p);
    // A denied old key cannot be rewrapped away from.
    a.set_denied(true);
    assert!(matches!(p.rewrap_master_key("c1", &*a, &*b).await, Err(DataError::KeyDenied { .. })));
}

#[tokio::test]
async fn destroy_cluster_shreds_keys_then_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let w = service_key("svc", random_key());
    let p = DataPlane::new(root.clone());
    p.create_cluster("c1", &["r1"], &*w).await.unwrap();
    p.insert_one("c1", "db", "c", json!({"s": MARKER})).unwrap();
    let old_keyring = std::fs::read(root.join("c1/keyring")).unwrap();
    p.destroy_cluster("c1").await.unwrap();
    assert!(!p.is_open("c1"));
    assert!(!root.join("c1/db").exists());
    let kr = Keyring::load(&root.join("c1/keyring")).unwrap().unwrap();
    assert!(kr.masters.is_none() && kr.databases.is_empty());
    assert!(std::fs::read(root.join("c1/keyring")).unwrap() != old_keyring);
    assert!(matches!(p.open_cluster("c1", &*w).await, Err(DataError::KeyDestroyed(_))));
    assert!(matches!(p.stats("c1"), Err(DataError::KeyDestroyed(_))));
    assert!(matches!(all(&p, "c1", "db", "c"), Err(DataError::KeyInaccessible(_))));
    assert_eq!(p.list_clusters().unwrap(), ["c1"]);
    // The id can be used again, for a new, empty cluster.
    p.create_cluster("c1", &["r1"], &*w).await.unwrap();
    assert!(all(&p, "c1", "db", "c").unwrap().is_empty());
}

// ----- re-encryption ---------------------------------------------------------------------------

const CHILD_ENV: &str = "ATREST_DATA_CHILD";

/// Seeds `c1` under `old` with databases alpha, beta, gamma (+ `big_docs` 1 KiB documents in
/// "big"); returns the expected documents by database.
async fn seed(root: &Path, old: &CountingWrapper, big_docs: usize) -> BTreeMap<String, Vec<Value>> {
    let p = DataPlane::new(root.to_path_buf());
    p.create_cluster("c1", &["us-east-1", "eu-west-1"], old).await.unwrap();
    let mut expected = BTreeMap::new();
    for (k, db) in ["alpha", "beta", "gamma"].iter().enumerate() {
        let docs: Vec<Value> = (0..200 * (k + 1))
            .map(|i| json!({"_id": format!("{db}-{i}"), "v": i, "s": format!("{MARKER}-{db}-{i}")}))
            .collect();
        p.insert_many("c1", db, "items", Value::Array(docs.clone())).unwrap();
        expected.insert(db.to_string(), docs);
    }
    if big_docs > 0 {
        let mut docs = Vec::new();
        for i in 0..big_docs {
            docs.push(json!({"_id": format!("big-{i}"), "v": i, "s": format!("{MARKER}-{i}-{}", "y".repeat(1000))}));
        }
        for chunk in docs.chunks(2000) {
            p.insert_many("c1", "big", "items", Value::Array(chunk.to_vec())).unwrap();
        }
        expected.insert("big".to_string(), docs);
    }
    p.lock_cluster("c1").unwrap();
    expected
}

fn check_all(p: &DataPlane, expected: &BTreeMap<String, Vec<Value>>) {
    for (db, docs) in expected {
        let got = all(p, "c1", db, "items").unwrap();
        assert_eq!(got.len(), docs.len(), "{db}");
        assert!(got == *docs, "{db}: documents differ");
    }
}

/// Runs `resume_reencryption` in a child process (this test binary) that aborts at `crash`
/// (`prepared`, `exported:<db>`, `renamed:<db>`, `done:<db>`, `sleep:<db>` = pause there, or
/// `none`).
fn spawn_child(root: &Path, old: [u8; 32], new: [u8; 32], crash: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tests::reencrypt_child_process", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{}|{}|{}|{}", root.display(), hex::encode(old), hex::encode(new), crash))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
#[ignore = "run by the re-encryption tests in a child process"]
fn reencrypt_child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let parts: Vec<&str> = spec.split('|').collect();
    let (root, old, new, crash) = (PathBuf::from(parts[0]), parts[1], parts[2], parts[3].to_string());
    let key = |h: &str| -> [u8; 32] { hex::decode(h).unwrap().try_into().unwrap() };
    let old = service_key("service-old", key(old));
    let new = service_key("service-new", key(new));
    let p = DataPlane::new(root);
    p.set_crash_hook(Some(Arc::new(move |point: &CrashPoint| {
        let name = match point {
            CrashPoint::Prepared => "prepared".to_string(),
            CrashPoint::Exported(db) => format!("exported:{db}"),
            CrashPoint::Renamed(db) => format!("renamed:{db}"),
            CrashPoint::DatabaseDone(db) => format!("done:{db}"),
        };
        if name == crash {
            std::process::abort();
        }
        if crash.strip_prefix("sleep:") == name.strip_prefix("exported:") && crash.starts_with("sleep:") {
            println!("PAUSED");
            std::thread::sleep(Duration::from_secs(60));
        }
    })));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(p.resume_reencryption("c1", &*old, &*new, |pr| println!("progress {pr:?}"))).unwrap();
    println!("FINISHED");
}

#[tokio::test]
async fn reencryption_survives_crashes_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let (old_key, new_key) = (random_key(), random_key());
    let old = service_key("service-old", old_key);
    let new = service_key("service-new", new_key);
    let expected = seed(&root, &old, 0).await;
    let old_keyring = std::fs::read(root.join("c1/keyring")).unwrap();
    let old_db_keys = {
        let p = DataPlane::new(root.clone());
        p.open_cluster("c1", &*old).await.unwrap();
        check_all(&p, &expected);
        let keys = p.keys_in_memory_for_test("c1");
        p.lock_cluster("c1").unwrap();
        keys
    };

    // Each child resumes where the previous one died, and dies at the next step.
    for crash in ["prepared", "exported:alpha", "renamed:alpha", "renamed:beta", "done:gamma"] {
        let out = spawn_child(&root, old_key, new_key, crash).wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(6),
            "child did not abort at {crash}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut needles = key_needles(&old_db_keys);
        needles.push(("marker".into(), MARKER.as_bytes().to_vec()));
        let hits = plaintext_hits(&root, &needles);
        assert!(hits.is_empty(), "after a crash at {crash}: {hits:?}");
        let st = DataPlane::new(root.clone()).stats("c1").unwrap();
        assert_eq!(st.reencryption_target.unwrap().key, "service-new");
    }
    let st = DataPlane::new(root.clone()).stats("c1").unwrap();
    assert_eq!(st.reencryption.unwrap().databases_done, 3);

    let p = DataPlane::new(root.clone());
    let seen = std::sync::Mutex::new(Vec::new());
    let done = p.resume_reencryption("c1", &*old, &*new, |pr| seen.lock().unwrap().push(pr)).await.unwrap();
    assert_eq!((done.databases_done, done.databases_total), (3, 3));
    assert_eq!(done.bytes_done, done.bytes_total);
    check_all(&p, &expected);
    let st = p.stats("c1").unwrap();
    assert!(st.reencryption.is_none());
    assert_eq!((st.wrapper.key.as_str(), st.master_key_version), ("service-new", 2));
    let new_keys = p.keys_in_memory_for_test("c1");
    assert!(new_keys.iter().all(|k| !old_db_keys.contains(k)), "new database keys");
    p.lock_cluster("c1").unwrap();
    // Resuming a finished switch (a control plane that crashed before recording it) only opens.
    let again = DataPlane::new(root.clone());
    let d = again.resume_reencryption("c1", &*old, &*new, |_| {}).await.unwrap();
    assert_eq!((d.databases_done, d.databases_total), (3, 3));
    assert_eq!(again.stats("c1").unwrap().master_key_version, 2);
    check_all(&again, &expected);
    again.lock_cluster("c1").unwrap();
    // Only the new wrapper opens it now.
    assert!(matches!(p.open_cluster("c1", &*old).await, Err(DataError::WrongWrapper { .. })));
    p.open_cluster("c1", &*new).await.unwrap();
    check_all(&p, &expected);
    p.lock_cluster("c1").unwrap();
    let mut needles = key_needles(&old_db_keys);
    needles.extend(key_needles(&new_keys));
    needles.push(("marker".into(), MARKER.as_bytes().to_vec()));
    assert!(plaintext_hits(&root, &needles).is_empty());

    // The old keys no longer open the new files: put the old keyring back beside them.
    std::fs::write(root.join("c1/keyring"), &old_keyring).unwrap();
    let p = DataPlane::new(root.clone());
    p.open_cluster("c1", &*old).await.unwrap();
    for db in expected.keys() {
        assert!(matches!(all(&p, "c1", db, "items"), Err(DataError::Corrupt(_))), "{db} opened with its old key");
    }
}

#[tokio::test]
async fn reencryption_with_reads_and_writes_going_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let old = service_key("service-old", random_key());
    let new = service_key("service-new", random_key());
    let mut expected = seed(&root, &old, 0).await;
    let p = DataPlane::new(root.clone());
    p.open_cluster("c1", &*old).await.unwrap();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (p, stop) = (p.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for db in ["alpha", "beta", "gamma"] {
                    let n = all(&p, "c1", db, "items").unwrap().len();
                    assert!(n >= 200, "{db}: {n}");
                    reads += 1;
                }
            }
            reads
        })
    };
    let calls = std::sync::atomic::AtomicU64::new(0);
    let done = p
        .reencrypt("c1", &*new, |pr| {
            // Writes into done and not-yet-done databases, and a new database, mid-way.
            let k = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            for db in ["alpha", "gamma", "delta"] {
                p.insert_one(
                    "c1",
                    db,
                    "items",
                    json!({"_id": format!("{db}-during-{k}"), "progress": pr.databases_done}),
                )
                .unwrap();
            }
        })
        .await
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().unwrap();
    assert!(reads > 0);
    let k = calls.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(done.databases_total, 4, "delta was created during the re-encryption");
    for db in ["alpha", "gamma", "delta"] {
        let e = expected.entry(db.to_string()).or_default();
        for i in 0..k {
            e.push(json!({"_id": format!("{db}-during-{i}"), "progress": i.min(3)}));
        }
    }
    let check = |p: &DataPlane| {
        for (db, docs) in &expected {
            let got = all(p, "c1", db, "items").unwrap();
            assert_eq!(got.len(), docs.len(), "{db}");
            let ids = |v: &[Value]| v.iter().map(|d| d["_id"].to_string()).collect::<std::collections::BTreeSet<_>>();
            assert_eq!(ids(&got), ids(docs), "{db}");
        }
    };
    check(&p);
    p.lock_cluster("c1").unwrap();
    let p = DataPlane::new(root.clone());
    p.open_cluster("c1", &*new).await.unwrap();
    check(&p);
    // Back to the first wrapper.
    let done = p.reencrypt("c1", &*old, |_| {}).await.unwrap();
    assert_eq!(done.databases_done, 4);
    p.lock_cluster("c1").unwrap();
    p.open_cluster("c1", &*old).await.unwrap();
    check(&p);
    assert_eq!(p.stats("c1").unwrap().master_key_version, 3);
}

/// Kills (SIGKILL) a child re-encrypting a ~20 MB database in the middle of its copy, then resumes.
#[tokio::test]
#[ignore = "slow: ~20 MB of documents"]
async fn reencryption_of_20_mb_killed_mid_copy_then_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let (old_key, new_key) = (random_key(), random_key());
    let old = service_key("service-old", old_key);
    let new = service_key("service-new", new_key);
    let t = Instant::now();
    let expected = seed(&root, &old, 20_000).await;
    let big = root.join("c1/db/big.sqlite3");
    println!("seeded {} bytes in {:.1}s", std::fs::metadata(&big).unwrap().len(), t.elapsed().as_secs_f64());
    assert!(std::fs::metadata(&big).unwrap().len() > 20_000_000);

    // Pause right after "big" is exported (the .reenc copy exists, not renamed), then kill -9.
    let mut child = spawn_child(&root, old_key, new_key, "sleep:big");
    let mut line = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    while !line.contains("PAUSED") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "child ended before pausing");
    }
    assert!(root.join("c1/db/big.sqlite3.reenc").exists());
    child.kill().unwrap();
    child.wait().unwrap();
    let hits = plaintext_hits(&root, &[("marker".into(), MARKER.as_bytes().to_vec())]);
    assert!(hits.is_empty(), "{hits:?}");

    // Then kill -9 at an arbitrary moment of a second attempt.
    let mut child = spawn_child(&root, old_key, new_key, "none");
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();

    let p = DataPlane::new(root.clone());
    let t = Instant::now();
    let done = p.resume_reencryption("c1", &*old, &*new, |pr| println!("{pr:?}")).await.unwrap();
    println!("resumed re-encryption finished in {:.1}s: {done:?}", t.elapsed().as_secs_f64());
    check_all(&p, &expected);
    assert!(!root.join("c1/db/big.sqlite3.reenc").exists());
    p.lock_cluster("c1").unwrap();
    p.open_cluster("c1", &*new).await.unwrap();
    check_all(&p, &expected);
}

// ----- parsers of outside bytes ----------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn wrapped_db_key_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = WrappedDbKey::parse(&bytes);
    }

    #[test]
    fn wrapped_db_key_parser_on_near_valid_bytes(
        version in any::<u32>(),
        region in "[a-z0-9-]{1,64}",
        flip in any::<usize>(),
        truncate in any::<usize>(),
    ) {
        let master = Key32::random();
        let key = Key32::random();
        let w = WrappedDbKey::wrap(&master, version, &region, "c1", "db", &key);
        let bytes = w.to_bytes();
        let parsed = WrappedDbKey::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &w);
        let unwrapped = parsed.unwrap(&master, "c1", "db").unwrap();
        prop_assert_eq!(unwrapped.expose(), key.expose());
        prop_assert!(parsed.unwrap(&master, "c1", "db2").is_none());
        prop_assert!(parsed.unwrap(&master, "c2", "db").is_none());
        prop_assert!(parsed.unwrap(&Key32::random(), "c1", "db").is_none());
        // Any single bit flip: parse fails or unwrap fails (the header is authenticated).
        let mut flipped = bytes.clone();
        let i = flip % flipped.len();
        flipped[i] ^= 1 << (flip % 8);
        if let Ok(f) = WrappedDbKey::parse(&flipped) {
            prop_assert!(f.unwrap(&master, "c1", "db").is_none());
        }
        let _ = WrappedDbKey::parse(&bytes[..truncate % bytes.len()]);
    }

    #[test]
    fn keyring_and_service_blob_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Keyring::decode(&bytes);
        let _ = parse_service_blob(&bytes);
        let mut framed = b"ATRK\x01".to_vec();
        framed.extend_from_slice(&bytes);
        let digest = Sha256::digest(&framed);
        framed.extend_from_slice(&digest);
        let _ = Keyring::decode(&framed);
    }

    #[test]
    fn service_wrapper_unwrap_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let w = ServiceKeyWrapper::new(Key32::random(), "svc");
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let r = rt.block_on(w.unwrap(&bytes, &BTreeMap::new()));
        prop_assert!(r.is_err());
    }
}

#[tokio::test]
async fn service_wrapper_binds_the_context() {
    let w = ServiceKeyWrapper::new(Key32::random(), "svc");
    let ctx =
        |r: &str| BTreeMap::from([("cluster".to_string(), "c1".to_string()), ("region".to_string(), r.to_string())]);
    let blob = w.wrap(b"0123456789abcdef0123456789abcdef", &ctx("r1")).await.unwrap();
    assert_eq!(blob[0], SERVICE_BLOB_V1);
    assert_eq!(&w.unwrap(&blob, &ctx("r1")).await.unwrap()[..], b"0123456789abcdef0123456789abcdef");
    assert!(matches!(w.unwrap(&blob, &ctx("r2")).await, Err(WrapError::Malformed(_))));
    assert_eq!(format!("{:?}", Key32::random()), "Key32(<redacted>)");
}

/// The HTTP layer spawns these futures on a multi-threaded runtime: they must be `Send`.
#[allow(dead_code)]
fn key_operation_futures_are_send(p: &DataPlane, w: &dyn MasterKeyWrapper) {
    fn send<T: Send>(_: T) {}
    send(p.create_cluster("c", &["r"], w));
    send(p.open_cluster("c", w));
    send(p.verify_key("c", w));
    send(p.rotate_master_key("c", w));
    send(p.rewrap_master_key("c", w, w));
    send(p.reencrypt("c", w, |_| {}));
    send(p.resume_reencryption("c", w, w, |_| {}));
    send(p.destroy_cluster("c"));
    fn shared<T: Send + Sync + Clone + 'static>() {}
    shared::<DataPlane>();
}

/// Page caches of tens of MiB must not cost the process its memory maps: SQLCipher's
/// `cipher_memory_security` would `mlock` every SQLite allocation, each lock splitting the heap's
/// mappings, until `vm.max_map_count` (65,530 by default) is reached and every `mmap` (a new
/// thread's stack, a large allocation) fails.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn full_page_caches_keep_the_memory_maps_few() {
    let maps = || std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
    let locked_kib = || -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmLck:")).unwrap().to_owned();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let plane = DataPlane::new(dir.path().join("data"));
    let w = service_key("svc", random_key());
    plane.create_cluster("c1", &["us-east-1"], &*w).await.unwrap();
    let (before, locked_before) = (maps(), locked_kib());
    let pad = "p".repeat(1000);
    for db in ["a", "b"] {
        for chunk in 0..20 {
            let docs: Vec<Value> = (0..1000).map(|i| json!({"_id": chunk * 1000 + i, "pad": pad})).collect();
            plane.insert_many("c1", db, "docs", Value::Array(docs)).unwrap();
        }
    }
    let (after, locked_after) = (maps(), locked_kib());
    // ~60 MB of pages now sit in the two databases' caches; SQLCipher locks only its own key and
    // page buffers (a few KiB per database).
    assert!(
        locked_after < locked_before + 4 * 1024,
        "locked memory grew from {locked_before} KiB to {locked_after} KiB"
    );
    assert!(after < before + 2_000, "memory maps grew from {before} to {after}");
    assert!(plane.find_one("c1", "a", "docs", &json!({"_id": 19_999})).unwrap().is_some());
}
