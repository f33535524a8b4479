//! Queries of console sessions and OAuth access tokens (by the token's hash only).

use atrest_core::sessions::{Session, SessionKind};
use atrest_core::{time_fmt, Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

use crate::codec::{date_of, id_of};
use crate::sqlite::db_err;

pub fn insert(c: &Connection, s: &Session) -> Result<()> {
    // Expired rows go when new ones come, so the table stays as small as the live sessions.
    c.execute("DELETE FROM sessions WHERE expires < ?1", [time_fmt::format(s.created)]).map_err(db_err)?;
    c.execute(
        "INSERT INTO sessions (token_hash, kind, subject, created, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            s.token_hash,
            s.kind.as_str(),
            s.subject.to_string(),
            time_fmt::format(s.created),
            time_fmt::format(s.expires)
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

pub fn get(c: &Connection, token_hash: &str) -> Result<Option<Session>> {
    let row: Option<(String, String, String, String, String)> = c
        .query_row(
            "SELECT token_hash, kind, subject, created, expires FROM sessions WHERE token_hash = ?1",
            [token_hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
        .map_err(db_err)?;
    row.map(to_session).transpose()
}

/// A row of either backend: (token_hash, kind, subject, created, expires).
pub(crate) fn to_session(
    (token_hash, kind, subject, created, expires): (String, String, String, String, String),
) -> Result<Session> {
    Ok(Session {
        token_hash,
        kind: SessionKind::parse(&kind).ok_or_else(|| Error::Internal(format!("store: corrupt kind {kind}")))?,
        subject: id_of(&subject)?,
        created: date_of(&created)?,
        expires: date_of(&expires)?,
    })
}

pub fn delete(c: &Connection, token_hash: &str) -> Result<bool> {
    Ok(c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash]).map_err(db_err)? > 0)
}
