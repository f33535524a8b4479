//! Embedded, wire-compatible AWS emulator: KMS (awsJson1.1), STS and IAM (awsQuery), the EC2
//! VPC-endpoint subset (ec2Query), SigV4 on every request, AWS policy evaluation, durable state in
//! SQLite, fault injection and an admin API. See README.md.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let emu = aws_emulator::Emulator::start(aws_emulator::EmulatorConfig::default()).await?;
//! println!("{} operator={}", emu.url(), emu.operator().account_id);
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod ciphertext;
pub mod cli;
pub mod client;
pub mod crypto;
pub mod ec2;
pub mod faults;
pub mod iam;
pub mod ids;
pub mod kms;
pub mod policy;
pub mod server;
pub mod sigv4;
pub mod state;
pub mod store;
pub mod sts;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use cli::{run, AwsCommand, ServeArgs};
pub use client::{Ec2Client, Ec2Endpoint};
pub use server::Emulator;

/// How the emulator runs. `Default` listens on 127.0.0.1:4566 with data in `./aws-data`.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Holds `aws-emulator.sqlite3`, `aws-root-key` and `aws-credentials`.
    pub data_dir: PathBuf,
    /// Public (and admin) listener; port 0 picks a free port.
    pub listen: SocketAddr,
    /// A new or changed role trust policy takes this long before STS sees it.
    pub iam_propagation_delay: Duration,
    /// A new VPC endpoint leaves `pending` after this long.
    pub endpoint_ready_delay: Duration,
    /// How long one "day" of a key's pending-deletion window lasts (24 h by default).
    pub key_deletion_day: Duration,
    /// New endpoints wait in `pendingAcceptance` until a customer accepts them.
    pub endpoint_acceptance_required: bool,
    /// Allowed clock skew of signed requests (AWS: 5 minutes).
    pub max_clock_skew: Duration,
    /// How often timers (endpoint readiness, key deletion) are checked.
    pub tick_interval: Duration,
    /// Operator account id to use on first start (random 12 digits otherwise).
    pub operator_account_id: Option<String>,
    /// Customer account id to use on first start (random 12 digits otherwise).
    pub customer_account_id: Option<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            data_dir: PathBuf::from("aws-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 4566)),
            iam_propagation_delay: Duration::ZERO,
            endpoint_ready_delay: Duration::from_secs(2),
            key_deletion_day: Duration::from_secs(24 * 3600),
            endpoint_acceptance_required: false,
            max_clock_skew: Duration::from_secs(300),
            tick_interval: Duration::from_millis(100),
            operator_account_id: None,
            customer_account_id: None,
        }
    }
}

/// An account's root credentials.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountCredentials {
    pub name: String,
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `arn:aws:iam::ID:root`
    pub arn: String,
}

impl std::fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("name", &self.name)
            .field("account_id", &self.account_id)
            .field("access_key_id", &self.access_key_id)
            .field("arn", &self.arn)
            .finish_non_exhaustive()
    }
}
