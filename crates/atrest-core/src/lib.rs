//! atrest's domain: every resource's rules, free of I/O.
//!
//! Each resource has one file here (`projects.rs`, `api_keys.rs`, ...). Handlers parse a request,
//! ask this crate what the rules say, and persist what it returns.

pub mod api_keys;
pub mod cloud_provider_access;
pub mod clusters;
pub mod encryption_at_rest;
pub mod error;
pub mod events;
pub mod ids;
pub mod orgs;
pub mod paging;
pub mod private_endpoints;
pub mod projects;
pub mod regions;
pub mod roles;
pub mod service_accounts;
pub mod sessions;
pub mod time_fmt;

pub use error::{Error, Result};
pub use ids::ObjectId;
