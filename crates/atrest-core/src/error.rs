//! Every refusal atrest can give, as a typed value. The API crate's `errors.rs` is the one table
//! that maps each to an HTTP status, an Atlas `errorCode`, a detail and parameters.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // Request shape.
    #[error("malformed JSON: {reason}")]
    MalformedJson { reason: String },
    #[error("invalid attribute {name}: {reason}")]
    InvalidAttribute { name: String, reason: String },
    #[error("missing attribute {name}")]
    MissingAttribute { name: String },
    #[error("invalid enum value {value} for {field}")]
    InvalidEnumValue { field: String, value: String },
    #[error("invalid query parameter {name}={value}")]
    InvalidQueryParameter { name: String, value: String },
    #[error("invalid path parameter {name}={value}")]
    InvalidPathParameter { name: String, value: String },
    #[error("unsupported content type {content_type}")]
    UnsupportedMediaType { content_type: String },
    #[error("request body too large")]
    PayloadTooLarge,

    // Versioning.
    #[error("invalid accept header or version date")]
    InvalidVersionDate { requested: String },
    #[error("version {version} is past its sunset")]
    VersionGone { version: String },

    // Authentication and authorization.
    #[error("not authenticated")]
    Unauthenticated { stale: bool },
    #[error("access forbidden")]
    AccessForbidden,
    #[error("wrong credentials")]
    WrongCredentials,
    #[error("rate limit of {limit} requests per minute exceeded")]
    RateLimited { limit: u32, retry_after_secs: u64 },
    #[error("cross-site request refused: {reason}")]
    CsrfRejected { reason: String },

    // Missing things.
    #[error("no group with id {id}")]
    GroupNotFound { id: String },
    #[error("no group named {name}")]
    GroupNameNotFound { name: String },
    #[error("no organization with id {id}")]
    OrgNotFound { id: String },
    #[error("no API key with id {id}")]
    ApiKeyNotFound { id: String },
    #[error("cannot find resource {path}")]
    ResourceNotFound { path: String },
    #[error("method {method} not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },

    // Projects.
    #[error("project name {name} already taken")]
    GroupNameTaken { name: String },
    #[error("invalid project name {name}")]
    InvalidGroupName { name: String },

    // API keys.
    #[error("invalid role {role}")]
    InvalidRole { role: String },
    #[error("an API key cannot remove its own last owner role")]
    CannotRemoveOwnRoles,

    // Service accounts.
    #[error("no service account {client_id}")]
    ServiceAccountNotFound { client_id: String },
    #[error("no secret {id}")]
    ServiceAccountSecretNotFound { id: String },
    #[error("at most {max} secrets per service account")]
    ServiceAccountSecretLimit { max: usize },

    // Cloud provider access.
    #[error("provider {provider} is not supported")]
    ProviderUnsupported { provider: String },
    #[error("role {role_id} is used by encryption at rest")]
    RoleInUse { role_id: String },
    #[error("no cloud provider access role {role_id}")]
    RoleNotFound { role_id: String },
    #[error("role {role_id} is not authorized")]
    RoleNotAuthorized { role_id: String },
    #[error("cannot assume role: {detail}")]
    CannotAssumeRole { detail: String },

    // Encryption at rest.
    #[error("a project that used a role cannot go back to access keys")]
    RoleBasedAccessIrreversible,
    #[error("the current key is invalid")]
    SettingsInvalid,
    #[error("the project is not active")]
    ProjectNotActive,
    #[error("{count} private endpoints exist")]
    PrivateEndpointsExist { count: u64 },
    #[error("{count} clusters use customer keys")]
    ClustersUseCustomerKeys { count: u64 },
    #[error("region {region} is not supported")]
    KmsRegionNotSupported { region: String },
    #[error("invalid AWS credentials: {detail}")]
    InvalidAwsCredentials { detail: String },
    #[error("key {key_id} not found: {detail}")]
    KmsKeyNotFound { key_id: String, detail: String },
    #[error("key {key_id} is not enabled")]
    KmsKeyNotEnabled { key_id: String },
    #[error("key {key_id} is pending deletion")]
    KmsKeyPendingDeletion { key_id: String },
    #[error("no permission to encrypt and decrypt: {detail}")]
    NoPermissionToEncryptDecrypt { detail: String },
    #[error("no active private endpoint in {region}")]
    PrivateEndpointUnavailable { region: String },
    #[error("cluster {cluster} spans regions but the key is single-region")]
    MultiRegionClusterNeedsMultiRegionKey { cluster: String },
    #[error("KMS unreachable: {detail}")]
    KmsUnreachable { detail: String },

    // Private endpoints.
    #[error("no region {region} for provider {provider}")]
    InvalidRegion { region: String, provider: String },
    #[error("private networking is not required")]
    PrivateNetworkingNotRequired,
    #[error("a private endpoint exists in {region}")]
    PrivateEndpointExists { region: String },
    #[error("private endpoint {id} is still being provisioned")]
    PrivateEndpointDeleteBlocked { id: String },
    #[error("no private endpoint {id}")]
    PrivateEndpointNotFound { id: String },

    // Clusters.
    #[error("customer key management needs M10 or larger, not {instance_size}")]
    TenantEncryptionAtRest { instance_size: String },
    #[error("the project's AWS KMS configuration is not enabled and valid")]
    EncryptionAtRestNotEnabled,
    #[error("no cluster named {name}")]
    ClusterNotFound { name: String, group: String },
    #[error("a cluster named {name} exists")]
    ClusterNameTaken { name: String },
    #[error("cluster {name} is {state}")]
    ClusterBusy { name: String, state: String },
    #[error("cluster {name} is paused")]
    ClusterPaused { name: String },
    #[error("at most {max} clusters per project")]
    TooManyClusters { max: usize },
    #[error("the project still has clusters")]
    ProjectHasClusters { count: u64 },
    #[error("the cluster's data is inaccessible: {detail}")]
    KeyInaccessible { detail: String },
    /// The cluster's data plane is moving between replicas (or re-opening its keys): retry.
    #[error("cluster {name} is moving between replicas: {detail}")]
    ClusterMoving { name: String, detail: String },
    #[error("{0}")]
    DataRequest(String),

    // Anything else is our fault, never the client's.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}
