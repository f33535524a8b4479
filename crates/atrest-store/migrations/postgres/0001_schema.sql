-- atrest on PostgreSQL, version 1: the same tables as SQLite's versions 1 to 5. Ids, dates and
-- JSON are text, as in SQLite, so that both backends share their conversions; sealed secrets are
-- BYTEA (the store never sees a plaintext secret); leases expire on the database's clock.
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
    sealed_verifier BYTEA NOT NULL,
    created         TEXT NOT NULL
);
CREATE TABLE api_key_project_roles (
    api_key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    group_id   TEXT NOT NULL,
    roles      TEXT NOT NULL,
    PRIMARY KEY (api_key_id, group_id)
);
CREATE TABLE projects (
    seq     BIGSERIAL PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    org_id  TEXT NOT NULL REFERENCES orgs(id),
    name    TEXT NOT NULL,
    state   TEXT NOT NULL,
    created TEXT NOT NULL,
    tags    TEXT NOT NULL,
    with_default_alerts_settings BOOLEAN NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE cloud_provider_access_roles (
    role_id               TEXT PRIMARY KEY,
    group_id              TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    atlas_aws_account_arn TEXT NOT NULL,
    external_id           TEXT NOT NULL,
    iam_assumed_role_arn  TEXT,
    created               TEXT NOT NULL,
    authorized            TEXT
);
CREATE INDEX cpa_by_group ON cloud_provider_access_roles (group_id);
CREATE TABLE encryption_at_rest (
    group_id      TEXT PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    aws_kms       TEXT NOT NULL,
    sealed_secret BYTEA,
    version       BIGINT NOT NULL,
    next_check_at TEXT NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE events (
    seq      BIGSERIAL PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    group_id TEXT NOT NULL,
    type     TEXT NOT NULL,
    created  TEXT NOT NULL,
    details  TEXT NOT NULL
);
CREATE INDEX events_by_group ON events (group_id, seq);
CREATE TABLE private_endpoints (
    seq             BIGSERIAL PRIMARY KEY,
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
CREATE TABLE clusters (
    seq      BIGSERIAL PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    group_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    body     TEXT NOT NULL,
    UNIQUE (group_id, name)
);
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    holder_url TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
