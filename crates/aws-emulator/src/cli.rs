//! `atrest aws ...`: run the emulator standalone, or act as the customer against it (or against
//! any AWS-compatible endpoint) with SigV4-signed requests. Every client command prints JSON.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};

use crate::client::{self, Ec2Client, StaticCredentials};
use crate::{Emulator, EmulatorConfig};

/// Options of `atrest aws serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Directory for the emulator's database, root key and aws-credentials file.
    #[arg(long, env = "ATREST_DATA_DIR", default_value = "atrest-data")]
    pub data_dir: PathBuf,
    /// Address of the emulator's public and admin listener.
    #[arg(long, env = "ATREST_AWS_LISTEN", default_value = "127.0.0.1:4566")]
    pub aws_listen: SocketAddr,
    /// Seconds before a new or changed IAM trust policy is seen by STS.
    #[arg(long, env = "ATREST_AWS_IAM_PROPAGATION_SECS", default_value_t = 0)]
    pub iam_propagation_secs: u64,
    /// Milliseconds before a new VPC endpoint leaves `pending`.
    #[arg(long, env = "ATREST_AWS_ENDPOINT_READY_MS", default_value_t = 2000)]
    pub endpoint_ready_ms: u64,
    /// Length in seconds of one day of a key's pending-deletion window.
    #[arg(long, env = "ATREST_AWS_KEY_DELETION_DAY_SECS", default_value_t = 86400)]
    pub key_deletion_day_secs: u64,
    /// New VPC endpoints wait in pendingAcceptance until accepted.
    #[arg(long, env = "ATREST_AWS_ENDPOINT_ACCEPTANCE_REQUIRED")]
    pub endpoint_acceptance_required: bool,
}

impl ServeArgs {
    pub fn to_config(&self) -> EmulatorConfig {
        EmulatorConfig {
            data_dir: self.data_dir.clone(),
            listen: self.aws_listen,
            iam_propagation_delay: Duration::from_secs(self.iam_propagation_secs),
            endpoint_ready_delay: Duration::from_millis(self.endpoint_ready_ms),
            key_deletion_day: Duration::from_secs(self.key_deletion_day_secs.max(1)),
            endpoint_acceptance_required: self.endpoint_acceptance_required,
            ..EmulatorConfig::default()
        }
    }
}

// Where and as whom client commands talk (a plain comment: clap would show a doc comment as the
// description of every subcommand that flattens these arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct ClientArgs {
    /// Emulator (or AWS-compatible) endpoint.
    #[arg(long, env = "ATREST_AWS_ENDPOINT", default_value = "http://127.0.0.1:4566")]
    pub endpoint_url: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Profile of the shared-credentials file (`customer` or `operator`).
    #[arg(long, env = "ATREST_AWS_PROFILE", default_value = "customer")]
    pub profile: String,
    /// Data directory holding `aws-credentials`.
    #[arg(long, env = "ATREST_DATA_DIR", default_value = "atrest-data")]
    pub data_dir: PathBuf,
    /// Explicit credentials file (default: <data-dir>/aws-credentials).
    #[arg(long, env = "AWS_SHARED_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,
}

impl ClientArgs {
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` win over the profile.
    pub fn credentials(&self) -> anyhow::Result<StaticCredentials> {
        if let (Ok(a), Ok(s)) = (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY")) {
            return Ok(StaticCredentials {
                access_key_id: a,
                secret_access_key: s,
                session_token: std::env::var("AWS_SESSION_TOKEN").ok(),
            });
        }
        let file = self.credentials_file.clone().unwrap_or_else(|| self.data_dir.join("aws-credentials"));
        client::read_profile(&file, &self.profile)
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AwsCommand {
    /// Run the AWS emulator (KMS, STS, IAM, VPC endpoints) in the foreground.
    Serve(ServeArgs),
    /// Who am I (STS GetCallerIdentity).
    GetCallerIdentity {
        #[command(flatten)]
        conn: ClientArgs,
    },
    /// Create a symmetric KMS key.
    CreateKey {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        description: Option<String>,
        /// Key policy: JSON text or file://path.
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        multi_region: bool,
    },
    /// KMS DescribeKey.
    DescribeKey {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        key_id: String,
    },
    /// KMS ListKeys.
    ListKeys {
        #[command(flatten)]
        conn: ClientArgs,
    },
    /// KMS GetKeyPolicy.
    GetKeyPolicy {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        key_id: String,
    },
    /// KMS PutKeyPolicy.
    PutKeyPolicy {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        key_id: String,
        /// JSON text or file://path.
        #[arg(long)]
        policy: String,
    },
    /// KMS EnableKey.
    EnableKey {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        key_id: String,
    },
    /// KMS DisableKey.
    DisableKey {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        key_id: String,
    },
    /// KMS ScheduleKeyDeletion.
    ScheduleKeyDeletion {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        key_id: String,
        #[arg(long, default_value_t = 30)]
        pending_window_in_days: i32,
    },
    /// KMS CancelKeyDeletion.
    CancelKeyDeletion {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        key_id: String,
    },
    /// KMS ReplicateKey.
    ReplicateKey {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        key_id: String,
        #[arg(long)]
        replica_region: String,
    },
    /// KMS RotateKeyOnDemand.
    RotateKeyOnDemand {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        key_id: String,
    },
    /// KMS CreateAlias.
    CreateAlias {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        alias_name: String,
        #[arg(long)]
        target_key_id: String,
    },
    /// Create an IAM role with a trust policy.
    CreateRole {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        role_name: String,
        /// Trust policy: JSON text or file://path.
        #[arg(long)]
        assume_role_policy_document: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        max_session_duration: Option<i32>,
    },
    /// IAM GetRole.
    GetRole {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        role_name: String,
    },
    /// IAM UpdateAssumeRolePolicy.
    UpdateAssumeRolePolicy {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        role_name: String,
        #[arg(long)]
        policy_document: String,
    },
    /// Attach an inline policy to a role.
    PutRolePolicy {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        role_name: String,
        #[arg(long)]
        policy_name: String,
        /// JSON text or file://path.
        #[arg(long)]
        policy_document: String,
    },
    /// IAM DeleteRolePolicy.
    DeleteRolePolicy {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        role_name: String,
        #[arg(long)]
        policy_name: String,
    },
    /// KMS VPC endpoint connections visible to the service side (the customer).
    ListEndpoints {
        #[command(flatten)]
        conn: ClientArgs,
    },
    /// EC2 AcceptEndpoint.
    AcceptEndpoint {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        vpc_endpoint_id: String,
    },
    /// EC2 RejectEndpoint.
    RejectEndpoint {
        #[command(flatten)]
        conn: ClientArgs,
        #[arg(long)]
        vpc_endpoint_id: String,
    },
}

fn document(arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}")),
        None => Ok(arg.to_string()),
    }
}

fn sdk_err<E, R>(e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> anyhow::Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => anyhow::anyhow!("{}: {}", s.code().unwrap_or("Unknown"), s.message().unwrap_or("")),
        None => anyhow::anyhow!("{}", aws_smithy_types::error::display::DisplayErrorContext(&e)),
    }
}

fn key_metadata(m: Option<&aws_sdk_kms::types::KeyMetadata>) -> Value {
    let Some(m) = m else { return Value::Null };
    json!({
        "KeyId": m.key_id(),
        "Arn": m.arn(),
        "AWSAccountId": m.aws_account_id(),
        "Description": m.description(),
        "Enabled": m.enabled(),
        "KeyState": m.key_state().map(|s| s.as_str()),
        "KeyUsage": m.key_usage().map(|s| s.as_str()),
        "KeySpec": m.key_spec().map(|s| s.as_str()),
        "MultiRegion": m.multi_region(),
        "CreationDate": m.creation_date().map(|d| d.secs()),
        "DeletionDate": m.deletion_date().map(|d| d.secs()),
    })
}

fn role_json(r: Option<&aws_sdk_iam::types::Role>) -> Value {
    let Some(r) = r else { return Value::Null };
    json!({
        "RoleName": r.role_name(),
        "RoleId": r.role_id(),
        "Arn": r.arn(),
        "Path": r.path(),
        "MaxSessionDuration": r.max_session_duration(),
        "AssumeRolePolicyDocument": r.assume_role_policy_document().map(|d| {
            percent_encoding::percent_decode_str(d).decode_utf8_lossy().into_owned()
        }),
    })
}

/// Run one `atrest aws` command. Client commands print their result as JSON on stdout.
pub async fn run(cmd: AwsCommand) -> anyhow::Result<()> {
    let out = match cmd {
        AwsCommand::Serve(args) => return serve(args).await,
        AwsCommand::GetCallerIdentity { conn } => {
            let sts = client::sts_client(&conn.endpoint_url, &conn.region, &conn.credentials()?);
            let r = sts.get_caller_identity().send().await.map_err(sdk_err)?;
            json!({"Account": r.account(), "Arn": r.arn(), "UserId": r.user_id()})
        }
        AwsCommand::CreateKey { conn, description, policy, multi_region } => {
            let kms = kms(&conn)?;
            let mut req = kms.create_key().multi_region(multi_region);
            if let Some(d) = description {
                req = req.description(d);
            }
            if let Some(p) = policy {
                req = req.policy(document(&p)?);
            }
            let r = req.send().await.map_err(sdk_err)?;
            json!({"KeyMetadata": key_metadata(r.key_metadata())})
        }
        AwsCommand::DescribeKey { conn, key_id } => {
            let r = kms(&conn)?.describe_key().key_id(key_id).send().await.map_err(sdk_err)?;
            json!({"KeyMetadata": key_metadata(r.key_metadata())})
        }
        AwsCommand::ListKeys { conn } => {
            let r = kms(&conn)?.list_keys().send().await.map_err(sdk_err)?;
            let keys: Vec<Value> =
                r.keys().iter().map(|k| json!({"KeyId": k.key_id(), "KeyArn": k.key_arn()})).collect();
            json!({"Keys": keys})
        }
        AwsCommand::GetKeyPolicy { conn, key_id } => {
            let r = kms(&conn)?.get_key_policy().key_id(key_id).policy_name("default").send().await.map_err(sdk_err)?;
            json!({"Policy": r.policy(), "PolicyName": "default"})
        }
        AwsCommand::PutKeyPolicy { conn, key_id, policy } => {
            kms(&conn)?
                .put_key_policy()
                .key_id(&key_id)
                .policy_name("default")
                .policy(document(&policy)?)
                .send()
                .await
                .map_err(sdk_err)?;
            json!({"KeyId": key_id, "PolicyName": "default"})
        }
        AwsCommand::EnableKey { conn, key_id } => {
            kms(&conn)?.enable_key().key_id(&key_id).send().await.map_err(sdk_err)?;
            json!({"KeyId": key_id, "Enabled": true})
        }
        AwsCommand::DisableKey { conn, key_id } => {
            kms(&conn)?.disable_key().key_id(&key_id).send().await.map_err(sdk_err)?;
            json!({"KeyId": key_id, "Enabled": false})
        }
        AwsCommand::ScheduleKeyDeletion { conn, key_id, pending_window_in_days } => {
            let r = kms(&conn)?
                .schedule_key_deletion()
                .key_id(key_id)
                .pending_window_in_days(pending_window_in_days)
                .send()
                .await
                .map_err(sdk_err)?;
            json!({"KeyId": r.key_id(), "DeletionDate": r.deletion_date().map(|d| d.secs()),
                   "KeyState": r.key_state().map(|s| s.as_str()), "PendingWindowInDays": r.pending_window_in_days()})
        }
        AwsCommand::CancelKeyDeletion { conn, key_id } => {
            let r = kms(&conn)?.cancel_key_deletion().key_id(key_id).send().await.map_err(sdk_err)?;
            json!({"KeyId": r.key_id()})
        }
        AwsCommand::ReplicateKey { conn, key_id, replica_region } => {
            let r = kms(&conn)?
                .replicate_key()
                .key_id(key_id)
                .replica_region(replica_region)
                .send()
                .await
                .map_err(sdk_err)?;
            json!({"ReplicaKeyMetadata": key_metadata(r.replica_key_metadata())})
        }
        AwsCommand::RotateKeyOnDemand { conn, key_id } => {
            let r = kms(&conn)?.rotate_key_on_demand().key_id(key_id).send().await.map_err(sdk_err)?;
            json!({"KeyId": r.key_id()})
        }
        AwsCommand::CreateAlias { conn, alias_name, target_key_id } => {
            kms(&conn)?
                .create_alias()
                .alias_name(&alias_name)
                .target_key_id(&target_key_id)
                .send()
                .await
                .map_err(sdk_err)?;
            json!({"AliasName": alias_name, "TargetKeyId": target_key_id})
        }
        AwsCommand::CreateRole { conn, role_name, assume_role_policy_document, description, max_session_duration } => {
            let iam = client::iam_client(&conn.endpoint_url, &conn.credentials()?);
            let r = iam
                .create_role()
                .role_name(role_name)
                .assume_role_policy_document(document(&assume_role_policy_document)?)
                .set_description(description)
                .set_max_session_duration(max_session_duration)
                .send()
                .await
                .map_err(sdk_err)?;
            json!({"Role": role_json(r.role())})
        }
        AwsCommand::GetRole { conn, role_name } => {
            let iam = client::iam_client(&conn.endpoint_url, &conn.credentials()?);
            let r = iam.get_role().role_name(role_name).send().await.map_err(sdk_err)?;
            json!({"Role": role_json(r.role())})
        }
        AwsCommand::UpdateAssumeRolePolicy { conn, role_name, policy_document } => {
            let iam = client::iam_client(&conn.endpoint_url, &conn.credentials()?);
            iam.update_assume_role_policy()
                .role_name(&role_name)
                .policy_document(document(&policy_document)?)
                .send()
                .await
                .map_err(sdk_err)?;
            json!({"RoleName": role_name})
        }
        AwsCommand::PutRolePolicy { conn, role_name, policy_name, policy_document } => {
            let iam = client::iam_client(&conn.endpoint_url, &conn.credentials()?);
            iam.put_role_policy()
                .role_name(&role_name)
                .policy_name(&policy_name)
                .policy_document(document(&policy_document)?)
                .send()
                .await
                .map_err(sdk_err)?;
            json!({"RoleName": role_name, "PolicyName": policy_name})
        }
        AwsCommand::DeleteRolePolicy { conn, role_name, policy_name } => {
            let iam = client::iam_client(&conn.endpoint_url, &conn.credentials()?);
            iam.delete_role_policy().role_name(&role_name).policy_name(&policy_name).send().await.map_err(sdk_err)?;
            json!({"RoleName": role_name, "PolicyName": policy_name, "Deleted": true})
        }
        AwsCommand::ListEndpoints { conn } => {
            let ec2 = Ec2Client::new(&conn.endpoint_url, &conn.region, conn.credentials()?);
            let list = ec2.describe_vpc_endpoint_connections().await?;
            json!({"VpcEndpointConnections": list})
        }
        AwsCommand::AcceptEndpoint { conn, vpc_endpoint_id } => {
            let ec2 = Ec2Client::new(&conn.endpoint_url, &conn.region, conn.credentials()?);
            let failed = ec2
                .accept_vpc_endpoint_connections(
                    &crate::ec2::service_id(&conn.region),
                    std::slice::from_ref(&vpc_endpoint_id),
                )
                .await?;
            endpoint_result(&vpc_endpoint_id, failed)?
        }
        AwsCommand::RejectEndpoint { conn, vpc_endpoint_id } => {
            let ec2 = Ec2Client::new(&conn.endpoint_url, &conn.region, conn.credentials()?);
            let failed = ec2
                .reject_vpc_endpoint_connections(
                    &crate::ec2::service_id(&conn.region),
                    std::slice::from_ref(&vpc_endpoint_id),
                )
                .await?;
            endpoint_result(&vpc_endpoint_id, failed)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn endpoint_result(id: &str, failed: Vec<(String, String)>) -> anyhow::Result<Value> {
    if let Some((_, code)) = failed.first() {
        anyhow::bail!("{code}: endpoint {id} was not updated");
    }
    Ok(json!({"VpcEndpointId": id, "Unsuccessful": []}))
}

fn kms(conn: &ClientArgs) -> anyhow::Result<aws_sdk_kms::Client> {
    Ok(client::kms_client(&conn.endpoint_url, &conn.region, &conn.credentials()?))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let emu = Emulator::start(args.to_config()).await?;
    println!(
        "{}",
        json!({
            "url": emu.url(),
            "credentialsFile": emu.credentials_file(),
            "operatorAccountId": emu.operator().account_id,
            "customerAccountId": emu.customer().account_id,
        })
    );
    tokio::signal::ctrl_c().await?;
    emu.shutdown().await;
    Ok(())
}
