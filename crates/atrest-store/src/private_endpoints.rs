//! Queries of KMS private endpoints.

use atrest_core::paging::Page;
use atrest_core::private_endpoints::{PrivateEndpoint, Status};
use atrest_core::{time_fmt, Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::codec::{date_of, id_of};
use crate::sqlite::db_err;

pub(crate) const COLUMNS: &str = "id, group_id, region, status, error_message, aws_endpoint_id, endpoint_url, created";

pub(crate) type PeRow = (String, String, String, String, Option<String>, Option<String>, Option<String>, String);

fn row(r: &Row) -> rusqlite::Result<PeRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

pub(crate) fn to_pe(r: PeRow) -> Result<PrivateEndpoint> {
    Ok(PrivateEndpoint {
        id: id_of(&r.0)?,
        group_id: id_of(&r.1)?,
        region: r.2,
        status: Status::parse(&r.3).ok_or_else(|| Error::internal("store: corrupt endpoint status"))?,
        error_message: r.4,
        aws_endpoint_id: r.5,
        endpoint_url: r.6,
        created: date_of(&r.7)?,
    })
}

fn collect(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<PrivateEndpoint>> {
    let mut stmt = c.prepare(sql).map_err(db_err)?;
    let rows: Vec<PeRow> =
        stmt.query_map(params, row).map_err(db_err)?.collect::<rusqlite::Result<_>>().map_err(db_err)?;
    rows.into_iter().map(to_pe).collect()
}

/// Inserts unless the region is already occupied, checked inside the transaction.
pub fn insert(c: &Connection, e: &PrivateEndpoint) -> Result<()> {
    let occupied: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM private_endpoints WHERE group_id = ?1 AND region = ?2
             AND status NOT IN ('PENDING_RECREATION', 'DELETING')",
            params![e.group_id.to_string(), e.region],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    if occupied > 0 && e.status.occupies_region() {
        return Err(Error::PrivateEndpointExists { region: e.region.clone() });
    }
    c.execute(
        &format!("INSERT INTO private_endpoints ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            e.id.to_string(),
            e.group_id.to_string(),
            e.region,
            e.status.as_str(),
            e.error_message,
            e.aws_endpoint_id,
            e.endpoint_url,
            time_fmt::format(e.created)
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

pub fn update(c: &Connection, e: &PrivateEndpoint) -> Result<()> {
    c.execute(
        "UPDATE private_endpoints SET status = ?2, error_message = ?3, aws_endpoint_id = ?4, endpoint_url = ?5 WHERE id = ?1",
        params![e.id.to_string(), e.status.as_str(), e.error_message, e.aws_endpoint_id, e.endpoint_url],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Whether the endpoint was there to delete.
pub fn delete(c: &Connection, e: &PrivateEndpoint) -> Result<bool> {
    Ok(c.execute("DELETE FROM private_endpoints WHERE id = ?1", [e.id.to_string()]).map_err(db_err)? == 1)
}

/// Updates to `after` only if the row still equals `before`.
pub fn transition(c: &Connection, before: &PrivateEndpoint, after: &PrivateEndpoint) -> Result<bool> {
    let changed = c
        .execute(
            "UPDATE private_endpoints SET status = ?2, error_message = ?3, aws_endpoint_id = ?4, endpoint_url = ?5
             WHERE id = ?1 AND status = ?6 AND error_message IS ?7 AND aws_endpoint_id IS ?8 AND endpoint_url IS ?9",
            params![
                after.id.to_string(),
                after.status.as_str(),
                after.error_message,
                after.aws_endpoint_id,
                after.endpoint_url,
                before.status.as_str(),
                before.error_message,
                before.aws_endpoint_id,
                before.endpoint_url
            ],
        )
        .map_err(db_err)?;
    Ok(changed == 1)
}

pub fn get(c: &Connection, group: &str, id: &str) -> Result<Option<PrivateEndpoint>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM private_endpoints WHERE group_id = ?1 AND id = ?2"),
        params![group, id],
        row,
    )
    .optional()
    .map_err(db_err)?
    .map(to_pe)
    .transpose()
}

pub fn list(c: &Connection, group: &str, page: &Page) -> Result<(Vec<PrivateEndpoint>, u64)> {
    let total: i64 = c
        .query_row("SELECT COUNT(*) FROM private_endpoints WHERE group_id = ?1", [group], |r| r.get(0))
        .map_err(db_err)?;
    let list = collect(
        c,
        &format!("SELECT {COLUMNS} FROM private_endpoints WHERE group_id = ?1 ORDER BY seq LIMIT ?2 OFFSET ?3"),
        params![group, page.items_per_page as i64, page.offset() as i64],
    )?;
    Ok((list, total as u64))
}

pub fn all_of(c: &Connection, group: &str) -> Result<Vec<PrivateEndpoint>> {
    collect(c, &format!("SELECT {COLUMNS} FROM private_endpoints WHERE group_id = ?1 ORDER BY seq"), [group])
}

/// Every endpoint the reconciler watches: all but FAILED.
pub fn unsettled(c: &Connection) -> Result<Vec<PrivateEndpoint>> {
    collect(c, &format!("SELECT {COLUMNS} FROM private_endpoints WHERE status != 'FAILED' ORDER BY seq"), [])
}
