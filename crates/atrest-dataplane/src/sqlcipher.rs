//! SQLCipher connections opened with a raw 256-bit key, and re-encryption by `sqlcipher_export`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{DataError, Result};
use crate::keys::Key32;

/// SQLite's page cache per open database, in KiB. It holds decrypted pages, as WiredTiger's cache
/// does under MongoDB's encryption at rest: a page of the working set is decrypted and
/// authenticated once, not on every read. SQLite fills it as pages are used, up to this size.
pub(crate) const PAGE_CACHE_KIB: u32 = 64 * 1024;

/// Opens `path` keyed with `key` (`PRAGMA key = "x'<hex>'"`: no KDF), checks that the key decrypts
/// it, then sets WAL (SQLCipher encrypts WAL pages), `synchronous=FULL`, `temp_store=MEMORY` and
/// a page cache of [`PAGE_CACHE_KIB`].
/// With `create == false` a missing file is an error and nothing is written before the key is
/// verified, so a wrong key leaves the file untouched.
pub(crate) fn open_keyed(path: &Path, key: &Key32, create: bool) -> Result<Connection> {
    open_with(path, Some(key), create)
}

/// [`open_keyed`], or with `None` the same connection without the page cipher: only the
/// benchmarks' encryption-off baseline ([`crate::baseline`]) passes `None`.
pub(crate) fn open_with(path: &Path, key: Option<&Key32>, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    if let Some(key) = key {
        // SQLCipher always wipes and locks its own key, HMAC key and page buffers. Its global
        // `cipher_memory_security` would also `mlock` every SQLite allocation: with page caches
        // of tens of MiB that pins hundreds of MiB and splits the heap into enough mappings to
        // exhaust `vm.max_map_count` (measured: 58,000 of 65,530 in the data-plane benchmark),
        // after which any `mmap` fails. Off, explicitly: the rest is documents, not keys.
        conn.execute_batch("PRAGMA cipher_memory_security = OFF;")?;
        // sqlite3_key with the literal `x'<hex>'` is what `PRAGMA key = "x'<hex>'"` does, minus
        // the copies of the SQL text; SQLCipher keeps the key in its own (wiped) memory.
        let literal = key.sqlcipher_literal();
        // SAFETY: the handle is a live connection owned by `conn`; the buffer is valid for
        // `len` bytes for the duration of the call, which copies it.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_key(conn.handle(), literal.as_ptr().cast(), literal.len() as std::os::raw::c_int)
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            return Err(DataError::Storage(format!("sqlite3_key failed with code {rc}")));
        }
    }
    // Reading the schema decrypts page 1 (and checks its HMAC): a wrong key fails here.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(DataError::Storage(format!("journal_mode is {mode}, not wal")));
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{PAGE_CACHE_KIB};"
    ))?;
    Ok(conn)
}

/// Copies the whole main database of `conn` into a new file `dest` encrypted under `key`.
pub(crate) fn export(conn: &Connection, dest: &Path, key: &Key32) -> Result<()> {
    let dest = dest.to_str().ok_or_else(|| DataError::Storage("database path is not UTF-8".into()))?;
    // An empty file is an empty database; the main connection may lack SQLITE_OPEN_CREATE,
    // which ATTACH inherits.
    std::fs::File::create(dest)?;
    let literal = key.sqlcipher_literal();
    conn.execute("ATTACH DATABASE ?1 AS atrest_reenc KEY ?2", rusqlite::params![dest, literal.as_str()])?;
    let result = conn.query_row("SELECT sqlcipher_export('atrest_reenc')", [], |_| Ok(())).map_err(DataError::from);
    let detached = conn.execute_batch("DETACH DATABASE atrest_reenc").map_err(DataError::from);
    result.and(detached)
}

/// The SQLCipher version linked in (`None` when SQLite is not SQLCipher).
pub fn cipher_version() -> Option<String> {
    let conn = Connection::open_in_memory().ok()?;
    conn.query_row("PRAGMA cipher_version", [], |r| r.get(0)).ok()
}
