//! Queries of cloud provider access roles.

use atrest_core::cloud_provider_access::AwsIamRole;
use atrest_core::{time_fmt, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::codec::{date_of, id_of};
use crate::sqlite::db_err;

pub(crate) const COLUMNS: &str =
    "role_id, group_id, atlas_aws_account_arn, external_id, iam_assumed_role_arn, created, authorized";

pub(crate) type RoleRow = (String, String, String, String, Option<String>, String, Option<String>);

fn row(r: &Row) -> rusqlite::Result<RoleRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
}

pub(crate) fn to_role(r: RoleRow) -> Result<AwsIamRole> {
    Ok(AwsIamRole {
        role_id: id_of(&r.0)?,
        group_id: id_of(&r.1)?,
        atlas_aws_account_arn: r.2,
        external_id: r.3,
        iam_assumed_role_arn: r.4,
        created: date_of(&r.5)?,
        authorized: r.6.as_deref().map(date_of).transpose()?,
    })
}

pub fn insert(c: &Connection, role: &AwsIamRole) -> Result<()> {
    c.execute(
        &format!("INSERT INTO cloud_provider_access_roles ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            role.role_id.to_string(),
            role.group_id.to_string(),
            role.atlas_aws_account_arn,
            role.external_id,
            role.iam_assumed_role_arn,
            time_fmt::format(role.created),
            role.authorized.map(time_fmt::format)
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

pub fn update(c: &Connection, role: &AwsIamRole) -> Result<()> {
    c.execute(
        "UPDATE cloud_provider_access_roles SET iam_assumed_role_arn = ?2, authorized = ?3 WHERE role_id = ?1",
        params![role.role_id.to_string(), role.iam_assumed_role_arn, role.authorized.map(time_fmt::format)],
    )
    .map_err(db_err)?;
    Ok(())
}

pub fn delete(c: &Connection, role: &AwsIamRole) -> Result<()> {
    c.execute("DELETE FROM cloud_provider_access_roles WHERE role_id = ?1", [role.role_id.to_string()])
        .map_err(db_err)?;
    Ok(())
}

pub fn get(c: &Connection, group: &str, role_id: &str) -> Result<Option<AwsIamRole>> {
    c.query_row(
        &format!("SELECT {COLUMNS} FROM cloud_provider_access_roles WHERE group_id = ?1 AND role_id = ?2"),
        params![group, role_id],
        row,
    )
    .optional()
    .map_err(db_err)?
    .map(to_role)
    .transpose()
}

pub fn list(c: &Connection, group: &str) -> Result<Vec<AwsIamRole>> {
    let mut stmt = c
        .prepare(&format!(
            "SELECT {COLUMNS} FROM cloud_provider_access_roles WHERE group_id = ?1 ORDER BY created, role_id"
        ))
        .map_err(db_err)?;
    let rows: Vec<RoleRow> =
        stmt.query_map([group], row).map_err(db_err)?.collect::<rusqlite::Result<_>>().map_err(db_err)?;
    rows.into_iter().map(to_role).collect()
}
