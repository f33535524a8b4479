//! Queries of the append-only events log.

use atrest_core::events::Event;
use atrest_core::paging::Page;
use atrest_core::{time_fmt, Error, Result};
use rusqlite::{params, Connection};

use crate::codec::{date_of, id_of, json_of};
use crate::sqlite::db_err;

pub fn append(c: &Connection, events: &[Event]) -> Result<()> {
    for e in events {
        let details = serde_json::to_string(&e.details).map_err(Error::internal)?;
        c.execute(
            "INSERT INTO events (id, group_id, type, created, details) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![e.id.to_string(), e.group_id.to_string(), e.event_type, time_fmt::format(e.created), details],
        )
        .map_err(db_err)?;
    }
    Ok(())
}

pub fn list(c: &Connection, group: &str, page: &Page) -> Result<(Vec<Event>, u64)> {
    let total: i64 =
        c.query_row("SELECT COUNT(*) FROM events WHERE group_id = ?1", [group], |r| r.get(0)).map_err(db_err)?;
    let mut stmt = c
        .prepare("SELECT id, group_id, type, created, details FROM events WHERE group_id = ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3")
        .map_err(db_err)?;
    let rows: Vec<EventRow> = stmt
        .query_map(params![group, page.items_per_page as i64, page.offset() as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db_err)?;
    let events = rows.into_iter().map(to_event).collect::<Result<_>>()?;
    Ok((events, total as u64))
}

pub(crate) type EventRow = (String, String, String, String, String);

pub(crate) fn to_event(r: EventRow) -> Result<Event> {
    Ok(Event {
        id: id_of(&r.0)?,
        group_id: id_of(&r.1)?,
        event_type: r.2,
        created: date_of(&r.3)?,
        details: json_of(&r.4)?,
    })
}
