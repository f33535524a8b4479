//! The append-only events log: every change and every check outcome, Atlas event shape.

use serde_json::Value;

use crate::ObjectId;

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: ObjectId,
    pub group_id: ObjectId,
    pub event_type: String,
    pub created: time::OffsetDateTime,
    /// Extra fields merged into the event's JSON (e.g. `roleId`, `detail`).
    pub details: Value,
}

impl Event {
    pub fn new(group_id: ObjectId, event_type: &str, details: Value) -> Event {
        Event { id: ObjectId::new(), group_id, event_type: event_type.into(), created: crate::time_fmt::now(), details }
    }
}
