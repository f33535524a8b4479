//! Queries of project Encryption at Rest configurations.

use atrest_core::encryption_at_rest::AwsKms;
use atrest_core::{Error, ObjectId, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::sqlite::{date_of, db_err, id_of, json_of};
use crate::StoredEncryptionAtRest;

/// Fixed-width UTC with microseconds, so that timestamps compare correctly as text.
fn instant(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

const COLUMNS: &str = "group_id, aws_kms, sealed_secret, version, next_check_at, failures";

type EarRow = (String, String, Option<Vec<u8>>, i64, String, i64);

fn row(r: &Row) -> rusqlite::Result<EarRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

fn to_stored(r: EarRow) -> Result<StoredEncryptionAtRest> {
    Ok(StoredEncryptionAtRest {
        group_id: id_of(&r.0)?,
        aws_kms: json_of(&r.1)?,
        sealed_secret: r.2,
        version: r.3,
        next_check_at: date_of(&r.4)?,
        failures: r.5.max(0) as u32,
    })
}

pub fn get(c: &Connection, group: &str) -> Result<Option<StoredEncryptionAtRest>> {
    c.query_row(&format!("SELECT {COLUMNS} FROM encryption_at_rest WHERE group_id = ?1"), [group], row)
        .optional()
        .map_err(db_err)?
        .map(to_stored)
        .transpose()
}

pub fn save(
    c: &Connection,
    group: &ObjectId,
    aws_kms: &AwsKms,
    secret: Option<Option<Vec<u8>>>,
    next_check_at: time::OffsetDateTime,
) -> Result<()> {
    let json = serde_json::to_string(aws_kms).map_err(Error::internal)?;
    let group = group.to_string();
    let next = instant(next_check_at);
    c.execute(
        "INSERT INTO encryption_at_rest (group_id, aws_kms, sealed_secret, version, next_check_at, failures)
         VALUES (?1, ?2, ?3, 1, ?4, 0)
         ON CONFLICT (group_id) DO UPDATE SET aws_kms = excluded.aws_kms, version = version + 1,
             next_check_at = excluded.next_check_at, failures = 0",
        params![group, json, secret.clone().flatten(), next],
    )
    .map_err(db_err)?;
    if let Some(secret) = secret {
        c.execute("UPDATE encryption_at_rest SET sealed_secret = ?2 WHERE group_id = ?1", params![group, secret])
            .map_err(db_err)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn record_check(
    c: &Connection,
    group: &ObjectId,
    version: i64,
    valid: bool,
    key_arn: Option<String>,
    next_check_at: time::OffsetDateTime,
    failures: u32,
) -> Result<bool> {
    let Some(current) = get(c, &group.to_string())? else {
        return Ok(false);
    };
    if current.version != version {
        return Ok(false);
    }
    let mut cfg = current.aws_kms;
    cfg.valid = valid;
    if key_arn.is_some() {
        cfg.key_arn = key_arn;
    }
    let json = serde_json::to_string(&cfg).map_err(Error::internal)?;
    c.execute(
        "UPDATE encryption_at_rest SET aws_kms = ?2, next_check_at = ?3, failures = ?4 WHERE group_id = ?1 AND version = ?5",
        params![group.to_string(), json, instant(next_check_at), failures, version],
    )
    .map_err(db_err)?;
    Ok(true)
}

pub fn due(c: &Connection, now: time::OffsetDateTime) -> Result<Vec<StoredEncryptionAtRest>> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {COLUMNS} FROM encryption_at_rest WHERE json_extract(aws_kms, '$.enabled') = 1 AND next_check_at <= ?1 ORDER BY next_check_at"
        ))
        .map_err(db_err)?;
    let rows: Vec<EarRow> =
        stmt.query_map([instant(now)], row).map_err(db_err)?.collect::<rusqlite::Result<_>>().map_err(db_err)?;
    rows.into_iter().map(to_stored).collect()
}
