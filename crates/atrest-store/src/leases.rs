//! Queries of leases (SQLite: one process, its clock).

use atrest_core::Result;
use rusqlite::{params, Connection};

use crate::codec::instant;
use crate::sqlite::db_err;
use crate::Lease;

pub fn acquire(c: &Connection, name: &str, holder: &str, url: &str, ttl: std::time::Duration) -> Result<bool> {
    let now = time::OffsetDateTime::now_utc();
    let changed = c
        .execute(
            "INSERT INTO leases (name, holder, holder_url, expires_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, holder_url = excluded.holder_url,
                 expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at < ?5",
            params![name, holder, url, instant(now + ttl), instant(now)],
        )
        .map_err(db_err)?;
    Ok(changed == 1)
}

pub fn release(c: &Connection, name: &str, holder: &str) -> Result<()> {
    c.execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", params![name, holder]).map_err(db_err)?;
    Ok(())
}

pub fn list(c: &Connection, prefix: &str) -> Result<Vec<Lease>> {
    let now = instant(time::OffsetDateTime::now_utc());
    let mut stmt = c
        .prepare(
            "SELECT name, holder, holder_url, expires_at >= ?2 FROM leases
             WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![prefix, now], |r| {
            Ok(Lease { name: r.get(0)?, holder: r.get(1)?, holder_url: r.get(2)?, live: r.get(3)? })
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db_err)?;
    Ok(rows)
}
