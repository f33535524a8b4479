//! Persistence behind one trait. Every method commits before it returns, so a caller that has
//! its answer may acknowledge the change: nothing acknowledged is lost by a crash.

mod cloud_provider_access;
mod clusters;
mod codec;
mod encryption_at_rest;
mod events;
mod leases;
mod migrations;
mod pg;
mod private_endpoints;
mod service_accounts;
mod sessions;
mod sqlite;

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
use atrest_core::{ObjectId, Result};

pub use pg::{check_url as check_database_url, PgStore};
pub use sqlite::SqliteStore;

/// Which projects a lister may see: all of an organization's, or only the listed ones.
#[derive(Debug, Clone)]
pub enum ProjectScope {
    Org(ObjectId),
    Only { org: ObjectId, ids: Vec<String> },
}

/// A project's Encryption at Rest row: the configuration, its sealed legacy secret, and the
/// bookkeeping of the validity reconciler. `version` grows with every change of the row (a new
/// configuration, a claimed or recorded check) so a check that raced a change does not overwrite it.
#[derive(Debug, Clone)]
pub struct StoredEncryptionAtRest {
    pub group_id: ObjectId,
    pub aws_kms: AwsKms,
    pub sealed_secret: Option<Vec<u8>>,
    pub version: i64,
    pub next_check_at: time::OffsetDateTime,
    pub failures: u32,
}

/// An API key with its sealed Digest verifier.
#[derive(Debug, Clone)]
pub struct StoredApiKey {
    pub key: ApiKey,
    pub sealed_verifier: Vec<u8>,
}

/// A named lease: one holder at a time, until it expires. Replicas sharing one database use them
/// to decide who does a piece of work (such as serving a cluster's data plane).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    /// The holder's id (one per running replica).
    pub holder: String,
    /// Where the holder serves, for requests that must go to it.
    pub holder_url: String,
    /// False once it expired: anyone may take it.
    pub live: bool,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get_meta(&self, key: &str) -> Result<Option<String>>;
    async fn put_meta(&self, key: &str, value: &str) -> Result<()>;

    /// Creates the first organization and its owner key in one transaction, once.
    async fn bootstrap(&self, org: &Org, key: &ApiKey, sealed_verifier: &[u8]) -> Result<()>;
    async fn get_org(&self, id: &ObjectId) -> Result<Option<Org>>;
    async fn list_orgs(&self, only: &ObjectId) -> Result<Vec<Org>>;

    async fn insert_api_key(&self, key: &ApiKey, sealed_verifier: &[u8]) -> Result<()>;
    async fn get_api_key(&self, id: &ObjectId) -> Result<Option<ApiKey>>;
    async fn find_api_key_by_public(&self, public_key: &str) -> Result<Option<StoredApiKey>>;
    async fn list_api_keys(&self, org: &ObjectId, page: &Page) -> Result<(Vec<ApiKey>, u64)>;
    async fn delete_api_key(&self, id: &ObjectId) -> Result<bool>;
    async fn set_project_roles(&self, key: &ObjectId, group: &ObjectId, roles: &[ProjectRole]) -> Result<()>;

    /// Inserts a project and, when `owner` is given, makes that key its owner, atomically.
    async fn insert_project(&self, project: &Project, owner: Option<&ObjectId>) -> Result<()>;
    async fn get_project(&self, id: &ObjectId) -> Result<Option<Project>>;
    async fn get_project_by_name(&self, org: &ObjectId, name: &str) -> Result<Option<Project>>;
    async fn list_projects(&self, scope: &ProjectScope, page: &Page) -> Result<(Vec<Project>, u64)>;
    async fn delete_project(&self, id: &ObjectId) -> Result<bool>;
    /// Renames or re-tags a project; `GroupNameTaken` if the name is used in its organization.
    async fn update_project(&self, project: &Project) -> Result<()>;

    async fn insert_role(&self, role: &AwsIamRole, events: &[Event]) -> Result<()>;
    async fn get_role(&self, group: &ObjectId, role_id: &ObjectId) -> Result<Option<AwsIamRole>>;
    async fn list_roles(&self, group: &ObjectId) -> Result<Vec<AwsIamRole>>;
    async fn update_role(&self, role: &AwsIamRole, events: &[Event]) -> Result<()>;
    async fn delete_role(&self, role: &AwsIamRole, events: &[Event]) -> Result<()>;

    async fn get_encryption_at_rest(&self, group: &ObjectId) -> Result<Option<StoredEncryptionAtRest>>;
    /// Replaces the configuration (and the sealed secret when `secret` is `Some`), bumping its
    /// version, together with its events, in one transaction.
    async fn save_encryption_at_rest(
        &self,
        group: &ObjectId,
        aws_kms: &AwsKms,
        secret: Option<Option<Vec<u8>>>,
        next_check_at: time::OffsetDateTime,
        events: &[Event],
    ) -> Result<()>;
    /// Records a check's result with its events if the row is still at `version` (bumping it);
    /// false, nothing written, if the configuration changed or another check was recorded first.
    #[allow(clippy::too_many_arguments)]
    async fn record_check(
        &self,
        group: &ObjectId,
        version: i64,
        valid: bool,
        key_arn: Option<String>,
        next_check_at: time::OffsetDateTime,
        failures: u32,
        events: &[Event],
    ) -> Result<bool>;
    /// Enabled configurations whose next check is due at `now`.
    async fn due_checks(&self, now: time::OffsetDateTime) -> Result<Vec<StoredEncryptionAtRest>>;
    /// The due checks, claimed: each is pushed to `until` and its version bumped in the same
    /// transaction (rows another replica is claiming are skipped), so with several replicas on one
    /// database each check is made by one of them; the returned rows carry the claimed version.
    async fn claim_due_checks(
        &self,
        now: time::OffsetDateTime,
        until: time::OffsetDateTime,
    ) -> Result<Vec<StoredEncryptionAtRest>>;

    /// Inserts an endpoint unless its region is occupied (`PrivateEndpointExists`).
    async fn insert_private_endpoint(&self, e: &PrivateEndpoint, events: &[Event]) -> Result<()>;
    async fn get_private_endpoint(&self, group: &ObjectId, id: &ObjectId) -> Result<Option<PrivateEndpoint>>;
    async fn list_private_endpoints(&self, group: &ObjectId, page: &Page) -> Result<(Vec<PrivateEndpoint>, u64)>;
    async fn all_private_endpoints(&self, group: &ObjectId) -> Result<Vec<PrivateEndpoint>>;
    async fn update_private_endpoint(&self, e: &PrivateEndpoint, events: &[Event]) -> Result<()>;
    /// Marks `old` PENDING_RECREATION and inserts `new` for the same region, atomically.
    async fn recreate_private_endpoint(
        &self,
        old: &PrivateEndpoint,
        new: &PrivateEndpoint,
        events: &[Event],
    ) -> Result<()>;
    /// Removes the endpoint; the events are recorded only if it was still there.
    async fn delete_private_endpoint(&self, e: &PrivateEndpoint, events: &[Event]) -> Result<()>;
    /// A reconcile step: writes `after` with its events only if the stored endpoint still equals
    /// `before`; false (nothing written) when someone else changed it first.
    async fn transition_private_endpoint(
        &self,
        before: &PrivateEndpoint,
        after: &PrivateEndpoint,
        events: &[Event],
    ) -> Result<bool>;
    /// [`Store::recreate_private_endpoint`], only if the stored `old` still equals `before`.
    async fn recreate_private_endpoint_if(
        &self,
        before: &PrivateEndpoint,
        old: &PrivateEndpoint,
        new: &PrivateEndpoint,
        events: &[Event],
    ) -> Result<bool>;
    async fn unsettled_private_endpoints(&self) -> Result<Vec<PrivateEndpoint>>;

    /// Inserts a cluster unless its name is taken in the project (`ClusterNameTaken`).
    async fn insert_cluster(&self, c: &Cluster, events: &[Event]) -> Result<()>;
    async fn get_cluster(&self, group: &ObjectId, name: &str) -> Result<Option<Cluster>>;
    async fn list_clusters(&self, group: &ObjectId, page: &Page) -> Result<(Vec<Cluster>, u64)>;
    async fn all_clusters(&self, group: &ObjectId) -> Result<Vec<Cluster>>;
    /// Every cluster of every project (for the reconcilers).
    async fn every_cluster(&self) -> Result<Vec<Cluster>>;
    async fn update_cluster(&self, c: &Cluster, events: &[Event]) -> Result<()>;
    /// Removes the cluster; the events are recorded only if it was still there.
    async fn delete_cluster(&self, c: &Cluster, events: &[Event]) -> Result<()>;
    /// A reconcile step: writes `after` with its events only if the stored cluster still equals
    /// `before`; false (nothing written) when someone else changed it first.
    async fn transition_cluster(&self, before: &Cluster, after: &Cluster, events: &[Event]) -> Result<bool>;

    /// Takes the lease `name` for `holder` until `ttl` from now, or renews it if `holder` has it;
    /// false while someone else holds it unexpired.
    async fn acquire_lease(&self, name: &str, holder: &str, holder_url: &str, ttl: std::time::Duration)
        -> Result<bool>;
    /// Gives the lease up if `holder` has it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
    /// Every lease whose name starts with `prefix`.
    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>>;

    async fn append_events(&self, events: &[Event]) -> Result<()>;
    /// Newest first.
    async fn list_events(&self, group: &ObjectId, page: &Page) -> Result<(Vec<Event>, u64)>;

    /// Stores a new console session or access token (and forgets expired ones).
    async fn insert_session(&self, session: &Session) -> Result<()>;
    async fn get_session(&self, token_hash: &str) -> Result<Option<Session>>;
    /// Ends a session or revokes a token; false if there was none.
    async fn delete_session(&self, token_hash: &str) -> Result<bool>;

    async fn insert_service_account(&self, account: &ServiceAccount) -> Result<()>;
    async fn get_service_account(&self, id: &ObjectId) -> Result<Option<ServiceAccount>>;
    async fn list_service_accounts(&self, org: &ObjectId, page: &Page) -> Result<(Vec<ServiceAccount>, u64)>;
    /// Replaces the account's name, description, roles and secrets.
    async fn update_service_account(&self, account: &ServiceAccount) -> Result<()>;
    /// Deletes the account with its secrets and access tokens; false if there was none.
    async fn delete_service_account(&self, id: &ObjectId) -> Result<bool>;
}
