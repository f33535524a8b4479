//! The one table from refusal to Atlas error: HTTP status, `errorCode`, `detail`, `parameters`.
//! Handlers never build error bodies themselves.

use atrest_core::Error;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub struct Described {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub parameters: Vec<String>,
}

pub fn describe(e: &Error) -> Described {
    use Error::*;
    let d = |status: StatusCode, code: &'static str, detail: String, parameters: Vec<String>| Described {
        status,
        code,
        detail,
        parameters,
    };
    match e {
        MalformedJson { reason } => d(
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
            format!("Received JSON is malformed: {reason}"),
            vec![],
        ),
        InvalidAttribute { name, reason } => d(
            StatusCode::BAD_REQUEST,
            "INVALID_ATTRIBUTE",
            format!("Invalid attribute {name} specified: {reason}"),
            vec![name.clone()],
        ),
        MissingAttribute { name } => d(
            StatusCode::BAD_REQUEST,
            "MISSING_ATTRIBUTE",
            format!("The required attribute {name} was not specified."),
            vec![name.clone()],
        ),
        InvalidEnumValue { field, value } => d(
            StatusCode::BAD_REQUEST,
            "INVALID_ENUM_VALUE",
            format!("An invalid enumeration value {value} was specified for {field}."),
            vec![value.clone(), field.clone()],
        ),
        InvalidQueryParameter { name, value } => d(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_PARAMETER",
            format!("Invalid query parameter {name} specified: {value}"),
            vec![name.clone(), value.clone()],
        ),
        InvalidPathParameter { name, value } => d(
            StatusCode::BAD_REQUEST,
            "INVALID_PATH_PARAMETER",
            format!("Invalid path parameter {name} specified: {value}. Ids are 24 lowercase hexadecimal characters."),
            vec![name.clone(), value.clone()],
        ),
        UnsupportedMediaType { content_type } => d(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!("Content type {content_type} is not supported; send application/json."),
            vec![content_type.clone()],
        ),
        PayloadTooLarge => d(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "The request body is larger than this server accepts.".into(),
            vec![],
        ),
        InvalidVersionDate { requested } => d(
            StatusCode::NOT_ACCEPTABLE,
            "INVALID_VERSION_DATE",
            format!(
                "Invalid accept header or version date: {requested:?}. Send Accept: application/vnd.atlas.YYYY-MM-DD+json with a supported version date, for example application/vnd.atlas.2023-01-01+json."
            ),
            vec![requested.clone()],
        ),
        VersionGone { version } => d(
            StatusCode::GONE,
            "VERSION_GONE",
            format!("Version {version} of this resource is past its sunset date."),
            vec![version.clone()],
        ),
        Unauthenticated { .. } => d(
            StatusCode::UNAUTHORIZED,
            "USER_UNAUTHORIZED",
            "You are not authorized for this resource: send HTTP Digest credentials (public key as username, private key as password) or a bearer token.".into(),
            vec![],
        ),
        WrongCredentials => d(
            StatusCode::UNAUTHORIZED,
            "USER_UNAUTHORIZED",
            "The public key, private key, client id or client secret is wrong, or the key was deleted.".into(),
            vec![],
        ),
        RateLimited { limit, retry_after_secs } => d(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED_TOKEN_BUCKET",
            format!("You have exceeded the rate limit of {limit} requests per minute. Retry in {retry_after_secs} second(s)."),
            vec![limit.to_string()],
        ),
        CsrfRejected { reason } => d(
            StatusCode::FORBIDDEN,
            "CSRF_TOKEN_INVALID",
            format!("The console request was refused as possibly cross-site: {reason}. Reload the page and try again."),
            vec![],
        ),
        AccessForbidden => d(
            StatusCode::FORBIDDEN,
            "ACCESS_FORBIDDEN",
            "The API key does not have the role this operation requires.".into(),
            vec![],
        ),
        GroupNotFound { id } => d(
            StatusCode::NOT_FOUND,
            "GROUP_NOT_FOUND",
            format!("No group with ID {id} exists."),
            vec![id.clone()],
        ),
        GroupNameNotFound { name } => d(
            StatusCode::NOT_FOUND,
            "GROUP_NAME_NOT_FOUND",
            format!("No group with name {name} exists."),
            vec![name.clone()],
        ),
        OrgNotFound { id } => d(
            StatusCode::NOT_FOUND,
            "ORG_NOT_FOUND",
            format!("No organization with ID {id} exists."),
            vec![id.clone()],
        ),
        ApiKeyNotFound { id } => d(
            StatusCode::NOT_FOUND,
            "API_KEY_NOT_FOUND",
            format!("No API key with ID {id} exists."),
            vec![id.clone()],
        ),
        ServiceAccountNotFound { client_id } => d(
            StatusCode::NOT_FOUND,
            "SERVICE_ACCOUNT_NOT_FOUND",
            format!("No service account with client ID {client_id} exists in this organization."),
            vec![client_id.clone()],
        ),
        ServiceAccountSecretNotFound { id } => d(
            StatusCode::NOT_FOUND,
            "SERVICE_ACCOUNT_SECRET_NOT_FOUND",
            format!("No secret with ID {id} exists for this service account."),
            vec![id.clone()],
        ),
        ServiceAccountSecretLimit { max } => d(
            StatusCode::BAD_REQUEST,
            "SERVICE_ACCOUNT_SECRET_LIMIT_REACHED",
            format!("A service account has at most {max} secrets; delete one before creating another."),
            vec![max.to_string()],
        ),
        ResourceNotFound { path } => d(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            format!("Cannot find resource {path}."),
            vec![path.clone()],
        ),
        MethodNotAllowed { method, path } => d(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("Method {method} is not allowed on {path}."),
            vec![method.clone(), path.clone()],
        ),
        GroupNameTaken { name } => d(
            StatusCode::CONFLICT,
            "GROUP_ALREADY_EXISTS",
            format!("A group with name \"{name}\" already exists."),
            vec![name.clone()],
        ),
        InvalidGroupName { name } => d(
            StatusCode::BAD_REQUEST,
            "INVALID_GROUP_NAME",
            format!("Project name \"{name}\" is invalid: use 1 to 64 letters, digits and - _ . ( ) , : & @ + '."),
            vec![name.clone()],
        ),
        InvalidRole { role } => d(
            StatusCode::BAD_REQUEST,
            "INVALID_ROLE",
            format!("Role {role} is not valid here."),
            vec![role.clone()],
        ),
        CannotRemoveOwnRoles => d(
            StatusCode::CONFLICT,
            "CANNOT_REMOVE_OWN_ROLES",
            "An API key cannot remove its own owner role.".into(),
            vec![],
        ),
        ProviderUnsupported { provider } => d(
            StatusCode::BAD_REQUEST,
            "PROVIDER_UNSUPPORTED",
            format!("Provider {provider} is not supported yet; atrest supports AWS."),
            vec![provider.clone()],
        ),
        RoleInUse { role_id } => d(
            StatusCode::CONFLICT,
            "CLOUD_PROVIDER_ACCESS_ROLE_IN_USE",
            format!("Role {role_id} is used by Encryption at Rest; disable customer key management or switch roles first."),
            vec![role_id.clone()],
        ),
        RoleNotFound { role_id } => d(
            StatusCode::NOT_FOUND,
            "CLOUD_PROVIDER_ACCESS_ROLE_NOT_FOUND",
            format!("No cloud provider access role with ID {role_id} exists in this project."),
            vec![role_id.clone()],
        ),
        RoleNotAuthorized { role_id } => d(
            StatusCode::BAD_REQUEST,
            "CLOUD_PROVIDER_ACCESS_ROLE_NOT_AUTHORIZED",
            format!("Cloud provider access role {role_id} is not authorized; authorize it with its IAM role ARN first."),
            vec![role_id.clone()],
        ),
        CannotAssumeRole { detail } => d(
            StatusCode::BAD_REQUEST,
            "CANNOT_ASSUME_ROLE",
            format!("Cannot assume the IAM role: {detail}. Check that its trust policy names the Atlas AWS account ARN and external ID; IAM changes can take a few minutes to propagate."),
            vec![],
        ),
        RoleBasedAccessIrreversible => d(
            StatusCode::BAD_REQUEST,
            "AWS_KMS_ROLE_BASED_ACCESS_IRREVERSIBLE",
            "This project uses role-based access to its AWS KMS key; it cannot go back to access keys.".into(),
            vec![],
        ),
        SettingsInvalid => d(
            StatusCode::BAD_REQUEST,
            "ENCRYPTION_AT_REST_SETTINGS_INVALID",
            "The current AWS KMS key is not valid: restore access to it before changing the key or turning customer key management off.".into(),
            vec![],
        ),
        ProjectNotActive => d(
            StatusCode::BAD_REQUEST,
            "GROUP_NOT_ACTIVE",
            "Require Private Networking is only available for projects in the ACTIVE state.".into(),
            vec![],
        ),
        PrivateEndpointsExist { count } => d(
            StatusCode::CONFLICT,
            "CANNOT_DISABLE_ENCRYPTION_AT_REST_REQUIRE_PRIVATE_NETWORKING_WHILE_PRIVATE_ENDPOINTS_EXIST",
            format!("{count} private endpoint(s) for AWS KMS exist in this project; delete them first."),
            vec![count.to_string()],
        ),
        ClustersUseCustomerKeys { count } => d(
            StatusCode::CONFLICT,
            "CANNOT_DISABLE_ENCRYPTION_AT_REST",
            format!("{count} cluster(s) in this project use customer key management; set their encryptionAtRestProvider to NONE first."),
            vec![count.to_string()],
        ),
        KmsRegionNotSupported { region } => d(
            StatusCode::BAD_REQUEST,
            "AWS_KMS_REGION_NOT_SUPPORTED",
            format!("Region {region} is not supported for AWS KMS."),
            vec![region.clone()],
        ),
        InvalidAwsCredentials { detail } => d(
            StatusCode::BAD_REQUEST,
            "INVALID_AWS_CREDENTIALS",
            format!("The AWS credentials are invalid: {detail}"),
            vec![],
        ),
        KmsKeyNotFound { key_id, detail } => d(
            StatusCode::BAD_REQUEST,
            "AWS_KMS_CUSTOMER_MASTER_KEY_NOT_FOUND",
            format!("AWS KMS key {key_id} was not found: {detail}"),
            vec![key_id.clone()],
        ),
        KmsKeyNotEnabled { key_id } => d(
            StatusCode::BAD_REQUEST,
            "AWS_KMS_CUSTOMER_MASTER_KEY_NOT_ENABLED",
            format!("AWS KMS key {key_id} is not enabled."),
            vec![key_id.clone()],
        ),
        KmsKeyPendingDeletion { key_id } => d(
            StatusCode::BAD_REQUEST,
            "AWS_KMS_CUSTOMER_MASTER_KEY_PENDING_DELETION",
            format!("AWS KMS key {key_id} is pending deletion."),
            vec![key_id.clone()],
        ),
        NoPermissionToEncryptDecrypt { detail } => d(
            StatusCode::BAD_REQUEST,
            "NO_PERMISSION_TO_ENCRYPT_DECRYPT",
            format!("The role or credentials cannot use the key for kms:DescribeKey, kms:Encrypt and kms:Decrypt: {detail}"),
            vec![],
        ),
        PrivateEndpointUnavailable { region } => d(
            StatusCode::BAD_REQUEST,
            "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_REGION_NOT_AVAILABLE",
            format!("Private networking is required and region {region} has no ACTIVE private endpoint for AWS KMS."),
            vec![region.clone()],
        ),
        MultiRegionClusterNeedsMultiRegionKey { cluster } => d(
            StatusCode::BAD_REQUEST,
            "ENCRYPTION_AT_REST_PRIVATE_NETWORKING_REQUIRES_MULTI_REGION_KEY",
            format!("Cluster {cluster} spans several regions and the key is single-region: use a multi-region key (mrk-) replicated into each region before requiring private networking."),
            vec![cluster.clone()],
        ),
        KmsUnreachable { detail } => d(
            StatusCode::SERVICE_UNAVAILABLE,
            "AWS_KMS_UNREACHABLE",
            format!("AWS KMS could not be reached, nothing was changed; retry later: {detail}"),
            vec![],
        ),
        InvalidRegion { region, provider } => d(
            StatusCode::BAD_REQUEST,
            "INVALID_REGION",
            format!("No region {region} exists for provider {provider}."),
            vec![region.clone(), provider.clone()],
        ),
        PrivateNetworkingNotRequired => d(
            StatusCode::BAD_REQUEST,
            "ENCRYPTION_AT_REST_PRIVATE_NETWORKING_NOT_REQUIRED",
            "Private endpoints for AWS KMS need Encryption at Rest with AWS KMS enabled and requirePrivateNetworking set to true first.".into(),
            vec![],
        ),
        PrivateEndpointExists { region } => d(
            StatusCode::CONFLICT,
            "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_ALREADY_EXISTS",
            format!("A private endpoint for AWS KMS already exists in region {region}."),
            vec![region.clone()],
        ),
        PrivateEndpointDeleteBlocked { id } => d(
            StatusCode::CONFLICT,
            "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_DELETE_BLOCKED_DURING_PROVISIONING",
            format!("Private endpoint {id} is still being provisioned (INITIATING); delete it once it has settled."),
            vec![id.clone()],
        ),
        PrivateEndpointNotFound { id } => d(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            format!("Cannot find private endpoint {id}."),
            vec![id.clone()],
        ),
        TenantEncryptionAtRest { instance_size } => d(
            StatusCode::BAD_REQUEST,
            "CANNOT_USE_ENCRYPTION_AT_REST_TENANT",
            format!("Encryption at rest with customer key management is only available for M10 and larger clusters, not {instance_size}."),
            vec![instance_size.clone()],
        ),
        EncryptionAtRestNotEnabled => d(
            StatusCode::BAD_REQUEST,
            "ENCRYPTION_AT_REST_NOT_ENABLED",
            "Encryption at rest with AWS KMS must be enabled and valid for the project before a cluster can use customer keys.".into(),
            vec![],
        ),
        ClusterNotFound { name, group } => d(
            StatusCode::NOT_FOUND,
            "CLUSTER_NOT_FOUND",
            format!("No cluster named {name} exists in group {group}."),
            vec![name.clone(), group.clone()],
        ),
        ClusterNameTaken { name } => d(
            StatusCode::CONFLICT,
            "DUPLICATE_CLUSTER_NAME",
            format!("A cluster named {name} already exists in this project."),
            vec![name.clone()],
        ),
        ClusterBusy { name, state } => d(
            StatusCode::CONFLICT,
            "CLUSTER_NOT_IDLE",
            format!("Cluster {name} is {state}; wait until it is IDLE."),
            vec![name.clone(), state.clone()],
        ),
        ClusterPaused { name } => d(
            StatusCode::CONFLICT,
            "CANNOT_UPDATE_PAUSED_CLUSTER",
            format!("Cluster {name} is paused; resume it first."),
            vec![name.clone()],
        ),
        TooManyClusters { max } => d(
            StatusCode::CONFLICT,
            "TOO_MANY_CLUSTERS",
            format!("A project can hold at most {max} clusters."),
            vec![max.to_string()],
        ),
        ProjectHasClusters { count } => d(
            StatusCode::CONFLICT,
            "CANNOT_CLOSE_GROUP_ACTIVE_ATLAS_CLUSTERS",
            format!("The project still has {count} cluster(s); delete them first."),
            vec![count.to_string()],
        ),
        KeyInaccessible { detail } => d(
            StatusCode::SERVICE_UNAVAILABLE,
            "ENCRYPTION_AT_REST_KEY_INACCESSIBLE",
            format!("The cluster's data is encrypted under a customer key atrest cannot use right now: {detail}"),
            vec![],
        ),
        ClusterMoving { name, detail } => d(
            StatusCode::SERVICE_UNAVAILABLE,
            "CLUSTER_DATA_PLANE_MOVING",
            format!("Cluster {name} cannot serve data for a moment ({detail}); retry in a few seconds."),
            vec![name.clone()],
        ),
        DataRequest(detail) => d(StatusCode::BAD_REQUEST, "INVALID_DATA_REQUEST", detail.clone(), vec![]),
        Internal(_) => d(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNEXPECTED_ERROR",
            "An unexpected error occurred; it has been logged.".into(),
            vec![],
        ),
    }
}

/// The Atlas error body for `e`, with `application/json` as Atlas sends on errors.
pub fn error_response(e: &Error) -> Response {
    let d = describe(e);
    if let Error::Internal(msg) = e {
        tracing::error!(error = %msg, "request failed");
    }
    let body = json!({
        "detail": d.detail,
        "error": d.status.as_u16(),
        "errorCode": d.code,
        "parameters": d.parameters,
        "reason": d.status.canonical_reason().unwrap_or(""),
    });
    let mut resp = (d.status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}
