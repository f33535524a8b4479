//! Schema versions, applied in order at start; `PRAGMA user_version` records the last applied.

pub const SQLITE: &[&str] = &[r#"
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
"#];
