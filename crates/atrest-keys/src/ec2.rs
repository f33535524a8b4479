//! atrest's VPC endpoints for KMS, through the EC2 query API (SigV4-signed with `aws-sigv4`; the
//! full aws-sdk-ec2 is too heavy to build for four operations).

use std::collections::HashMap;

use atrest_core::private_endpoints::Observed;
use aws_emulator::client::{Ec2Client, Ec2Endpoint, Ec2Error, StaticCredentials};

use crate::aws::{AwsError, StaticKeys};

#[derive(Clone, Debug)]
pub struct Ec2Settings {
    /// EC2 endpoint; `None` means `https://ec2.<region>.amazonaws.com`.
    pub endpoint: Option<String>,
    /// The operator's VPC per AWS region, with a default for every other region.
    pub vpc_ids: HashMap<String, String>,
    pub default_vpc_id: String,
}

pub struct Ec2 {
    settings: Ec2Settings,
    creds: StaticCredentials,
}

fn classify(e: Ec2Error) -> AwsError {
    match e {
        Ec2Error::Transport(m) => AwsError::Unavailable(m),
        Ec2Error::Api { status, code, message } => {
            let msg = format!("{code}: {message}");
            match code.as_str() {
                "RequestLimitExceeded" | "Throttling" => AwsError::Throttled(msg),
                c if crate::aws::clock_skew(c, &msg) => AwsError::Unavailable(msg),
                _ if status >= 500 => AwsError::Unavailable(msg),
                "UnauthorizedOperation" | "AccessDenied" => AwsError::AccessDenied(msg),
                c if c.starts_with("InvalidVpcEndpointId") => AwsError::NotFound(msg),
                "AuthFailure" | "InvalidClientTokenId" | "SignatureDoesNotMatch" => AwsError::InvalidCredentials(msg),
                _ => AwsError::Other(msg),
            }
        }
    }
}

impl Ec2 {
    pub fn new(settings: Ec2Settings, operator: &StaticKeys) -> Ec2 {
        let mut creds = StaticCredentials::new(&operator.access_key_id, &operator.secret_access_key);
        creds.session_token = operator.session_token.as_ref().map(|t| (**t).clone());
        Ec2 { settings, creds }
    }

    fn client(&self, region: &str) -> Ec2Client {
        let endpoint = self.settings.endpoint.clone().unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com"));
        Ec2Client::new(&endpoint, region, self.creds.clone())
    }

    fn vpc(&self, region: &str) -> &str {
        self.settings.vpc_ids.get(region).unwrap_or(&self.settings.default_vpc_id)
    }

    /// Idempotent by `client_token`: asking again returns the endpoint made the first time.
    pub async fn create_endpoint(&self, region: &str, client_token: &str) -> Result<String, AwsError> {
        let e =
            self.client(region).create_vpc_endpoint(self.vpc(region), Some(client_token)).await.map_err(classify)?;
        Ok(e.vpc_endpoint_id)
    }

    pub async fn observe(&self, region: &str, id: &str) -> Result<Observed, AwsError> {
        match self.client(region).describe_vpc_endpoints(&[id.to_owned()]).await.map_err(classify) {
            Ok(list) => Ok(list.iter().find(|e| e.vpc_endpoint_id == id).map(observed).unwrap_or(Observed::Gone)),
            Err(AwsError::NotFound(_)) => Ok(Observed::Gone),
            Err(e) => Err(e),
        }
    }

    pub async fn delete_endpoint(&self, region: &str, id: &str) -> Result<(), AwsError> {
        match self.client(region).delete_vpc_endpoints(&[id.to_owned()]).await.map_err(classify) {
            Ok(_) | Err(AwsError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn observed(e: &Ec2Endpoint) -> Observed {
    match e.state.as_str() {
        "pending" => Observed::Pending,
        "pendingAcceptance" => Observed::PendingAcceptance,
        "available" => {
            let url = e.url.clone().or_else(|| e.dns_names.first().map(|d| format!("https://{d}"))).unwrap_or_default();
            Observed::Available { url }
        }
        "failed" => Observed::Failed(format!(
            "AWS could not create VPC endpoint {} for {} (state failed): the region's KMS endpoint service is not available",
            e.vpc_endpoint_id, e.service_name
        )),
        _ => Observed::Gone,
    }
}
