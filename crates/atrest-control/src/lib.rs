//! The control plane: each operation loads what the rules need, asks `atrest-core` what to do,
//! performs the AWS calls it implies, and commits the result with its events. Reconcilers drive
//! long-running state from what is persisted.

pub mod cloud_provider_access;
pub mod encryption_at_rest;
pub mod key_validity;
pub mod private_endpoints;

use std::sync::Arc;
use std::time::Duration;

use atrest_keys::aws::Aws;
use atrest_keys::ec2::Ec2;
use atrest_keys::Sealer;
use atrest_store::Store;

#[derive(Clone, Debug)]
pub struct ControlSettings {
    /// How often each enabled project's key is re-checked.
    pub key_check_interval: Duration,
    /// How often the private-endpoint reconciler looks at AWS.
    pub reconcile_interval: Duration,
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
}

impl Control {
    pub fn new(
        store: Arc<dyn Store>,
        sealer: Arc<Sealer>,
        aws: Arc<Aws>,
        ec2: Arc<Ec2>,
        atlas_aws_account_arn: String,
        settings: ControlSettings,
    ) -> Arc<Self> {
        Arc::new(Control {
            store,
            sealer,
            aws,
            ec2,
            atlas_aws_account_arn,
            settings,
            nudge: tokio::sync::Notify::new(),
        })
    }
}
