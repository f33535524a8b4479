//! Queries of service accounts and their secrets (hashes only).

use atrest_core::paging::Page;
use atrest_core::roles::Grants;
use atrest_core::service_accounts::{Secret, ServiceAccount};
use atrest_core::{time_fmt, Error, ObjectId, Result};
use rusqlite::{params, Connection, OptionalExtension};

use crate::codec::{date_of, id_of, json_of};
use crate::sqlite::db_err;

pub(crate) const COLUMNS: &str = "id, org_id, name, description, grants, created";

pub(crate) type Row = (String, String, String, String, String, String);

fn row(r: &rusqlite::Row) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn secrets_of(c: &Connection, id: &str) -> Result<Vec<Secret>> {
    let mut stmt = c
        .prepare(
            "SELECT id, hash, masked, created, expires, last_used FROM service_account_secrets
             WHERE account_id = ?1 ORDER BY created, id",
        )
        .map_err(db_err)?;
    let rows: Vec<SecretRow> = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .map_err(db_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db_err)?;
    rows.into_iter().map(to_secret).collect()
}

pub(crate) type SecretRow = (String, String, String, String, String, Option<String>);

/// A secret row of either backend: (id, hash, masked, created, expires, last_used).
pub(crate) fn to_secret((id, hash, masked, created, expires, last_used): SecretRow) -> Result<Secret> {
    Ok(Secret {
        id: id_of(&id)?,
        hash,
        masked,
        created: date_of(&created)?,
        expires: date_of(&expires)?,
        last_used: last_used.as_deref().map(date_of).transpose()?,
    })
}

fn to_account(c: &Connection, row: Row) -> Result<ServiceAccount> {
    let secrets = secrets_of(c, &row.0)?;
    account_of(row, secrets)
}

/// An account row of either backend: (id, org_id, name, description, grants, created).
pub(crate) fn account_of(
    (id, org_id, name, description, grants, created): Row,
    secrets: Vec<Secret>,
) -> Result<ServiceAccount> {
    Ok(ServiceAccount {
        id: id_of(&id)?,
        org_id: id_of(&org_id)?,
        name,
        description,
        grants: json_of::<Grants>(&grants)?,
        created: date_of(&created)?,
        secrets,
    })
}

fn put_secrets(c: &Connection, a: &ServiceAccount) -> Result<()> {
    c.execute("DELETE FROM service_account_secrets WHERE account_id = ?1", [a.id.to_string()]).map_err(db_err)?;
    for s in &a.secrets {
        c.execute(
            "INSERT INTO service_account_secrets (id, account_id, hash, masked, created, expires, last_used)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                s.id.to_string(),
                a.id.to_string(),
                s.hash,
                s.masked,
                time_fmt::format(s.created),
                time_fmt::format(s.expires),
                s.last_used.map(time_fmt::format)
            ],
        )
        .map_err(db_err)?;
    }
    Ok(())
}

pub fn insert(c: &Connection, a: &ServiceAccount) -> Result<()> {
    let grants = serde_json::to_string(&a.grants).map_err(Error::internal)?;
    c.execute(
        "INSERT INTO service_accounts (id, org_id, name, description, grants, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![a.id.to_string(), a.org_id.to_string(), a.name, a.description, grants, time_fmt::format(a.created)],
    )
    .map_err(db_err)?;
    put_secrets(c, a)
}

pub fn update(c: &Connection, a: &ServiceAccount) -> Result<()> {
    let grants = serde_json::to_string(&a.grants).map_err(Error::internal)?;
    let n = c
        .execute(
            "UPDATE service_accounts SET name = ?2, description = ?3, grants = ?4 WHERE id = ?1",
            params![a.id.to_string(), a.name, a.description, grants],
        )
        .map_err(db_err)?;
    if n == 0 {
        return Err(Error::ServiceAccountNotFound { client_id: a.client_id() });
    }
    put_secrets(c, a)
}

pub fn get(c: &Connection, id: &ObjectId) -> Result<Option<ServiceAccount>> {
    let r = c
        .query_row(&format!("SELECT {COLUMNS} FROM service_accounts WHERE id = ?1"), [id.to_string()], row)
        .optional()
        .map_err(db_err)?;
    r.map(|r| to_account(c, r)).transpose()
}

pub fn list(c: &Connection, org: &ObjectId, page: &Page) -> Result<(Vec<ServiceAccount>, u64)> {
    let org = org.to_string();
    let total: i64 =
        c.query_row("SELECT COUNT(*) FROM service_accounts WHERE org_id = ?1", [&org], |r| r.get(0)).map_err(db_err)?;
    let mut stmt = c
        .prepare(&format!("SELECT {COLUMNS} FROM service_accounts WHERE org_id = ?1 ORDER BY seq LIMIT ?2 OFFSET ?3"))
        .map_err(db_err)?;
    let rows: Vec<Row> = stmt
        .query_map(params![org, page.items_per_page as i64, page.offset() as i64], row)
        .map_err(db_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db_err)?;
    let accounts = rows.into_iter().map(|r| to_account(c, r)).collect::<Result<_>>()?;
    Ok((accounts, total as u64))
}

/// Deletes the account, its secrets and its access tokens.
pub fn delete(c: &Connection, id: &ObjectId) -> Result<bool> {
    c.execute("DELETE FROM sessions WHERE subject = ?1", [id.to_string()]).map_err(db_err)?;
    Ok(c.execute("DELETE FROM service_accounts WHERE id = ?1", [id.to_string()]).map_err(db_err)? > 0)
}
