//! The store for several replicas: PostgreSQL (or what speaks its protocol), chosen by
//! `--database-url postgres://...`. Every method is one transaction; reconcile steps that move
//! state lock the row they change (`FOR UPDATE`) so that of two replicas racing, one writes.
//! No TLS: the database is reached on loopback or a private network (`sslmode=disable`).

mod pool;

use std::str::FromStr;

use async_trait::async_trait;
use atrest_core::api_keys::ApiKey;
use atrest_core::cloud_provider_access::AwsIamRole;
use atrest_core::clusters::Cluster;
use atrest_core::encryption_at_rest::AwsKms;
use atrest_core::events::Event;
use atrest_core::orgs::Org;
use atrest_core::paging::Page;
use atrest_core::private_endpoints::PrivateEndpoint;
use atrest_core::projects::Project;
use atrest_core::roles::ProjectRole;
use atrest_core::service_accounts::ServiceAccount;
use atrest_core::sessions::Session;
use atrest_core::{time_fmt, Error, ObjectId, Result};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row, Transaction};

use crate::cloud_provider_access::{self as roles, RoleRow};
use crate::codec::{instant, json_of, json_text};
use crate::encryption_at_rest::{self as ear, EarRow};
use crate::events::{to_event, EventRow};
use crate::private_endpoints::{self as pes, PeRow};
use crate::service_accounts as sas;
use crate::sqlite::{build_key, to_org, to_project, KeyRow, ProjectRow, KEY_COLUMNS};
use crate::{migrations, Lease, ProjectScope, Store, StoredApiKey, StoredEncryptionAtRest};

pub(crate) fn pg_err(e: tokio_postgres::Error) -> Error {
    Error::Internal(format!("store: {e}"))
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

#[derive(Clone)]
pub struct PgStore {
    pool: std::sync::Arc<pool::Pool>,
}

/// Connections per replica: enough for the API and the reconcilers, small next to PostgreSQL's
/// default `max_connections` of 100 so that several replicas fit.
const POOL_SIZE: usize = 16;

/// The connection settings of a database URL, or why it is refused (before anything connects).
pub fn check_url(url: &str) -> std::result::Result<tokio_postgres::Config, String> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| format!("invalid --database-url: {e}"))?;
    let sslmode =
        url.split_once('?').into_iter().flat_map(|(_, q)| q.split('&')).find_map(|kv| kv.strip_prefix("sslmode="));
    if let Some(mode) = sslmode.filter(|m| *m != "disable") {
        return Err(format!(
            "--database-url: sslmode={mode} is not supported; atrest talks to PostgreSQL without TLS \
             (sslmode=disable), so reach the database on loopback, a private network or a TLS tunnel"
        ));
    }
    config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    if config.get_application_name().is_none() {
        config.application_name("atrest");
    }
    Ok(config)
}

impl PgStore {
    /// Connects and applies the migrations this database has not seen yet.
    pub async fn connect(url: &str) -> std::result::Result<Self, String> {
        let config = check_url(url)?;
        let store = PgStore { pool: std::sync::Arc::new(pool::Pool::new(config, POOL_SIZE)) };
        store.migrate().await.map_err(|e| format!("opening the PostgreSQL store: {e}"))?;
        Ok(store)
    }

    /// Several replicas may start at once: an advisory lock makes one of them migrate.
    async fn migrate(&self) -> Result<()> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        tx.execute("SELECT pg_advisory_xact_lock(7365727665)", &[]).await.map_err(pg_err)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)",
        )
        .await
        .map_err(pg_err)?;
        let current: i32 =
            tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await.map_err(pg_err)?.get(0);
        for (i, sql) in migrations::POSTGRES.iter().enumerate().skip(current.max(0) as usize) {
            tx.batch_execute(sql).await.map_err(pg_err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)",
                &[&((i + 1) as i32), &time_fmt::format(time_fmt::now())],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }
}

/// Runs the block in one transaction on a pooled connection, committed if it returns `Ok`.
macro_rules! in_tx {
    ($self:ident, |$tx:ident| $body:block) => {{
        let mut conn = $self.pool.get().await?;
        let txn = conn.transaction().await.map_err(pg_err)?;
        let out: Result<_> = {
            let $tx = &txn;
            async { $body }.await
        };
        let out = out?;
        txn.commit().await.map_err(pg_err)?;
        Ok(out)
    }};
}

async fn query<C: GenericClient>(c: &C, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
    c.query(sql, params).await.map_err(pg_err)
}

async fn query_opt<C: GenericClient>(c: &C, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
    c.query_opt(sql, params).await.map_err(pg_err)
}

async fn execute<C: GenericClient>(c: &C, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    c.execute(sql, params).await.map_err(pg_err)
}

async fn count<C: GenericClient>(c: &C, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    let n: i64 = c.query_one(sql, params).await.map_err(pg_err)?.get(0);
    Ok(n.max(0) as u64)
}

fn limit(page: &Page) -> (i64, i64) {
    (page.items_per_page as i64, page.offset() as i64)
}

// ---- rows: the same tuples as SQLite's, so both backends share the conversions ----

fn key_row(r: &Row) -> KeyRow {
    KeyRow {
        id: r.get(0),
        org_id: r.get(1),
        public_key: r.get(2),
        description: r.get(3),
        org_roles: r.get(4),
        created: r.get(5),
        sealed_verifier: r.get(6),
    }
}

fn project_row(r: &Row) -> ProjectRow {
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7))
}

fn role_row(r: &Row) -> RoleRow {
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6))
}

fn ear_row(r: &Row) -> EarRow {
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get::<_, i32>(5) as i64)
}

fn pe_row(r: &Row) -> PeRow {
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7))
}

fn event_row(r: &Row) -> EventRow {
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
}

const PROJECT_COLUMNS: &str = "id, org_id, name, state, created, tags, with_default_alerts_settings, \
     (SELECT COUNT(*) FROM clusters WHERE clusters.group_id = projects.id) AS cluster_count";

async fn to_key<C: GenericClient>(c: &C, r: KeyRow) -> Result<StoredApiKey> {
    let roles =
        query(c, "SELECT group_id, roles FROM api_key_project_roles WHERE api_key_id = $1 ORDER BY group_id", &[&r.id])
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
    build_key(r, roles)
}

async fn insert_key(tx: &Transaction<'_>, key: &ApiKey, sealed: &[u8]) -> Result<()> {
    let roles = json_text(&key.grants.org_roles)?;
    execute(
        tx,
        &format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
        &[
            &key.id.to_string(),
            &key.org_id.to_string(),
            &key.public_key,
            &key.description,
            &roles,
            &time_fmt::format(key.created),
            &sealed,
        ],
    )
    .await?;
    for (group, roles) in &key.grants.project_roles {
        put_project_roles(tx, &key.id.to_string(), group, roles).await?;
    }
    Ok(())
}

async fn put_project_roles(tx: &Transaction<'_>, key: &str, group: &str, roles: &[ProjectRole]) -> Result<()> {
    let roles = json_text(&roles)?;
    execute(
        tx,
        "INSERT INTO api_key_project_roles (api_key_id, group_id, roles) VALUES ($1, $2, $3)
         ON CONFLICT (api_key_id, group_id) DO UPDATE SET roles = excluded.roles",
        &[&key, &group, &roles],
    )
    .await?;
    Ok(())
}

async fn append_events(tx: &Transaction<'_>, events: &[Event]) -> Result<()> {
    for e in events {
        let details = json_text(&e.details)?;
        execute(
            tx,
            "INSERT INTO events (id, group_id, type, created, details) VALUES ($1, $2, $3, $4, $5)",
            &[&e.id.to_string(), &e.group_id.to_string(), &e.event_type, &time_fmt::format(e.created), &details],
        )
        .await?;
    }
    Ok(())
}

async fn insert_pe(tx: &Transaction<'_>, e: &PrivateEndpoint) -> Result<()> {
    // The project's row lock serializes inserts for one project across replicas, so the region
    // check below cannot race another replica's insert.
    execute(tx, "SELECT 1 FROM projects WHERE id = $1 FOR UPDATE", &[&e.group_id.to_string()]).await?;
    let occupied = count(
        tx,
        "SELECT COUNT(*) FROM private_endpoints WHERE group_id = $1 AND region = $2
         AND status NOT IN ('PENDING_RECREATION', 'DELETING')",
        &[&e.group_id.to_string(), &e.region],
    )
    .await?;
    if occupied > 0 && e.status.occupies_region() {
        return Err(Error::PrivateEndpointExists { region: e.region.clone() });
    }
    execute(
        tx,
        &format!("INSERT INTO private_endpoints ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", pes::COLUMNS),
        &[
            &e.id.to_string(),
            &e.group_id.to_string(),
            &e.region,
            &e.status.as_str(),
            &e.error_message,
            &e.aws_endpoint_id,
            &e.endpoint_url,
            &time_fmt::format(e.created),
        ],
    )
    .await?;
    Ok(())
}

async fn update_pe(tx: &Transaction<'_>, e: &PrivateEndpoint) -> Result<()> {
    execute(
        tx,
        "UPDATE private_endpoints SET status = $2, error_message = $3, aws_endpoint_id = $4, endpoint_url = $5
         WHERE id = $1",
        &[&e.id.to_string(), &e.status.as_str(), &e.error_message, &e.aws_endpoint_id, &e.endpoint_url],
    )
    .await?;
    Ok(())
}

/// Updates to `after` only if the row still equals `before`.
async fn transition_pe(tx: &Transaction<'_>, before: &PrivateEndpoint, after: &PrivateEndpoint) -> Result<bool> {
    let changed = execute(
        tx,
        "UPDATE private_endpoints SET status = $2, error_message = $3, aws_endpoint_id = $4, endpoint_url = $5
         WHERE id = $1 AND status = $6 AND error_message IS NOT DISTINCT FROM $7
           AND aws_endpoint_id IS NOT DISTINCT FROM $8 AND endpoint_url IS NOT DISTINCT FROM $9",
        &[
            &after.id.to_string(),
            &after.status.as_str(),
            &after.error_message,
            &after.aws_endpoint_id,
            &after.endpoint_url,
            &before.status.as_str(),
            &before.error_message,
            &before.aws_endpoint_id,
            &before.endpoint_url,
        ],
    )
    .await?;
    Ok(changed == 1)
}

async fn pes_where<C: GenericClient>(
    c: &C,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<PrivateEndpoint>> {
    query(c, &format!("SELECT {} FROM private_endpoints WHERE {filter}", pes::COLUMNS), params)
        .await?
        .iter()
        .map(|r| pes::to_pe(pe_row(r)))
        .collect()
}

async fn clusters_where<C: GenericClient>(c: &C, filter: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Cluster>> {
    query(c, &format!("SELECT body FROM clusters WHERE {filter}"), params)
        .await?
        .iter()
        .map(|r| json_of(&r.get::<_, String>(0)))
        .collect()
}

async fn ears_where<C: GenericClient>(
    c: &C,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<StoredEncryptionAtRest>> {
    query(c, &format!("SELECT {} FROM encryption_at_rest WHERE {filter}", ear::COLUMNS), params)
        .await?
        .iter()
        .map(|r| ear::to_stored(ear_row(r)))
        .collect()
}

const DUE: &str = "(aws_kms::jsonb ->> 'enabled')::boolean AND next_check_at <= $1 ORDER BY next_check_at";

async fn put_secrets(tx: &Transaction<'_>, a: &ServiceAccount) -> Result<()> {
    execute(tx, "DELETE FROM service_account_secrets WHERE account_id = $1", &[&a.id.to_string()]).await?;
    for s in &a.secrets {
        execute(
            tx,
            "INSERT INTO service_account_secrets (id, account_id, hash, masked, created, expires, last_used)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &s.id.to_string(),
                &a.id.to_string(),
                &s.hash,
                &s.masked,
                &time_fmt::format(s.created),
                &time_fmt::format(s.expires),
                &s.last_used.map(time_fmt::format),
            ],
        )
        .await?;
    }
    Ok(())
}

async fn account_from<C: GenericClient>(c: &C, r: &Row) -> Result<ServiceAccount> {
    let row: sas::Row = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
    let secrets = query(
        c,
        "SELECT id, hash, masked, created, expires, last_used FROM service_account_secrets
         WHERE account_id = $1 ORDER BY created, id",
        &[&row.0],
    )
    .await?
    .iter()
    .map(|r| sas::to_secret((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))))
    .collect::<Result<Vec<_>>>()?;
    sas::account_of(row, secrets)
}

#[async_trait]
impl Store for PgStore {
    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        let c = self.pool.get().await?;
        Ok(query_opt(&*c, "SELECT value FROM meta WHERE key = $1", &[&key]).await?.map(|r| r.get(0)))
    }

    async fn put_meta(&self, key: &str, value: &str) -> Result<()> {
        let c = self.pool.get().await?;
        execute(
            &*c,
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )
        .await?;
        Ok(())
    }

    async fn bootstrap(&self, org: &Org, key: &ApiKey, sealed: &[u8]) -> Result<()> {
        in_tx!(self, |tx| {
            execute(
                tx,
                "INSERT INTO orgs (id, name, created) VALUES ($1, $2, $3)",
                &[&org.id.to_string(), &org.name, &time_fmt::format(org.created)],
            )
            .await?;
            insert_key(tx, key, sealed).await?;
            execute(tx, "INSERT INTO meta (key, value) VALUES ('bootstrapped_org', $1)", &[&org.id.to_string()])
                .await?;
            Ok(())
        })
    }

    async fn get_org(&self, id: &ObjectId) -> Result<Option<Org>> {
        let c = self.pool.get().await?;
        query_opt(&*c, "SELECT id, name, created FROM orgs WHERE id = $1", &[&id.to_string()])
            .await?
            .map(|r| to_org((r.get(0), r.get(1), r.get(2))))
            .transpose()
    }

    async fn list_orgs(&self, only: &ObjectId) -> Result<Vec<Org>> {
        Ok(self.get_org(only).await?.into_iter().collect())
    }

    async fn insert_api_key(&self, key: &ApiKey, sealed: &[u8]) -> Result<()> {
        in_tx!(self, |tx| { insert_key(tx, key, sealed).await })
    }

    async fn get_api_key(&self, id: &ObjectId) -> Result<Option<ApiKey>> {
        let c = self.pool.get().await?;
        let row =
            query_opt(&*c, &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"), &[&id.to_string()]).await?;
        match row {
            Some(r) => Ok(Some(to_key(&*c, key_row(&r)).await?.key)),
            None => Ok(None),
        }
    }

    async fn find_api_key_by_public(&self, public_key: &str) -> Result<Option<StoredApiKey>> {
        let c = self.pool.get().await?;
        let row = query_opt(&*c, &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE public_key = $1"), &[&public_key])
            .await?;
        match row {
            Some(r) => Ok(Some(to_key(&*c, key_row(&r)).await?)),
            None => Ok(None),
        }
    }

    async fn list_api_keys(&self, org: &ObjectId, page: &Page) -> Result<(Vec<ApiKey>, u64)> {
        let c = self.pool.get().await?;
        let org = org.to_string();
        let total = count(&*c, "SELECT COUNT(*) FROM api_keys WHERE org_id = $1", &[&org]).await?;
        let (n, skip) = limit(page);
        let rows = query(
            &*c,
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created, id LIMIT $2 OFFSET $3"),
            &[&org, &n, &skip],
        )
        .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for r in &rows {
            keys.push(to_key(&*c, key_row(r)).await?.key);
        }
        Ok((keys, total))
    }

    async fn delete_api_key(&self, id: &ObjectId) -> Result<bool> {
        let id = id.to_string();
        in_tx!(self, |tx| {
            execute(tx, "DELETE FROM api_key_project_roles WHERE api_key_id = $1", &[&id]).await?;
            Ok(execute(tx, "DELETE FROM api_keys WHERE id = $1", &[&id]).await? > 0)
        })
    }

    async fn set_project_roles(&self, key: &ObjectId, group: &ObjectId, roles: &[ProjectRole]) -> Result<()> {
        let (key, group) = (key.to_string(), group.to_string());
        in_tx!(self, |tx| { put_project_roles(tx, &key, &group, roles).await })
    }

    async fn insert_project(&self, p: &Project, owner: Option<&ObjectId>) -> Result<()> {
        in_tx!(self, |tx| {
            let tags = json_text(&p.tags)?;
            let inserted = tx
                .execute(
                    "INSERT INTO projects (id, org_id, name, state, created, tags, with_default_alerts_settings)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &p.id.to_string(),
                        &p.org_id.to_string(),
                        &p.name,
                        &p.state.as_str(),
                        &time_fmt::format(p.created),
                        &tags,
                        &p.with_default_alerts_settings,
                    ],
                )
                .await;
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(Error::GroupNameTaken { name: p.name.clone() }),
                Err(e) => return Err(pg_err(e)),
            }
            if let Some(owner) = owner {
                put_project_roles(tx, &owner.to_string(), &p.id.to_string(), &[ProjectRole::GroupOwner]).await?;
            }
            Ok(())
        })
    }

    async fn get_project(&self, id: &ObjectId) -> Result<Option<Project>> {
        let c = self.pool.get().await?;
        query_opt(&*c, &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1"), &[&id.to_string()])
            .await?
            .map(|r| to_project(project_row(&r)))
            .transpose()
    }

    async fn get_project_by_name(&self, org: &ObjectId, name: &str) -> Result<Option<Project>> {
        let c = self.pool.get().await?;
        query_opt(
            &*c,
            &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE org_id = $1 AND name = $2"),
            &[&org.to_string(), &name],
        )
        .await?
        .map(|r| to_project(project_row(&r)))
        .transpose()
    }

    async fn list_projects(&self, scope: &ProjectScope, page: &Page) -> Result<(Vec<Project>, u64)> {
        let c = self.pool.get().await?;
        let (org, ids): (String, Option<&Vec<String>>) = match scope {
            ProjectScope::Org(org) => (org.to_string(), None),
            ProjectScope::Only { org, ids } => (org.to_string(), Some(ids)),
        };
        let (n, skip) = limit(page);
        let (total, rows) = match ids {
            None => (
                count(&*c, "SELECT COUNT(*) FROM projects WHERE org_id = $1", &[&org]).await?,
                query(
                    &*c,
                    &format!(
                        "SELECT {PROJECT_COLUMNS} FROM projects WHERE org_id = $1 ORDER BY seq LIMIT $2 OFFSET $3"
                    ),
                    &[&org, &n, &skip],
                )
                .await?,
            ),
            Some(ids) => (
                count(&*c, "SELECT COUNT(*) FROM projects WHERE org_id = $1 AND id = ANY($2)", &[&org, ids]).await?,
                query(
                    &*c,
                    &format!(
                        "SELECT {PROJECT_COLUMNS} FROM projects WHERE org_id = $1 AND id = ANY($2)
                         ORDER BY seq LIMIT $3 OFFSET $4"
                    ),
                    &[&org, ids, &n, &skip],
                )
                .await?,
            ),
        };
        let projects = rows.iter().map(|r| to_project(project_row(r))).collect::<Result<_>>()?;
        Ok((projects, total))
    }

    async fn delete_project(&self, id: &ObjectId) -> Result<bool> {
        let id = id.to_string();
        in_tx!(self, |tx| {
            execute(tx, "DELETE FROM api_key_project_roles WHERE group_id = $1", &[&id]).await?;
            Ok(execute(tx, "DELETE FROM projects WHERE id = $1", &[&id]).await? > 0)
        })
    }

    async fn update_project(&self, p: &Project) -> Result<()> {
        let c = self.pool.get().await?;
        let tags = json_text(&p.tags)?;
        match c
            .execute("UPDATE projects SET name = $2, tags = $3 WHERE id = $1", &[&p.id.to_string(), &p.name, &tags])
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Error::GroupNameTaken { name: p.name.clone() }),
            Err(e) => Err(pg_err(e)),
        }
    }

    async fn insert_role(&self, role: &AwsIamRole, evs: &[Event]) -> Result<()> {
        in_tx!(self, |tx| {
            execute(
                tx,
                &format!(
                    "INSERT INTO cloud_provider_access_roles ({}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    roles::COLUMNS
                ),
                &[
                    &role.role_id.to_string(),
                    &role.group_id.to_string(),
                    &role.atlas_aws_account_arn,
                    &role.external_id,
                    &role.iam_assumed_role_arn,
                    &time_fmt::format(role.created),
                    &role.authorized.map(time_fmt::format),
                ],
            )
            .await?;
            append_events(tx, evs).await
        })
    }

    async fn get_role(&self, group: &ObjectId, role_id: &ObjectId) -> Result<Option<AwsIamRole>> {
        let c = self.pool.get().await?;
        query_opt(
            &*c,
            &format!("SELECT {} FROM cloud_provider_access_roles WHERE group_id = $1 AND role_id = $2", roles::COLUMNS),
            &[&group.to_string(), &role_id.to_string()],
        )
        .await?
        .map(|r| roles::to_role(role_row(&r)))
        .transpose()
    }

    async fn list_roles(&self, group: &ObjectId) -> Result<Vec<AwsIamRole>> {
        let c = self.pool.get().await?;
        query(
            &*c,
            &format!(
                "SELECT {} FROM cloud_provider_access_roles WHERE group_id = $1 ORDER BY created, role_id",
                roles::COLUMNS
            ),
            &[&group.to_string()],
        )
        .await?
        .iter()
        .map(|r| roles::to_role(role_row(r)))
        .collect()
    }

    async fn update_role(&self, role: &AwsIamRole, evs: &[Event]) -> Result<()> {
        in_tx!(self, |tx| {
            execute(
                tx,
                "UPDATE cloud_provider_access_roles SET iam_assumed_role_arn = $2, authorized = $3 WHERE role_id = $1",
                &[&role.role_id.to_string(), &role.iam_assumed_role_arn, &role.authorized.map(time_fmt::format)],
            )
            .await?;
            append_events(tx, evs).await
        })
    }

    async fn delete_role(&self, role: &AwsIamRole, evs: &[Event]) -> Result<()> {
        in_tx!(self, |tx| {
            execute(tx, "DELETE FROM cloud_provider_access_roles WHERE role_id = $1", &[&role.role_id.to_string()])
                .await?;
            append_events(tx, evs).await
        })
    }

    async fn get_encryption_at_rest(&self, group: &ObjectId) -> Result<Option<StoredEncryptionAtRest>> {
        let c = self.pool.get().await?;
        Ok(ears_where(&*c, "group_id = $1", &[&group.to_string()]).await?.pop())
    }

    async fn save_encryption_at_rest(
        &self,
        group: &ObjectId,
        aws_kms: &AwsKms,
        secret: Option<Option<Vec<u8>>>,
        next_check_at: time::OffsetDateTime,
        evs: &[Event],
    ) -> Result<()> {
        let (group, json, next) = (group.to_string(), json_text(aws_kms)?, instant(next_check_at));
        in_tx!(self, |tx| {
            execute(
                    tx,
                    "INSERT INTO encryption_at_rest (group_id, aws_kms, sealed_secret, version, next_check_at, failures)
                     VALUES ($1, $2, $3, 1, $4, 0)
                     ON CONFLICT (group_id) DO UPDATE SET aws_kms = excluded.aws_kms,
                         version = encryption_at_rest.version + 1, next_check_at = excluded.next_check_at, failures = 0",
                    &[&group, &json, &secret.clone().flatten(), &next],
                )
                .await?;
            if let Some(secret) = &secret {
                execute(tx, "UPDATE encryption_at_rest SET sealed_secret = $2 WHERE group_id = $1", &[&group, secret])
                    .await?;
            }
            append_events(tx, evs).await
        })
    }

    async fn record_check(
        &self,
        group: &ObjectId,
        version: i64,
        valid: bool,
        key_arn: Option<String>,
        next_check_at: time::OffsetDateTime,
        failures: u32,
        evs: &[Event],
    ) -> Result<bool> {
        let group = group.to_string();
        in_tx!(self, |tx| {
            let current = ears_where(tx, "group_id = $1 AND version = $2 FOR UPDATE", &[&group, &version]).await?;
            let Some(current) = current.into_iter().next() else { return Ok(false) };
            let json = json_text(&ear::checked(current.aws_kms, valid, key_arn))?;
            execute(
                tx,
                "UPDATE encryption_at_rest SET aws_kms = $2, next_check_at = $3, failures = $4, version = version + 1
                     WHERE group_id = $1",
                &[&group, &json, &instant(next_check_at), &(failures.min(i32::MAX as u32) as i32)],
            )
            .await?;
            append_events(tx, evs).await?;
            Ok(true)
        })
    }

    async fn due_checks(&self, now: time::OffsetDateTime) -> Result<Vec<StoredEncryptionAtRest>> {
        let c = self.pool.get().await?;
        ears_where(&*c, DUE, &[&instant(now)]).await
    }

    async fn claim_due_checks(
        &self,
        now: time::OffsetDateTime,
        until: time::OffsetDateTime,
    ) -> Result<Vec<StoredEncryptionAtRest>> {
        let until_text = instant(until);
        in_tx!(self, |tx| {
            let mut claimed = ears_where(tx, &format!("{DUE} FOR UPDATE SKIP LOCKED"), &[&instant(now)]).await?;
            for s in &mut claimed {
                execute(
                    tx,
                    "UPDATE encryption_at_rest SET next_check_at = $2, version = version + 1 WHERE group_id = $1",
                    &[&s.group_id.to_string(), &until_text],
                )
                .await?;
                s.next_check_at = until;
                s.version += 1;
            }
            Ok(claimed)
        })
    }

    async fn insert_private_endpoint(&self, e: &PrivateEndpoint, evs: &[Event]) -> Result<()> {
        in_tx!(self, |tx| {
            insert_pe(tx, e).await?;
            append_events(tx, evs).await
        })
    }

    async fn get_private_endpoint(&self, group: &ObjectId, id: &ObjectId) -> Result<Option<PrivateEndpoint>> {
        let c = self.pool.get().await?;
        Ok(pes_where(&*c, "group_id = $1 AND id = $2", &[&group.to_string(), &id.to_string()]).await?.pop())
    }

    async fn list_private_endpoints(&self, group: &ObjectId, page: &Page) -> Result<(Vec<PrivateEndpoint>, u64)> {
        let c = self.pool.get().await?;
        let group = group.to_string();
        let total = count(&*c, "SELECT COUNT(*) FROM private_endpoints WHERE group_id = $1", &[&group]).await?;
        let (n, skip) = limit(page);
        let list = pes_where(&*c, "group_id = $1 ORDER BY seq LIMIT $2 OFFSET $3", &[&group, &n, &skip]).await?;
        Ok((list, total))
    }

    async fn all_private_endpoints(&self, group: &ObjectId) -> Result<Vec<PrivateEndpoint>> {
        let c = self.pool.get().await?;
        pes_where(&*c, "group_id = $1 ORDER BY seq", &[&group.to_string()]).await
    }

    async fn update_private_endpoint(&self, e: &PrivateEndpoint, evs: &[Event]) -> Result<()> {
        in_tx!(self, |tx| {
            update_pe(tx, e).await?;
            append_events(tx, evs).await
        })
    }

    async fn recreate_private_endpoint(
        &self,
        old: &PrivateEndpoint,
        new: &PrivateEndpoint,
        evs: &[Event],
    ) -> Result<()> {
        in_tx!(self, |tx| {
            update_pe(tx, old).await?;
            insert_pe(tx, new).await?;
            append_events(tx, evs).await
        })
    }

    async fn delete_private_endpoint(&self, e: &PrivateEndpoint, evs: &[Event]) -> Result<()> {
        in_tx!(self, |tx| {
            if execute(tx, "DELETE FROM private_endpoints WHERE id = $1", &[&e.id.to_string()]).await? == 1 {
                append_events(tx, evs).await?;
            }
            Ok(())
        })
    }

    async fn transition_private_endpoint(
        &self,
        before: &PrivateEndpoint,
        after: &PrivateEndpoint,
        evs: &[Event],
    ) -> Result<bool> {
        in_tx!(self, |tx| {
            let moved = transition_pe(tx, before, after).await?;
            if moved {
                append_events(tx, evs).await?;
            }
            Ok(moved)
        })
    }

    async fn recreate_private_endpoint_if(
        &self,
        before: &PrivateEndpoint,
        old: &PrivateEndpoint,
        new: &PrivateEndpoint,
        evs: &[Event],
    ) -> Result<bool> {
        in_tx!(self, |tx| {
            let moved = transition_pe(tx, before, old).await?;
            if moved {
                insert_pe(tx, new).await?;
                append_events(tx, evs).await?;
            }
            Ok(moved)
        })
    }

    async fn unsettled_private_endpoints(&self) -> Result<Vec<PrivateEndpoint>> {
        let c = self.pool.get().await?;
        pes_where(&*c, "status != 'FAILED' ORDER BY seq", &[]).await
    }

    async fn insert_cluster(&self, cl: &Cluster, evs: &[Event]) -> Result<()> {
        let body = json_text(cl)?;
        in_tx!(self, |tx| {
            let inserted = tx
                .execute(
                    "INSERT INTO clusters (id, group_id, name, body) VALUES ($1, $2, $3, $4)",
                    &[&cl.id.to_string(), &cl.group_id.to_string(), &cl.name, &body],
                )
                .await;
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(Error::ClusterNameTaken { name: cl.name.clone() }),
                Err(e) => return Err(pg_err(e)),
            }
            append_events(tx, evs).await
        })
    }

    async fn get_cluster(&self, group: &ObjectId, name: &str) -> Result<Option<Cluster>> {
        let c = self.pool.get().await?;
        Ok(clusters_where(&*c, "group_id = $1 AND name = $2", &[&group.to_string(), &name]).await?.pop())
    }

    async fn list_clusters(&self, group: &ObjectId, page: &Page) -> Result<(Vec<Cluster>, u64)> {
        let c = self.pool.get().await?;
        let group = group.to_string();
        let total = count(&*c, "SELECT COUNT(*) FROM clusters WHERE group_id = $1", &[&group]).await?;
        let (n, skip) = limit(page);
        let list = clusters_where(&*c, "group_id = $1 ORDER BY seq LIMIT $2 OFFSET $3", &[&group, &n, &skip]).await?;
        Ok((list, total))
    }

    async fn all_clusters(&self, group: &ObjectId) -> Result<Vec<Cluster>> {
        let c = self.pool.get().await?;
        clusters_where(&*c, "group_id = $1 ORDER BY seq", &[&group.to_string()]).await
    }

    async fn every_cluster(&self) -> Result<Vec<Cluster>> {
        let c = self.pool.get().await?;
        clusters_where(&*c, "TRUE ORDER BY seq", &[]).await
    }

    async fn update_cluster(&self, cl: &Cluster, evs: &[Event]) -> Result<()> {
        let body = json_text(cl)?;
        in_tx!(self, |tx| {
            execute(tx, "UPDATE clusters SET body = $2 WHERE id = $1", &[&cl.id.to_string(), &body]).await?;
            append_events(tx, evs).await
        })
    }

    async fn delete_cluster(&self, cl: &Cluster, evs: &[Event]) -> Result<()> {
        in_tx!(self, |tx| {
            if execute(tx, "DELETE FROM clusters WHERE id = $1", &[&cl.id.to_string()]).await? == 1 {
                append_events(tx, evs).await?;
            }
            Ok(())
        })
    }

    async fn transition_cluster(&self, before: &Cluster, after: &Cluster, evs: &[Event]) -> Result<bool> {
        let body = json_text(after)?;
        in_tx!(self, |tx| {
            // Compared as records (not text), under the row's lock.
            let current = clusters_where(tx, "id = $1 FOR UPDATE", &[&before.id.to_string()]).await?;
            if current.first() != Some(before) {
                return Ok(false);
            }
            execute(tx, "UPDATE clusters SET body = $2 WHERE id = $1", &[&after.id.to_string(), &body]).await?;
            append_events(tx, evs).await?;
            Ok(true)
        })
    }

    async fn acquire_lease(&self, name: &str, holder: &str, url: &str, ttl: std::time::Duration) -> Result<bool> {
        let c = self.pool.get().await?;
        let millis = ttl.as_millis().min(i64::MAX as u128) as i64;
        let changed = execute(
            &*c,
            "INSERT INTO leases (name, holder, holder_url, expires_at)
             VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, holder_url = excluded.holder_url,
                 expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at < now()",
            &[&name, &holder, &url, &(millis as f64)],
        )
        .await?;
        Ok(changed == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let c = self.pool.get().await?;
        execute(&*c, "DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder]).await?;
        Ok(())
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>> {
        let c = self.pool.get().await?;
        Ok(query(
            &*c,
            "SELECT name, holder, holder_url, expires_at >= now() FROM leases
             WHERE left(name, length($1)) = $1 ORDER BY name",
            &[&prefix],
        )
        .await?
        .iter()
        .map(|r| Lease { name: r.get(0), holder: r.get(1), holder_url: r.get(2), live: r.get(3) })
        .collect())
    }

    async fn append_events(&self, evs: &[Event]) -> Result<()> {
        in_tx!(self, |tx| { append_events(tx, evs).await })
    }

    async fn list_events(&self, group: &ObjectId, page: &Page) -> Result<(Vec<Event>, u64)> {
        let c = self.pool.get().await?;
        let group = group.to_string();
        let total = count(&*c, "SELECT COUNT(*) FROM events WHERE group_id = $1", &[&group]).await?;
        let (n, skip) = limit(page);
        let events = query(
            &*c,
            "SELECT id, group_id, type, created, details FROM events WHERE group_id = $1
             ORDER BY seq DESC LIMIT $2 OFFSET $3",
            &[&group, &n, &skip],
        )
        .await?
        .iter()
        .map(|r| to_event(event_row(r)))
        .collect::<Result<_>>()?;
        Ok((events, total))
    }

    async fn insert_session(&self, session: &Session) -> Result<()> {
        in_tx!(self, |tx| {
            execute(tx, "DELETE FROM sessions WHERE expires < $1", &[&time_fmt::format(session.created)]).await?;
            execute(
                tx,
                "INSERT INTO sessions (token_hash, kind, subject, created, expires) VALUES ($1, $2, $3, $4, $5)",
                &[
                    &session.token_hash,
                    &session.kind.as_str(),
                    &session.subject.to_string(),
                    &time_fmt::format(session.created),
                    &time_fmt::format(session.expires),
                ],
            )
            .await?;
            Ok(())
        })
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<Session>> {
        let c = self.pool.get().await?;
        let row = query_opt(
            &*c,
            "SELECT token_hash, kind, subject, created, expires FROM sessions WHERE token_hash = $1",
            &[&token_hash],
        )
        .await?;
        row.map(|r| crate::sessions::to_session((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))).transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<bool> {
        in_tx!(self, |tx| { Ok(execute(tx, "DELETE FROM sessions WHERE token_hash = $1", &[&token_hash]).await? > 0) })
    }

    async fn insert_service_account(&self, a: &ServiceAccount) -> Result<()> {
        let grants = json_text(&a.grants)?;
        in_tx!(self, |tx| {
            execute(
                tx,
                "INSERT INTO service_accounts (id, org_id, name, description, grants, created)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &a.id.to_string(),
                    &a.org_id.to_string(),
                    &a.name,
                    &a.description,
                    &grants,
                    &time_fmt::format(a.created),
                ],
            )
            .await?;
            put_secrets(tx, a).await
        })
    }

    async fn get_service_account(&self, id: &ObjectId) -> Result<Option<ServiceAccount>> {
        let c = self.pool.get().await?;
        let row =
            query_opt(&*c, &format!("SELECT {} FROM service_accounts WHERE id = $1", sas::COLUMNS), &[&id.to_string()])
                .await?;
        match row {
            Some(r) => Ok(Some(account_from(&*c, &r).await?)),
            None => Ok(None),
        }
    }

    async fn list_service_accounts(&self, org: &ObjectId, page: &Page) -> Result<(Vec<ServiceAccount>, u64)> {
        let c = self.pool.get().await?;
        let org = org.to_string();
        let total = count(&*c, "SELECT COUNT(*) FROM service_accounts WHERE org_id = $1", &[&org]).await?;
        let (n, skip) = limit(page);
        let rows = query(
            &*c,
            &format!("SELECT {} FROM service_accounts WHERE org_id = $1 ORDER BY seq LIMIT $2 OFFSET $3", sas::COLUMNS),
            &[&org, &n, &skip],
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(account_from(&*c, r).await?);
        }
        Ok((out, total))
    }

    async fn update_service_account(&self, a: &ServiceAccount) -> Result<()> {
        let grants = json_text(&a.grants)?;
        in_tx!(self, |tx| {
            let n = execute(
                tx,
                "UPDATE service_accounts SET name = $2, description = $3, grants = $4 WHERE id = $1",
                &[&a.id.to_string(), &a.name, &a.description, &grants],
            )
            .await?;
            if n == 0 {
                return Err(Error::ServiceAccountNotFound { client_id: a.client_id() });
            }
            put_secrets(tx, a).await
        })
    }

    async fn delete_service_account(&self, id: &ObjectId) -> Result<bool> {
        in_tx!(self, |tx| {
            execute(tx, "DELETE FROM sessions WHERE subject = $1", &[&id.to_string()]).await?;
            Ok(execute(tx, "DELETE FROM service_accounts WHERE id = $1", &[&id.to_string()]).await? > 0)
        })
    }
}
