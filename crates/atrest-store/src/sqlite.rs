//! The default store: one SQLite file in the data directory, WAL with `synchronous=FULL` so a
//! committed transaction survives `kill -9` and power loss.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use atrest_core::api_keys::ApiKey;
use atrest_core::orgs::Org;
use atrest_core::paging::Page;
use atrest_core::projects::{Project, ProjectState, ResourceTag};
use atrest_core::roles::{Grants, OrgRole, ProjectRole};
use atrest_core::{time_fmt, Error, ObjectId, Result};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use atrest_core::cloud_provider_access::AwsIamRole;
use atrest_core::clusters::Cluster;
use atrest_core::encryption_at_rest::AwsKms;
use atrest_core::events::Event;
use atrest_core::private_endpoints::PrivateEndpoint;
use atrest_core::service_accounts::ServiceAccount;
use atrest_core::sessions::Session;

use crate::codec::{date_of, id_of, json_of};
use crate::{
    cloud_provider_access as roles, clusters, encryption_at_rest as ear, events, leases, migrations,
    private_endpoints as pes, service_accounts as sas, sessions,
};
use crate::{Lease, ProjectScope, Store, StoredApiKey, StoredEncryptionAtRest};

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    Error::Internal(format!("store: {e}"))
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err)?;
        let store = SqliteStore { conn: Arc::new(Mutex::new(conn)) };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.conn.lock().map_err(|_| Error::internal("store lock poisoned"))?;
        let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(db_err)?;
        for (i, sql) in migrations::SQLITE.iter().enumerate().skip(current as usize) {
            let tx = conn.transaction().map_err(db_err)?;
            tx.execute_batch(sql).map_err(db_err)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(db_err)?;
            tx.commit().map_err(db_err)?;
        }
        Ok(())
    }

    async fn with<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| Error::internal("store lock poisoned"))?;
            f(&mut guard)
        })
        .await
        .map_err(Error::internal)?
    }

    async fn tx<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction) -> Result<T> + Send + 'static,
    {
        self.with(move |conn| {
            let tx = conn.transaction().map_err(db_err)?;
            let out = f(&tx)?;
            tx.commit().map_err(db_err)?;
            Ok(out)
        })
        .await
    }
}

fn org_from_row(row: &Row) -> rusqlite::Result<(String, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

pub(crate) fn to_org((id, name, created): (String, String, String)) -> Result<Org> {
    Ok(Org { id: id_of(&id)?, name, created: date_of(&created)? })
}

pub(crate) const KEY_COLUMNS: &str = "id, org_id, public_key, description, org_roles, created, sealed_verifier";

pub(crate) struct KeyRow {
    pub(crate) id: String,
    pub(crate) org_id: String,
    pub(crate) public_key: String,
    pub(crate) description: String,
    pub(crate) org_roles: String,
    pub(crate) created: String,
    pub(crate) sealed_verifier: Vec<u8>,
}

fn key_row(row: &Row) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        id: row.get(0)?,
        org_id: row.get(1)?,
        public_key: row.get(2)?,
        description: row.get(3)?,
        org_roles: row.get(4)?,
        created: row.get(5)?,
        sealed_verifier: row.get(6)?,
    })
}

fn to_key(conn: &Connection, r: KeyRow) -> Result<StoredApiKey> {
    let mut stmt = conn
        .prepare_cached("SELECT group_id, roles FROM api_key_project_roles WHERE api_key_id = ?1 ORDER BY group_id")
        .map_err(db_err)?;
    let roles: Vec<(String, String)> = stmt
        .query_map([&r.id], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(db_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db_err)?;
    build_key(r, roles)
}

/// An API key from its row and its `(group, roles)` rows.
pub(crate) fn build_key(r: KeyRow, project_roles: Vec<(String, String)>) -> Result<StoredApiKey> {
    let org_roles: Vec<OrgRole> = json_of(&r.org_roles)?;
    let mut grants = Grants { org_roles, ..Default::default() };
    for (group, roles) in project_roles {
        grants.project_roles.insert(group, json_of(&roles)?);
    }
    Ok(StoredApiKey {
        key: ApiKey {
            id: id_of(&r.id)?,
            org_id: id_of(&r.org_id)?,
            public_key: r.public_key,
            description: r.description,
            grants,
            created: date_of(&r.created)?,
        },
        sealed_verifier: r.sealed_verifier,
    })
}

fn insert_key(tx: &Transaction, key: &ApiKey, sealed: &[u8]) -> Result<()> {
    let roles = serde_json::to_string(&key.grants.org_roles).map_err(Error::internal)?;
    tx.execute(
        &format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        params![
            key.id.to_string(),
            key.org_id.to_string(),
            key.public_key,
            key.description,
            roles,
            time_fmt::format(key.created),
            sealed
        ],
    )
    .map_err(db_err)?;
    for (group, roles) in &key.grants.project_roles {
        put_project_roles(tx, &key.id.to_string(), group, roles)?;
    }
    Ok(())
}

fn put_project_roles(tx: &Connection, key: &str, group: &str, roles: &[ProjectRole]) -> Result<()> {
    let roles = serde_json::to_string(roles).map_err(Error::internal)?;
    tx.execute(
        "INSERT INTO api_key_project_roles (api_key_id, group_id, roles) VALUES (?1, ?2, ?3)
         ON CONFLICT (api_key_id, group_id) DO UPDATE SET roles = excluded.roles",
        params![key, group, roles],
    )
    .map_err(db_err)?;
    Ok(())
}

pub(crate) const PROJECT_COLUMNS: &str = "id, org_id, name, state, created, tags, with_default_alerts_settings, \
     (SELECT COUNT(*) FROM clusters WHERE clusters.group_id = projects.id) AS cluster_count";

pub(crate) type ProjectRow = (String, String, String, String, String, String, bool, i64);

fn project_row(row: &Row) -> rusqlite::Result<ProjectRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?))
}

pub(crate) fn to_project(r: ProjectRow) -> Result<Project> {
    let tags: Vec<ResourceTag> = json_of(&r.5)?;
    Ok(Project {
        id: id_of(&r.0)?,
        org_id: id_of(&r.1)?,
        name: r.2,
        state: ProjectState::parse(&r.3).ok_or_else(|| Error::internal("store: corrupt project state"))?,
        created: date_of(&r.4)?,
        tags,
        with_default_alerts_settings: r.6,
        cluster_count: r.7.max(0) as u64,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_owned();
        self.with(move |c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(db_err)
        })
        .await
    }

    async fn put_meta(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.tx(move |tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn bootstrap(&self, org: &Org, key: &ApiKey, sealed: &[u8]) -> Result<()> {
        let (org, key, sealed) = (org.clone(), key.clone(), sealed.to_vec());
        self.tx(move |tx| {
            tx.execute(
                "INSERT INTO orgs (id, name, created) VALUES (?1, ?2, ?3)",
                params![org.id.to_string(), org.name, time_fmt::format(org.created)],
            )
            .map_err(db_err)?;
            insert_key(tx, &key, &sealed)?;
            tx.execute("INSERT INTO meta (key, value) VALUES ('bootstrapped_org', ?1)", [org.id.to_string()])
                .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn get_org(&self, id: &ObjectId) -> Result<Option<Org>> {
        let id = id.to_string();
        self.with(move |c| {
            c.query_row("SELECT id, name, created FROM orgs WHERE id = ?1", [id], org_from_row)
                .optional()
                .map_err(db_err)?
                .map(to_org)
                .transpose()
        })
        .await
    }

    async fn list_orgs(&self, only: &ObjectId) -> Result<Vec<Org>> {
        Ok(self.get_org(only).await?.into_iter().collect())
    }

    async fn insert_api_key(&self, key: &ApiKey, sealed: &[u8]) -> Result<()> {
        let (key, sealed) = (key.clone(), sealed.to_vec());
        self.tx(move |tx| insert_key(tx, &key, &sealed)).await
    }

    async fn get_api_key(&self, id: &ObjectId) -> Result<Option<ApiKey>> {
        let id = id.to_string();
        self.with(move |c| {
            let row = c
                .query_row(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"), [id], key_row)
                .optional()
                .map_err(db_err)?;
            row.map(|r| to_key(c, r).map(|k| k.key)).transpose()
        })
        .await
    }

    async fn find_api_key_by_public(&self, public_key: &str) -> Result<Option<StoredApiKey>> {
        let public_key = public_key.to_owned();
        self.with(move |c| {
            let row = c
                .query_row(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE public_key = ?1"), [public_key], key_row)
                .optional()
                .map_err(db_err)?;
            row.map(|r| to_key(c, r)).transpose()
        })
        .await
    }

    async fn list_api_keys(&self, org: &ObjectId, page: &Page) -> Result<(Vec<ApiKey>, u64)> {
        let (org, page) = (org.to_string(), *page);
        self.with(move |c| {
            let total: i64 =
                c.query_row("SELECT COUNT(*) FROM api_keys WHERE org_id = ?1", [&org], |r| r.get(0)).map_err(db_err)?;
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = ?1 ORDER BY created, id LIMIT ?2 OFFSET ?3"
                ))
                .map_err(db_err)?;
            let rows: Vec<KeyRow> = stmt
                .query_map(params![org, page.items_per_page as i64, page.offset() as i64], key_row)
                .map_err(db_err)?
                .collect::<rusqlite::Result<_>>()
                .map_err(db_err)?;
            let keys = rows.into_iter().map(|r| to_key(c, r).map(|k| k.key)).collect::<Result<_>>()?;
            Ok((keys, total as u64))
        })
        .await
    }

    async fn delete_api_key(&self, id: &ObjectId) -> Result<bool> {
        let id = id.to_string();
        self.tx(move |tx| {
            tx.execute("DELETE FROM api_key_project_roles WHERE api_key_id = ?1", [&id]).map_err(db_err)?;
            Ok(tx.execute("DELETE FROM api_keys WHERE id = ?1", [&id]).map_err(db_err)? > 0)
        })
        .await
    }

    async fn set_project_roles(&self, key: &ObjectId, group: &ObjectId, roles: &[ProjectRole]) -> Result<()> {
        let (key, group, roles) = (key.to_string(), group.to_string(), roles.to_vec());
        self.tx(move |tx| put_project_roles(tx, &key, &group, &roles)).await
    }

    async fn insert_project(&self, p: &Project, owner: Option<&ObjectId>) -> Result<()> {
        let (p, owner) = (p.clone(), owner.map(|o| o.to_string()));
        self.tx(move |tx| {
            let tags = serde_json::to_string(&p.tags).map_err(Error::internal)?;
            let inserted = tx.execute(
                "INSERT INTO projects (id, org_id, name, state, created, tags, with_default_alerts_settings)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    p.id.to_string(),
                    p.org_id.to_string(),
                    p.name,
                    p.state.as_str(),
                    time_fmt::format(p.created),
                    tags,
                    p.with_default_alerts_settings
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    return Err(Error::GroupNameTaken { name: p.name.clone() })
                }
                Err(e) => return Err(db_err(e)),
            }
            if let Some(owner) = owner {
                put_project_roles(tx, &owner, &p.id.to_string(), &[ProjectRole::GroupOwner])?;
            }
            Ok(())
        })
        .await
    }

    async fn get_project(&self, id: &ObjectId) -> Result<Option<Project>> {
        let id = id.to_string();
        self.with(move |c| {
            c.query_row(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1"), [id], project_row)
                .optional()
                .map_err(db_err)?
                .map(to_project)
                .transpose()
        })
        .await
    }

    async fn get_project_by_name(&self, org: &ObjectId, name: &str) -> Result<Option<Project>> {
        let (org, name) = (org.to_string(), name.to_owned());
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE org_id = ?1 AND name = ?2"),
                params![org, name],
                project_row,
            )
            .optional()
            .map_err(db_err)?
            .map(to_project)
            .transpose()
        })
        .await
    }

    async fn list_projects(&self, scope: &ProjectScope, page: &Page) -> Result<(Vec<Project>, u64)> {
        let (scope, page) = (scope.clone(), *page);
        self.with(move |c| {
            let (filter, org, ids) = match &scope {
                ProjectScope::Org(org) => ("org_id = ?1".to_string(), org.to_string(), "[]".to_string()),
                ProjectScope::Only { org, ids } => (
                    "org_id = ?1 AND id IN (SELECT value FROM json_each(?2))".to_string(),
                    org.to_string(),
                    serde_json::to_string(ids).map_err(Error::internal)?,
                ),
            };
            let uses_ids = matches!(scope, ProjectScope::Only { .. });
            let count_sql = format!("SELECT COUNT(*) FROM projects WHERE {filter}");
            let total: i64 = if uses_ids {
                c.query_row(&count_sql, params![org, ids], |r| r.get(0))
            } else {
                c.query_row(&count_sql, params![org], |r| r.get(0))
            }
            .map_err(db_err)?;
            let list_sql = format!(
                "SELECT {PROJECT_COLUMNS} FROM projects WHERE {filter} ORDER BY seq LIMIT {} OFFSET {}",
                page.items_per_page,
                page.offset()
            );
            let mut stmt = c.prepare(&list_sql).map_err(db_err)?;
            let rows: Vec<ProjectRow> = if uses_ids {
                stmt.query_map(params![org, ids], project_row)
            } else {
                stmt.query_map(params![org], project_row)
            }
            .map_err(db_err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(db_err)?;
            let projects = rows.into_iter().map(to_project).collect::<Result<_>>()?;
            Ok((projects, total as u64))
        })
        .await
    }

    async fn delete_project(&self, id: &ObjectId) -> Result<bool> {
        let id = id.to_string();
        self.tx(move |tx| {
            tx.execute("DELETE FROM api_key_project_roles WHERE group_id = ?1", [&id]).map_err(db_err)?;
            Ok(tx.execute("DELETE FROM projects WHERE id = ?1", [&id]).map_err(db_err)? > 0)
        })
        .await
    }

    async fn update_project(&self, p: &Project) -> Result<()> {
        let p = p.clone();
        self.tx(move |tx| {
            let tags = serde_json::to_string(&p.tags).map_err(Error::internal)?;
            match tx.execute(
                "UPDATE projects SET name = ?2, tags = ?3 WHERE id = ?1",
                params![p.id.to_string(), p.name, tags],
            ) {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Err(Error::GroupNameTaken { name: p.name.clone() })
                }
                Err(e) => Err(db_err(e)),
            }
        })
        .await
    }

    async fn insert_role(&self, role: &AwsIamRole, evs: &[Event]) -> Result<()> {
        let (role, evs) = (role.clone(), evs.to_vec());
        self.tx(move |tx| {
            roles::insert(tx, &role)?;
            events::append(tx, &evs)
        })
        .await
    }

    async fn get_role(&self, group: &ObjectId, role_id: &ObjectId) -> Result<Option<AwsIamRole>> {
        let (group, role_id) = (group.to_string(), role_id.to_string());
        self.with(move |c| roles::get(c, &group, &role_id)).await
    }

    async fn list_roles(&self, group: &ObjectId) -> Result<Vec<AwsIamRole>> {
        let group = group.to_string();
        self.with(move |c| roles::list(c, &group)).await
    }

    async fn update_role(&self, role: &AwsIamRole, evs: &[Event]) -> Result<()> {
        let (role, evs) = (role.clone(), evs.to_vec());
        self.tx(move |tx| {
            roles::update(tx, &role)?;
            events::append(tx, &evs)
        })
        .await
    }

    async fn delete_role(&self, role: &AwsIamRole, evs: &[Event]) -> Result<()> {
        let (role, evs) = (role.clone(), evs.to_vec());
        self.tx(move |tx| {
            roles::delete(tx, &role)?;
            events::append(tx, &evs)
        })
        .await
    }

    async fn get_encryption_at_rest(&self, group: &ObjectId) -> Result<Option<StoredEncryptionAtRest>> {
        let group = group.to_string();
        self.with(move |c| ear::get(c, &group)).await
    }

    async fn save_encryption_at_rest(
        &self,
        group: &ObjectId,
        aws_kms: &AwsKms,
        secret: Option<Option<Vec<u8>>>,
        next_check_at: time::OffsetDateTime,
        evs: &[Event],
    ) -> Result<()> {
        let (group, aws_kms, evs) = (*group, aws_kms.clone(), evs.to_vec());
        self.tx(move |tx| {
            ear::save(tx, &group, &aws_kms, secret, next_check_at)?;
            events::append(tx, &evs)
        })
        .await
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
        let (group, evs) = (*group, evs.to_vec());
        self.tx(move |tx| {
            let recorded = ear::record_check(tx, &group, version, valid, key_arn, next_check_at, failures)?;
            if recorded {
                events::append(tx, &evs)?;
            }
            Ok(recorded)
        })
        .await
    }

    async fn due_checks(&self, now: time::OffsetDateTime) -> Result<Vec<StoredEncryptionAtRest>> {
        self.with(move |c| ear::due(c, now)).await
    }

    async fn claim_due_checks(
        &self,
        now: time::OffsetDateTime,
        until: time::OffsetDateTime,
    ) -> Result<Vec<StoredEncryptionAtRest>> {
        self.tx(move |tx| ear::claim_due(tx, now, until)).await
    }

    async fn insert_private_endpoint(&self, e: &PrivateEndpoint, evs: &[Event]) -> Result<()> {
        let (e, evs) = (e.clone(), evs.to_vec());
        self.tx(move |tx| {
            pes::insert(tx, &e)?;
            events::append(tx, &evs)
        })
        .await
    }

    async fn get_private_endpoint(&self, group: &ObjectId, id: &ObjectId) -> Result<Option<PrivateEndpoint>> {
        let (group, id) = (group.to_string(), id.to_string());
        self.with(move |c| pes::get(c, &group, &id)).await
    }

    async fn list_private_endpoints(&self, group: &ObjectId, page: &Page) -> Result<(Vec<PrivateEndpoint>, u64)> {
        let (group, page) = (group.to_string(), *page);
        self.with(move |c| pes::list(c, &group, &page)).await
    }

    async fn all_private_endpoints(&self, group: &ObjectId) -> Result<Vec<PrivateEndpoint>> {
        let group = group.to_string();
        self.with(move |c| pes::all_of(c, &group)).await
    }

    async fn update_private_endpoint(&self, e: &PrivateEndpoint, evs: &[Event]) -> Result<()> {
        let (e, evs) = (e.clone(), evs.to_vec());
        self.tx(move |tx| {
            pes::update(tx, &e)?;
            events::append(tx, &evs)
        })
        .await
    }

    async fn recreate_private_endpoint(
        &self,
        old: &PrivateEndpoint,
        new: &PrivateEndpoint,
        evs: &[Event],
    ) -> Result<()> {
        let (old, new, evs) = (old.clone(), new.clone(), evs.to_vec());
        self.tx(move |tx| {
            pes::update(tx, &old)?;
            pes::insert(tx, &new)?;
            events::append(tx, &evs)
        })
        .await
    }

    async fn delete_private_endpoint(&self, e: &PrivateEndpoint, evs: &[Event]) -> Result<()> {
        let (e, evs) = (e.clone(), evs.to_vec());
        self.tx(move |tx| if pes::delete(tx, &e)? { events::append(tx, &evs) } else { Ok(()) }).await
    }

    async fn transition_private_endpoint(
        &self,
        before: &PrivateEndpoint,
        after: &PrivateEndpoint,
        evs: &[Event],
    ) -> Result<bool> {
        let (before, after, evs) = (before.clone(), after.clone(), evs.to_vec());
        self.tx(move |tx| {
            let moved = pes::transition(tx, &before, &after)?;
            if moved {
                events::append(tx, &evs)?;
            }
            Ok(moved)
        })
        .await
    }

    async fn recreate_private_endpoint_if(
        &self,
        before: &PrivateEndpoint,
        old: &PrivateEndpoint,
        new: &PrivateEndpoint,
        evs: &[Event],
    ) -> Result<bool> {
        let (before, old, new, evs) = (before.clone(), old.clone(), new.clone(), evs.to_vec());
        self.tx(move |tx| {
            let moved = pes::transition(tx, &before, &old)?;
            if moved {
                pes::insert(tx, &new)?;
                events::append(tx, &evs)?;
            }
            Ok(moved)
        })
        .await
    }

    async fn unsettled_private_endpoints(&self) -> Result<Vec<PrivateEndpoint>> {
        self.with(|c| pes::unsettled(c)).await
    }

    async fn insert_cluster(&self, c: &Cluster, evs: &[Event]) -> Result<()> {
        let (c, evs) = (c.clone(), evs.to_vec());
        self.tx(move |tx| {
            clusters::insert(tx, &c)?;
            events::append(tx, &evs)
        })
        .await
    }

    async fn get_cluster(&self, group: &ObjectId, name: &str) -> Result<Option<Cluster>> {
        let (group, name) = (group.to_string(), name.to_owned());
        self.with(move |c| clusters::by_name(c, &group, &name)).await
    }

    async fn list_clusters(&self, group: &ObjectId, page: &Page) -> Result<(Vec<Cluster>, u64)> {
        let (group, page) = (group.to_string(), *page);
        self.with(move |c| clusters::list(c, &group, &page)).await
    }

    async fn all_clusters(&self, group: &ObjectId) -> Result<Vec<Cluster>> {
        let group = group.to_string();
        self.with(move |c| clusters::all_of(c, &group)).await
    }

    async fn every_cluster(&self) -> Result<Vec<Cluster>> {
        self.with(|c| clusters::all(c)).await
    }

    async fn update_cluster(&self, c: &Cluster, evs: &[Event]) -> Result<()> {
        let (c, evs) = (c.clone(), evs.to_vec());
        self.tx(move |tx| {
            clusters::update(tx, &c)?;
            events::append(tx, &evs)
        })
        .await
    }

    async fn delete_cluster(&self, c: &Cluster, evs: &[Event]) -> Result<()> {
        let (c, evs) = (c.clone(), evs.to_vec());
        self.tx(move |tx| if clusters::delete(tx, &c)? { events::append(tx, &evs) } else { Ok(()) }).await
    }

    async fn transition_cluster(&self, before: &Cluster, after: &Cluster, evs: &[Event]) -> Result<bool> {
        let (before, after, evs) = (before.clone(), after.clone(), evs.to_vec());
        self.tx(move |tx| {
            let moved = clusters::transition(tx, &before, &after)?;
            if moved {
                events::append(tx, &evs)?;
            }
            Ok(moved)
        })
        .await
    }

    async fn acquire_lease(&self, name: &str, holder: &str, url: &str, ttl: std::time::Duration) -> Result<bool> {
        let (name, holder, url) = (name.to_owned(), holder.to_owned(), url.to_owned());
        self.tx(move |tx| leases::acquire(tx, &name, &holder, &url, ttl)).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.tx(move |tx| leases::release(tx, &name, &holder)).await
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>> {
        let prefix = prefix.to_owned();
        self.with(move |c| leases::list(c, &prefix)).await
    }

    async fn append_events(&self, evs: &[Event]) -> Result<()> {
        let evs = evs.to_vec();
        self.tx(move |tx| events::append(tx, &evs)).await
    }

    async fn list_events(&self, group: &ObjectId, page: &Page) -> Result<(Vec<Event>, u64)> {
        let (group, page) = (group.to_string(), *page);
        self.with(move |c| events::list(c, &group, &page)).await
    }

    async fn insert_session(&self, session: &Session) -> Result<()> {
        let session = session.clone();
        self.tx(move |tx| sessions::insert(tx, &session)).await
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<Session>> {
        let token_hash = token_hash.to_owned();
        self.with(move |c| sessions::get(c, &token_hash)).await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<bool> {
        let token_hash = token_hash.to_owned();
        self.tx(move |tx| sessions::delete(tx, &token_hash)).await
    }

    async fn insert_service_account(&self, account: &ServiceAccount) -> Result<()> {
        let account = account.clone();
        self.tx(move |tx| sas::insert(tx, &account)).await
    }

    async fn get_service_account(&self, id: &ObjectId) -> Result<Option<ServiceAccount>> {
        let id = *id;
        self.with(move |c| sas::get(c, &id)).await
    }

    async fn list_service_accounts(&self, org: &ObjectId, page: &Page) -> Result<(Vec<ServiceAccount>, u64)> {
        let (org, page) = (*org, *page);
        self.with(move |c| sas::list(c, &org, &page)).await
    }

    async fn update_service_account(&self, account: &ServiceAccount) -> Result<()> {
        let account = account.clone();
        self.tx(move |tx| sas::update(tx, &account)).await
    }

    async fn delete_service_account(&self, id: &ObjectId) -> Result<bool> {
        let id = *id;
        self.tx(move |tx| sas::delete(tx, &id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atrest_core::projects::{self, NewProject};

    fn org() -> Org {
        Org { id: ObjectId::new(), name: "o".into(), created: time_fmt::now() }
    }

    fn key(org: &Org) -> ApiKey {
        ApiKey {
            id: ObjectId::new(),
            org_id: org.id,
            public_key: "abcdefgh".into(),
            description: "d".into(),
            grants: Grants { org_roles: vec![OrgRole::OrgOwner], ..Default::default() },
            created: time_fmt::now(),
        }
    }

    #[tokio::test]
    async fn projects_survive_reopen_and_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        let o = org();
        let k = key(&o);
        {
            let store = SqliteStore::open(&path).unwrap();
            store.bootstrap(&o, &k, b"sealed").await.unwrap();
            let p = projects::create(
                NewProject { name: "a".into(), org_id: o.id, tags: vec![], with_default_alerts_settings: true },
                time_fmt::now(),
            )
            .unwrap();
            store.insert_project(&p, Some(&k.id)).await.unwrap();
            let mut dup = p.clone();
            dup.id = ObjectId::new();
            assert_eq!(store.insert_project(&dup, None).await, Err(Error::GroupNameTaken { name: "a".into() }));
        }
        let store = SqliteStore::open(&path).unwrap();
        let (list, total) = store.list_projects(&ProjectScope::Org(o.id), &Page::default()).await.unwrap();
        assert_eq!((list.len(), total), (1, 1));
        let stored = store.find_api_key_by_public("abcdefgh").await.unwrap().unwrap();
        assert_eq!(stored.sealed_verifier, b"sealed");
        assert_eq!(stored.key.grants.project_roles[&list[0].id.to_string()], vec![ProjectRole::GroupOwner]);
        let only = ProjectScope::Only { org: o.id, ids: vec![] };
        assert_eq!(store.list_projects(&only, &Page::default()).await.unwrap().1, 0);
    }
}
