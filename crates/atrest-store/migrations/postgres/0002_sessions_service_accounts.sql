-- atrest on PostgreSQL, version 2: SQLite's versions 6 and 7. Console sessions and OAuth access
-- tokens (by the token's SHA-256 only); service accounts and their secrets (hashes only).
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    created    TEXT NOT NULL,
    expires    TEXT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires);
CREATE TABLE service_accounts (
    seq         BIGSERIAL PRIMARY KEY,
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
