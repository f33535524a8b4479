//! Benchmarks only: one database of the data plane's document storage (the same SQL in
//! `docs.rs`, the same connection settings) outside any cluster, with or without the page
//! cipher, so that BENCHMARKS.md can put a number on what encryption costs.
//!
//! Not a product option: [`DataPlane`](crate::DataPlane) has no unencrypted mode, nothing in
//! atrest calls this module, and it holds no cluster's key.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;
use serde_json::Value;

use crate::docs::{self, FindOptions};
use crate::error::{DataError, Result};
use crate::keys::Key32;
use crate::sqlcipher::open_with;

/// One database file behind one mutex, as a cluster database is behind its slot's mutex.
#[doc(hidden)]
pub struct Storage {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Storage {
    /// Creates (or opens) `path`: under `page_key` as a cluster database is, or with `None` as
    /// plain SQLite, the encryption-off baseline.
    pub fn open(path: &Path, page_key: Option<&Key32>) -> Result<Self> {
        Ok(Storage { conn: Mutex::new(open_with(path, page_key, true)?), path: path.to_owned() })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert_many(&self, coll: &str, docs: Vec<Value>) -> Result<Vec<Value>> {
        docs::check_name("collection", coll)?;
        docs::insert(&mut self.conn(), coll, docs)
    }

    pub fn find_one(&self, coll: &str, filter: &Value) -> Result<Option<Value>> {
        docs::check_name("collection", coll)?;
        Ok(docs::find(&self.conn(), coll, filter, &FindOptions::default().limit(1))?.pop())
    }

    /// Reads every document of `coll` with a page cache of `cache_pages` pages, so that (nearly)
    /// every page comes from the file and goes through the page cipher. Returns the bytes of
    /// the database file (its write-ahead log checkpointed first).
    pub fn scan(&self, coll: &str, cache_pages: u32) -> Result<u64> {
        docs::check_name("collection", coll)?;
        let conn = self.conn();
        conn.execute_batch(&format!("PRAGMA cache_size = {cache_pages}"))?;
        let _: Option<i64> = conn.query_row(&format!("SELECT sum(length(doc)) FROM \"c_{coll}\""), [], |r| r.get(0))?;
        Ok(std::fs::metadata(&self.path)?.len())
    }

    /// Folds the write-ahead log into the database file.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| DataError::Storage(e.to_string()))
    }
}
