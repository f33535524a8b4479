//! Organizations: the owner of projects and API keys. atrest bootstraps one on first start.

use crate::ObjectId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: ObjectId,
    pub name: String,
    pub created: time::OffsetDateTime,
}
