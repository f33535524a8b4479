//! KMS private endpoints: one per region, driven by a reconciler through this state machine.
//!
//! ```text
//! INITIATING ──available──▶ ACTIVE ──rejected/removed in AWS──▶ PENDING_RECREATION (+ a new INITIATING)
//!     │  └──pendingAcceptance──▶ PENDING_ACCEPTANCE ──accepted──▶ ACTIVE
//!     └──failed──▶ FAILED
//! any but INITIATING ──DELETE──▶ DELETING ──gone in AWS──▶ (removed)
//! ```

use serde::{Deserialize, Serialize};

use crate::{regions, Error, ObjectId, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Initiating,
    PendingAcceptance,
    Active,
    Failed,
    PendingRecreation,
    Deleting,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Initiating => "INITIATING",
            Status::PendingAcceptance => "PENDING_ACCEPTANCE",
            Status::Active => "ACTIVE",
            Status::Failed => "FAILED",
            Status::PendingRecreation => "PENDING_RECREATION",
            Status::Deleting => "DELETING",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        serde_json::from_value(serde_json::Value::String(s.into())).ok()
    }

    /// Whether this endpoint occupies its region (a second one there is refused).
    pub fn occupies_region(self) -> bool {
        !matches!(self, Status::PendingRecreation | Status::Deleting)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateEndpoint {
    pub id: ObjectId,
    pub group_id: ObjectId,
    /// Atlas region name, e.g. `US_EAST_1`.
    pub region: String,
    pub status: Status,
    pub error_message: Option<String>,
    /// The VPC endpoint in AWS (`vpce-...`), once created.
    pub aws_endpoint_id: Option<String>,
    /// Where KMS answers through this endpoint, once known.
    pub endpoint_url: Option<String>,
    pub created: time::OffsetDateTime,
}

impl PrivateEndpoint {
    /// The idempotency token for CreateVpcEndpoint: the same row always asks for the same endpoint.
    pub fn client_token(&self) -> String {
        format!("atrest-{}", self.id)
    }

    pub fn aws_region(&self) -> String {
        regions::to_aws(&self.region).unwrap_or_default()
    }
}

/// What AWS says about the VPC endpoint behind a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Pending,
    PendingAcceptance,
    Available {
        url: String,
    },
    Failed(String),
    /// Rejected by the customer, deleted, or missing.
    Gone,
}

/// One reconcile decision for an endpoint, given what AWS shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Stay,
    Become {
        status: Status,
        error_message: Option<String>,
        endpoint_url: Option<String>,
    },
    /// The endpoint went away while ACTIVE: mark it and start a new one in the region.
    Recreate,
    /// DELETING and gone in AWS: remove the record.
    Remove,
}

/// The state machine: every allowed transition is a line of this match.
pub fn next(status: Status, observed: &Observed) -> Step {
    use Observed as O;
    use Status as S;
    let become_ = |status, err: Option<String>, url: Option<String>| Step::Become {
        status,
        error_message: err,
        endpoint_url: url,
    };
    match (status, observed) {
        (S::Initiating, O::Pending) => Step::Stay,
        (S::Initiating | S::PendingAcceptance, O::Available { url }) => become_(S::Active, None, Some(url.clone())),
        (S::Initiating, O::PendingAcceptance) => become_(S::PendingAcceptance, None, None),
        (S::Initiating | S::PendingAcceptance, O::Failed(m)) => become_(S::Failed, Some(m.clone()), None),
        (S::Initiating, O::Gone) => {
            become_(S::Failed, Some("the VPC endpoint disappeared while it was being created".into()), None)
        }
        (S::PendingAcceptance, O::Pending | O::PendingAcceptance) => Step::Stay,
        (S::PendingAcceptance, O::Gone) => Step::Stay,
        (S::Active, O::Available { .. }) => Step::Stay,
        (S::Active, O::Gone | O::Failed(_)) => Step::Recreate,
        (S::Active, O::Pending | O::PendingAcceptance) => Step::Stay,
        (S::Deleting, O::Gone) => Step::Remove,
        (S::Deleting, _) => Step::Stay,
        (S::Failed | S::PendingRecreation, _) => Step::Stay,
    }
}

/// POST: one endpoint per region, only while private networking is required.
pub fn check_create(region: &str, require_private_networking: bool, existing: &[PrivateEndpoint]) -> Result<()> {
    if regions::to_aws(region).is_none() {
        return Err(Error::InvalidRegion { region: region.into(), provider: "AWS".into() });
    }
    if !require_private_networking {
        return Err(Error::PrivateNetworkingNotRequired);
    }
    if existing.iter().any(|e| e.region == region && e.status.occupies_region()) {
        return Err(Error::PrivateEndpointExists { region: region.into() });
    }
    Ok(())
}

pub fn new_endpoint(group_id: ObjectId, region: &str, now: time::OffsetDateTime) -> PrivateEndpoint {
    PrivateEndpoint {
        id: ObjectId::new(),
        group_id,
        region: region.into(),
        status: Status::Initiating,
        error_message: None,
        aws_endpoint_id: None,
        endpoint_url: None,
        created: now,
    }
}

/// DELETE: refused while provisioning; otherwise the endpoint goes to DELETING.
pub fn check_delete(e: &PrivateEndpoint) -> Result<Status> {
    match e.status {
        Status::Initiating => Err(Error::PrivateEndpointDeleteBlocked { id: e.id.to_string() }),
        _ => Ok(Status::Deleting),
    }
}

/// Only `AWS` has KMS private endpoints here.
pub fn check_cloud_provider(provider: &str) -> Result<()> {
    match provider {
        "AWS" => Ok(()),
        "AZURE" => Err(Error::ProviderUnsupported { provider: provider.into() }),
        other => Err(Error::InvalidPathParameter { name: "cloudProvider".into(), value: other.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        assert_eq!(next(Status::Initiating, &Observed::Pending), Step::Stay);
        assert!(matches!(
            next(Status::Initiating, &Observed::Available { url: "u".into() }),
            Step::Become { status: Status::Active, .. }
        ));
        assert!(matches!(
            next(Status::Initiating, &Observed::PendingAcceptance),
            Step::Become { status: Status::PendingAcceptance, .. }
        ));
        assert!(matches!(
            next(Status::Initiating, &Observed::Failed("x".into())),
            Step::Become { status: Status::Failed, .. }
        ));
        assert_eq!(next(Status::Active, &Observed::Gone), Step::Recreate);
        assert_eq!(next(Status::Deleting, &Observed::Gone), Step::Remove);
        assert_eq!(next(Status::Deleting, &Observed::Available { url: "u".into() }), Step::Stay);
    }

    #[test]
    fn one_per_region_and_no_delete_while_initiating() {
        let g = ObjectId::new();
        let e = new_endpoint(g, "US_EAST_1", crate::time_fmt::now());
        assert!(check_create("US_EAST_1", true, &[e.clone()]).is_err());
        assert!(check_create("US_WEST_2", true, &[e.clone()]).is_ok());
        assert!(check_create("US_WEST_2", false, &[]).is_err());
        assert!(check_create("MARS_1", true, &[]).is_err());
        assert!(check_delete(&e).is_err());
        let active = PrivateEndpoint { status: Status::Active, ..e.clone() };
        assert_eq!(check_delete(&active), Ok(Status::Deleting));
        let recreating = PrivateEndpoint { status: Status::PendingRecreation, ..e };
        assert!(check_create("US_EAST_1", true, &[recreating]).is_ok());
    }
}
