//! atrest's AWS access through the official SDK crates: its own identity (the operator), STS
//! AssumeRole into customers' roles, and KMS calls, each with a timeout and typed errors.

use std::collections::HashMap;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_kms::primitives::Blob;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_types::timeout::TimeoutConfig;
use zeroize::Zeroizing;

/// Where atrest's AWS calls go. `None` endpoints mean AWS's own.
#[derive(Clone, Debug)]
pub struct AwsSettings {
    pub sts_endpoint: Option<String>,
    pub kms_endpoint: Option<String>,
    pub operator: StaticKeys,
    pub call_timeout: Duration,
}

/// Access keys, with the secret zeroized on drop and never printed.
#[derive(Clone)]
pub struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKeys").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

impl StaticKeys {
    pub fn new(id: &str, secret: &str) -> Self {
        StaticKeys { access_key_id: id.into(), secret_access_key: Zeroizing::new(secret.into()), session_token: None }
    }

    fn sdk(&self) -> Credentials {
        Credentials::new(
            self.access_key_id.clone(),
            (*self.secret_access_key).clone(),
            self.session_token.as_ref().map(|t| (**t).clone()),
            None,
            "atrest",
        )
    }
}

/// An AWS failure, sorted by what it means for a key check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("key disabled: {0}")]
    Disabled(String),
    #[error("key in an invalid state: {0}")]
    InvalidState(String),
    #[error("invalid credentials: {0}")]
    InvalidCredentials(String),
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Other(String),
}

impl AwsError {
    /// Network-class failures: nothing is learnt about the key or the credentials.
    pub fn is_transient(&self) -> bool {
        matches!(self, AwsError::Throttled(_) | AwsError::Unavailable(_))
    }
}

fn classify<E, R>(err: aws_sdk_kms::error::SdkError<E, R>) -> AwsError
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_kms::error::SdkError;
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let code = e.code().unwrap_or("");
            let msg = format!("{code}: {}", e.message().unwrap_or(""));
            if clock_skew(code, &msg) {
                return AwsError::Unavailable(msg);
            }
            match code {
                "AccessDeniedException" | "AccessDenied" => AwsError::AccessDenied(msg),
                "NotFoundException" => AwsError::NotFound(msg),
                "DisabledException" => AwsError::Disabled(msg),
                "KMSInvalidStateException" => AwsError::InvalidState(msg),
                "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "InvalidSignatureException"
                | "SignatureDoesNotMatch"
                | "IncompleteSignature"
                | "ExpiredTokenException"
                | "ExpiredToken"
                | "AuthFailure" => AwsError::InvalidCredentials(msg),
                "ThrottlingException" | "Throttling" | "LimitExceededException" | "RequestLimitExceeded" => {
                    AwsError::Throttled(msg)
                }
                "KMSInternalException"
                | "InternalFailure"
                | "ServiceUnavailable"
                | "DependencyTimeoutException"
                | "InternalError" => AwsError::Unavailable(msg),
                _ => AwsError::Other(msg),
            }
        }
        SdkError::TimeoutError(_) => AwsError::Unavailable("timed out".into()),
        SdkError::DispatchFailure(d) => AwsError::Unavailable(format!("could not reach AWS: {d:?}")),
        SdkError::ResponseError(r) => AwsError::Unavailable(format!("unreadable response: {r:?}")),
        _ => AwsError::Unavailable(format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&err))),
    }
}

/// A signature refused because this machine's clock is off: a local condition that says nothing
/// about the key or the credentials (AWS answers `Signature expired` or `RequestTimeTooSkewed`).
pub(crate) fn clock_skew(code: &str, msg: &str) -> bool {
    code == "RequestTimeTooSkewed" || msg.contains("Signature expired")
}

/// What DescribeKey says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub arn: String,
    pub state: String,
    pub usage: String,
    pub spec: String,
    pub multi_region: bool,
}

pub struct Aws {
    settings: AwsSettings,
    http: SharedHttpClient,
}

impl Aws {
    pub fn new(settings: AwsSettings) -> Self {
        let http = aws_smithy_http_client::Builder::new().build_http();
        Aws { settings, http }
    }

    fn timeouts(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .operation_timeout(self.settings.call_timeout)
            .connect_timeout(Duration::from_secs(3).min(self.settings.call_timeout))
            .build()
    }

    fn sts(&self, region: &str, creds: &StaticKeys) -> aws_sdk_sts::Client {
        let mut b = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new(region.to_owned()))
            .credentials_provider(creds.sdk())
            .http_client(self.http.clone())
            .timeout_config(self.timeouts())
            .retry_config(aws_sdk_sts::config::retry::RetryConfig::standard().with_max_attempts(2));
        if let Some(e) = &self.settings.sts_endpoint {
            b = b.endpoint_url(e);
        }
        aws_sdk_sts::Client::from_conf(b.build())
    }

    /// A KMS client for `region`, sent to `endpoint` (a private endpoint) when given.
    pub fn kms(&self, region: &str, creds: &StaticKeys, endpoint: Option<&str>) -> Kms {
        let mut b = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(region.to_owned()))
            .credentials_provider(creds.sdk())
            .http_client(self.http.clone())
            .timeout_config(self.timeouts())
            .retry_config(aws_sdk_kms::config::retry::RetryConfig::standard().with_max_attempts(2));
        if let Some(e) = endpoint.map(str::to_owned).or_else(|| self.settings.kms_endpoint.clone()) {
            b = b.endpoint_url(e);
        }
        Kms { client: aws_sdk_kms::Client::from_conf(b.build()) }
    }

    /// The ARN atrest presents to customers: its account's root principal.
    pub async fn operator_arn(&self) -> Result<String, AwsError> {
        let out =
            self.sts("us-east-1", &self.settings.operator).get_caller_identity().send().await.map_err(classify)?;
        let account = out.account().unwrap_or_default();
        let partition = out.arn().and_then(|a| a.split(':').nth(1)).unwrap_or("aws");
        Ok(format!("arn:{partition}:iam::{account}:root"))
    }

    /// AssumeRole as the operator into a customer's role with the project's external id.
    pub async fn assume_role(&self, role_arn: &str, external_id: &str, session: &str) -> Result<StaticKeys, AwsError> {
        let out = self
            .sts("us-east-1", &self.settings.operator)
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session)
            .external_id(external_id)
            .duration_seconds(900)
            .send()
            .await
            .map_err(classify)?;
        let c = out.credentials().ok_or_else(|| AwsError::Other("AssumeRole returned no credentials".into()))?;
        Ok(StaticKeys {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: Zeroizing::new(c.secret_access_key().to_owned()),
            session_token: Some(Zeroizing::new(c.session_token().to_owned())),
        })
    }
}

pub struct Kms {
    client: aws_sdk_kms::Client,
}

impl Kms {
    pub async fn describe(&self, key_id: &str) -> Result<KeyInfo, AwsError> {
        let out = self.client.describe_key().key_id(key_id).send().await.map_err(classify)?;
        let m = out.key_metadata().ok_or_else(|| AwsError::Other("DescribeKey returned no metadata".into()))?;
        Ok(KeyInfo {
            arn: m.arn().unwrap_or_default().to_owned(),
            state: m.key_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            usage: m.key_usage().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            spec: m.key_spec().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            multi_region: m.multi_region().unwrap_or(false),
        })
    }

    pub async fn encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &HashMap<String, String>,
    ) -> Result<Vec<u8>, AwsError> {
        let out = self
            .client
            .encrypt()
            .key_id(key_id)
            .plaintext(Blob::new(plaintext.to_vec()))
            .set_encryption_context(Some(context.clone()))
            .send()
            .await
            .map_err(classify)?;
        Ok(out.ciphertext_blob().map(|b| b.as_ref().to_vec()).unwrap_or_default())
    }

    pub async fn decrypt(
        &self,
        key_id: &str,
        blob: &[u8],
        context: &HashMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>, AwsError> {
        let out = self
            .client
            .decrypt()
            .key_id(key_id)
            .ciphertext_blob(Blob::new(blob.to_vec()))
            .set_encryption_context(Some(context.clone()))
            .send()
            .await
            .map_err(classify)?;
        Ok(Zeroizing::new(out.plaintext().map(|b| b.as_ref().to_vec()).unwrap_or_default()))
    }
}
