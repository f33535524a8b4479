//! The control plane: each operation loads what the rules need, asks `atrest-core` what to do,
//! performs the AWS calls it implies, and commits the result with its events. Reconcilers drive
//! long-running state from what is persisted.

pub mod cloud_provider_access;
pub mod clusters;
pub mod encryption_at_rest;
pub mod key_validity;
pub mod kms_wrapper;
pub mod ownership;
pub mod private_endpoints;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atrest_core::ObjectId;
use atrest_keys::aws::Aws;
use atrest_keys::ec2::Ec2;
use atrest_keys::Sealer;
use atrest_store::Store;
pub use ownership::{Owner, Replica};

#[derive(Clone, Debug)]
pub struct ControlSettings {
    /// How often each enabled project's key is re-checked.
    pub key_check_interval: Duration,
    /// How often the private-endpoint reconciler looks at AWS.
    pub reconcile_interval: Duration,
    /// Master keys rotate at least this often.
    pub master_key_rotation_period: Duration,
}

impl ControlSettings {
    /// How often the key validity reconciler looks for due checks.
    pub fn key_check_tick(&self) -> Duration {
        (self.key_check_interval / 20).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }

    /// When, after a check, the next one falls due. Two ticks early: one for the reconciler to
    /// notice it, one for the check's own AWS calls, so that a key revoked right after a check is
    /// refused within one interval, not one interval plus a tick.
    pub fn next_key_check_after(&self) -> Duration {
        let tick = self.key_check_tick();
        self.key_check_interval.saturating_sub(2 * tick).max(tick)
    }
}

pub struct Control {
    pub store: Arc<dyn Store>,
    pub sealer: Arc<Sealer>,
    pub aws: Arc<Aws>,
    pub ec2: Arc<Ec2>,
    /// atrest's AWS principal, shown to customers as `atlasAWSAccountArn`.
    pub atlas_aws_account_arn: String,
    pub settings: ControlSettings,
    /// Wakes the reconcilers when the API changed something they drive.
    pub nudge: tokio::sync::Notify,
    /// Every cluster's encrypted storage.
    pub data: Arc<atrest_dataplane::DataPlane>,
    /// Wraps master keys of clusters with provider NONE.
    pub service_key: Arc<atrest_dataplane::ServiceKeyWrapper>,
    /// Clusters a reconcile step is working on (so one cluster is never worked on twice at once).
    pub busy: Mutex<HashSet<ObjectId>>,
    /// Live progress of provider switches; the switch itself is resumable from the keyring.
    pub progress: Mutex<HashMap<ObjectId, atrest_dataplane::Progress>>,
    /// Why each project's key failed its last check (a cache of the last outcome, for messages).
    pub key_problems: Mutex<HashMap<ObjectId, atrest_core::encryption_at_rest::KeyProblem>>,
    /// This process among the replicas sharing the database.
    pub replica: Replica,
    /// Clusters whose lease this replica holds, with when it last took or renewed it.
    pub held: Mutex<HashMap<ObjectId, Instant>>,
}

impl Control {
    /// Why a customer-key cluster of `group` cannot serve data, in words for its users.
    pub fn inaccessible_reason(&self, group: &ObjectId) -> String {
        use atrest_core::encryption_at_rest::KeyProblem;
        match self.key_problems.lock().ok().and_then(|m| m.get(group).cloned()) {
            Some(KeyProblem::KeyNotFound { .. }) => {
                "the project's customer master key no longer exists in AWS KMS (deleted): the data encrypted under it can never be read again".into()
            }
            Some(KeyProblem::KeyDisabled) => "the project's customer master key is disabled in AWS KMS; enable it to serve the data again".into(),
            Some(KeyProblem::KeyPendingDeletion) => {
                "the project's customer master key is pending deletion in AWS KMS; cancel the deletion to serve the data again".into()
            }
            Some(p) => format!("atrest cannot use the project's customer master key ({p:?}); restore access to serve the data again"),
            None => "the project's AWS KMS key is not usable right now; the data is kept and is served again when the key is valid".into(),
        }
    }
}

/// What a control plane is made of.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub sealer: Arc<Sealer>,
    pub aws: Arc<Aws>,
    pub ec2: Arc<Ec2>,
    pub atlas_aws_account_arn: String,
    pub settings: ControlSettings,
    pub data: Arc<atrest_dataplane::DataPlane>,
    pub service_key: Arc<atrest_dataplane::ServiceKeyWrapper>,
    pub replica: Replica,
}

impl Control {
    pub fn new(p: Parts) -> Arc<Self> {
        Arc::new(Control {
            store: p.store,
            sealer: p.sealer,
            aws: p.aws,
            ec2: p.ec2,
            atlas_aws_account_arn: p.atlas_aws_account_arn,
            settings: p.settings,
            nudge: tokio::sync::Notify::new(),
            data: p.data,
            service_key: p.service_key,
            busy: Mutex::new(HashSet::new()),
            progress: Mutex::new(HashMap::new()),
            key_problems: Mutex::new(HashMap::new()),
            replica: p.replica,
            held: Mutex::new(HashMap::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(interval_ms: u64) -> ControlSettings {
        ControlSettings {
            key_check_interval: Duration::from_millis(interval_ms),
            reconcile_interval: Duration::from_secs(1),
            master_key_rotation_period: Duration::from_secs(3600),
        }
    }

    #[test]
    fn a_revoked_key_is_found_within_one_interval() {
        for interval_ms in [1_000, 2_000, 5_000, 60_000, 3_600_000] {
            let s = settings(interval_ms);
            let worst = s.next_key_check_after() + s.key_check_tick();
            assert!(worst < s.key_check_interval, "{interval_ms} ms: worst case {worst:?}");
            // ... without checking much more often than asked.
            assert!(s.next_key_check_after() * 10 >= s.key_check_interval * 8, "{interval_ms} ms");
        }
    }
}
