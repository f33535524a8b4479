//! Queries of clusters: the record is the domain struct as JSON, with name and project indexed.

use atrest_core::clusters::Cluster;
use atrest_core::paging::Page;
use atrest_core::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

use crate::codec::{json_of, json_text};
use crate::sqlite::db_err;

fn collect(c: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Cluster>> {
    let mut stmt = c.prepare(sql).map_err(db_err)?;
    let rows: Vec<String> =
        stmt.query_map(p, |r| r.get(0)).map_err(db_err)?.collect::<rusqlite::Result<_>>().map_err(db_err)?;
    rows.iter().map(|b| json_of(b)).collect()
}

pub fn insert(c: &Connection, cl: &Cluster) -> Result<()> {
    let body = serde_json::to_string(cl).map_err(Error::internal)?;
    match c.execute(
        "INSERT INTO clusters (id, group_id, name, body) VALUES (?1, ?2, ?3, ?4)",
        params![cl.id.to_string(), cl.group_id.to_string(), cl.name, body],
    ) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(Error::ClusterNameTaken { name: cl.name.clone() })
        }
        Err(e) => Err(db_err(e)),
    }
}

pub fn update(c: &Connection, cl: &Cluster) -> Result<()> {
    let body = serde_json::to_string(cl).map_err(Error::internal)?;
    c.execute("UPDATE clusters SET body = ?2 WHERE id = ?1", params![cl.id.to_string(), body]).map_err(db_err)?;
    Ok(())
}

/// Whether the cluster was there to delete.
pub fn delete(c: &Connection, cl: &Cluster) -> Result<bool> {
    Ok(c.execute("DELETE FROM clusters WHERE id = ?1", [cl.id.to_string()]).map_err(db_err)? == 1)
}

/// Updates to `after` only if the stored record still equals `before` (compared as records, so
/// that a field added later with a default does not make old rows unequal to themselves).
pub fn transition(c: &Connection, before: &Cluster, after: &Cluster) -> Result<bool> {
    let stored: Option<String> = c
        .query_row("SELECT body FROM clusters WHERE id = ?1", [before.id.to_string()], |r| r.get(0))
        .optional()
        .map_err(db_err)?;
    match stored.map(|b| json_of::<Cluster>(&b)).transpose()? {
        Some(current) if current == *before => {
            c.execute("UPDATE clusters SET body = ?2 WHERE id = ?1", params![after.id.to_string(), json_text(after)?])
                .map_err(db_err)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

pub fn by_name(c: &Connection, group: &str, name: &str) -> Result<Option<Cluster>> {
    let body: Option<String> = c
        .query_row("SELECT body FROM clusters WHERE group_id = ?1 AND name = ?2", params![group, name], |r| r.get(0))
        .optional()
        .map_err(db_err)?;
    body.map(|b| json_of(&b)).transpose()
}

pub fn list(c: &Connection, group: &str, page: &Page) -> Result<(Vec<Cluster>, u64)> {
    let total: i64 =
        c.query_row("SELECT COUNT(*) FROM clusters WHERE group_id = ?1", [group], |r| r.get(0)).map_err(db_err)?;
    let list = collect(
        c,
        "SELECT body FROM clusters WHERE group_id = ?1 ORDER BY seq LIMIT ?2 OFFSET ?3",
        params![group, page.items_per_page as i64, page.offset() as i64],
    )?;
    Ok((list, total as u64))
}

pub fn all_of(c: &Connection, group: &str) -> Result<Vec<Cluster>> {
    collect(c, "SELECT body FROM clusters WHERE group_id = ?1 ORDER BY seq", [group])
}

pub fn all(c: &Connection) -> Result<Vec<Cluster>> {
    collect(c, "SELECT body FROM clusters ORDER BY seq", [])
}
