//! Schema versions per backend, applied in order at start. SQLite: `PRAGMA user_version` records
//! the last applied; PostgreSQL: the table `schema_migrations`.

/// PostgreSQL's versions, one file each (`migrations/postgres/NNNN_*.sql`).
pub const POSTGRES: &[&str] = &[
    include_str!("../migrations/postgres/0001_schema.sql"),
    include_str!("../migrations/postgres/0002_sessions_service_accounts.sql"),
];

pub const SQLITE: &[&str] = &[V1, SQLITE_V2, SQLITE_V3, SQLITE_V4, SQLITE_V5, SQLITE_V6, SQLITE_V7];

const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE orgs (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id),
    public_key      TEXT NOT NULL UNIQUE,
    description     TEXT NOT NULL,
    org_roles       TEXT NOT NULL,
    sealed_verifier BLOB NOT NULL,
    created         TEXT NOT NULL
);
CREATE TABLE api_key_project_roles (
    api_key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    group_id   TEXT NOT NULL,
    roles      TEXT NOT NULL,
    PRIMARY KEY (api_key_id, group_id)
);
CREATE TABLE projects (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    org_id  TEXT NOT NULL REFERENCES orgs(id),
    name    TEXT NOT NULL,
    state   TEXT NOT NULL,
    created TEXT NOT NULL,
    tags    TEXT NOT NULL,
    with_default_alerts_settings INTEGER NOT NULL,
    UNIQUE (org_id, name)
);
"#;

pub const SQLITE_V2: &str = r#"
CREATE TABLE cloud_provider_access_roles (
    role_id              TEXT PRIMARY KEY,
    group_id             TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    atlas_aws_account_arn TEXT NOT NULL,
    external_id          TEXT NOT NULL,
    iam_assumed_role_arn TEXT,
    created              TEXT NOT NULL,
    authorized           TEXT
);
CREATE INDEX cpa_by_group ON cloud_provider_access_roles (group_id);
CREATE TABLE encryption_at_rest (
    group_id      TEXT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    aws_kms       TEXT NOT NULL,
    sealed_secret BLOB,
    version       INTEGER NOT NULL,
    next_check_at TEXT NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL UNIQUE,
    group_id TEXT NOT NULL,
    type     TEXT NOT NULL,
    created  TEXT NOT NULL,
    details  TEXT NOT NULL
);
CREATE INDEX events_by_group ON events (group_id, seq);
"#;

pub const SQLITE_V3: &str = r#"
CREATE TABLE private_endpoints (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    group_id        TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    region          TEXT NOT NULL,
    status          TEXT NOT NULL,
    error_message   TEXT,
    aws_endpoint_id TEXT,
    endpoint_url    TEXT,
    created         TEXT NOT NULL
);
CREATE INDEX private_endpoints_by_group ON private_endpoints (group_id, seq);
"#;

pub const SQLITE_V4: &str = r#"
CREATE TABLE clusters (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL UNIQUE,
    group_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    body     TEXT NOT NULL,
    UNIQUE (group_id, name)
);
"#;

/// Named leases: who holds a piece of work (a cluster's data plane) and until when.
pub const SQLITE_V5: &str = r#"
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    holder_url TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
"#;

pub const SQLITE_V6: &str = r#"
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    created    TEXT NOT NULL,
    expires    TEXT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires);
"#;

pub const SQLITE_V7: &str = r#"
CREATE TABLE service_accounts (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    grants      TEXT NOT NULL,
    created     TEXT NOT NULL
);
CREATE TABLE service_account_secrets (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES service_accounts(id) ON DELETE CASCADE,
    hash       TEXT NOT NULL,
    masked     TEXT NOT NULL,
    created    TEXT NOT NULL,
    expires    TEXT NOT NULL,
    last_used  TEXT
);
"#;
