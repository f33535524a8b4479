//! Queries of project Encryption at Rest configurations.

use atrest_core::encryption_at_rest::AwsKms;
use atrest_core::{Error, ObjectId, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::codec::{date_of, id_of, instant, json_of};
use crate::sqlite::db_err;
use crate::StoredEncryptionAtRest;

pub(crate) const COLUMNS: &str = "group_id, aws_kms, sealed_secret, version, next_check_at, failures";

pub(crate) type EarRow = (String, String, Option<Vec<u8>>, i64, String, i64);

fn row(r: &Row) -> rusqlite::Result<EarRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
}

pub(crate) fn to_stored(r: EarRow) -> Result<StoredEncryptionAtRest> {
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

/// Records a check's result if the row is still at `version`, bumping it: of two replicas that
/// checked the same row, one records.
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
    let json = serde_json::to_string(&checked(current.aws_kms, valid, key_arn)).map_err(Error::internal)?;
    let updated = c
        .execute(
            "UPDATE encryption_at_rest SET aws_kms = ?2, next_check_at = ?3, failures = ?4, version = version + 1
             WHERE group_id = ?1 AND version = ?5",
            params![group.to_string(), json, instant(next_check_at), failures, version],
        )
        .map_err(db_err)?;
    Ok(updated == 1)
}

/// The configuration after a check: `valid` and, when the check learnt it, the key's ARN.
pub(crate) fn checked(mut cfg: AwsKms, valid: bool, key_arn: Option<String>) -> AwsKms {
    cfg.valid = valid;
    if key_arn.is_some() {
        cfg.key_arn = key_arn;
    }
    cfg
}

/// Claims the due checks: each is pushed to `until` (its version bumped) in the same
/// transaction, so it is not due for anyone else until the claim lapses.
pub fn claim_due(
    c: &Connection,
    now: time::OffsetDateTime,
    until: time::OffsetDateTime,
) -> Result<Vec<StoredEncryptionAtRest>> {
    let mut claimed = due(c, now)?;
    for s in &mut claimed {
        c.execute(
            "UPDATE encryption_at_rest SET next_check_at = ?2, version = version + 1 WHERE group_id = ?1",
            params![s.group_id.to_string(), instant(until)],
        )
        .map_err(db_err)?;
        s.next_check_at = until;
        s.version += 1;
    }
    Ok(claimed)
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
