//! `cloud-provider-access`, `encryption-at-rest`, `private-endpoints`.

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::ctx::{atlas_region, group_path, Ctx, Global, Page, ProjectArg};
use crate::error::{CliError, Result};
use crate::http::{seg, Request};
use crate::output::{self, Column, Format, View};
use crate::progress::{wait_for, Poll, Timing, WaitArgs};

// ---------------------------------------------------------------- cloud-provider-access

#[derive(Args, Debug)]
pub struct CloudAccessArgs {
    #[command(flatten)]
    pub g: Global,
    #[command(flatten)]
    pub p: ProjectArg,
    #[command(subcommand)]
    pub cmd: CloudAccessCmd,
}

#[derive(Subcommand, Debug)]
pub enum CloudAccessCmd {
    /// Create an AWS IAM role entry: returns atrest's AWS account ARN and the external id to
    /// put in your role's trust policy
    #[command(after_help = "Example:\n  atrest cloud-provider-access create --project 6650e1a1c4b2a93f0a1b2c3e")]
    Create,
    /// Authorize the role: atrest assumes your IAM role with the external id
    #[command(
        after_help = "Example:\n  atrest cloud-provider-access authorize 6650e1a1c4b2a93f0a1b2c40 \\\n    --role-arn arn:aws:iam::123456789012:role/atrest-kms --wait --timeout 300\n\n\
        With --wait, CANNOT_ASSUME_ROLE is retried until --timeout (then exit 5)."
    )]
    Authorize {
        /// Role id (roleId from `create`)
        role_id: String,
        /// ARN of your IAM role
        #[arg(long, value_name = "ARN")]
        role_arn: String,
        /// With --wait: retry while the answer is CANNOT_ASSUME_ROLE (a new IAM role or trust
        /// policy takes a while to propagate), until --timeout
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List the project's cloud provider access roles
    #[command(after_help = "Example:\n  atrest cloud-provider-access list")]
    List,
    /// Show one role
    #[command(after_help = "Example:\n  atrest cloud-provider-access describe 6650e1a1c4b2a93f0a1b2c40")]
    Describe {
        /// Role id
        role_id: String,
    },
    /// Deauthorize (remove) a role; refused while encryption at rest uses it
    #[command(after_help = "Example:\n  atrest cloud-provider-access deauthorize 6650e1a1c4b2a93f0a1b2c40")]
    Deauthorize {
        /// Role id
        role_id: String,
    },
}

const ROLE_COLUMNS: &[Column] = &[
    ("ROLE ID", "/roleId"),
    ("PROVIDER", "/providerName"),
    ("ATREST AWS ACCOUNT ARN", "/atlasAWSAccountArn"),
    ("EXTERNAL ID", "/atlasAssumedRoleExternalId"),
    ("IAM ROLE ARN", "/iamAssumedRoleArn"),
    ("CREATED", "/createdDate"),
    ("AUTHORIZED", "/authorizedDate"),
    ("USED BY", "/featureUsages/*/featureType"),
];

pub fn cloud_access_request(project: &str, cmd: &CloudAccessCmd) -> Request {
    let base = format!("{}/cloudProviderAccess", group_path(project));
    match cmd {
        CloudAccessCmd::Create => Request::post(base, json!({"providerName": "AWS"})),
        CloudAccessCmd::Authorize { role_id, role_arn, .. } => Request::patch(
            format!("{base}/{}", seg(role_id)),
            json!({"providerName": "AWS", "iamAssumedRoleArn": role_arn}),
        ),
        CloudAccessCmd::List => Request::get(base),
        CloudAccessCmd::Describe { role_id } => Request::get(format!("{base}/{}", seg(role_id))),
        CloudAccessCmd::Deauthorize { role_id } => Request::delete(format!("{base}/AWS/{}", seg(role_id))),
    }
}

pub async fn cloud_access(a: CloudAccessArgs) -> Result<()> {
    let project = a.p.id()?;
    let ctx = Ctx::new(&a.g)?;
    let view = match &a.cmd {
        CloudAccessCmd::List => View::List { key: "awsIamRoles", columns: ROLE_COLUMNS },
        CloudAccessCmd::Deauthorize { role_id } => View::Message(format!("Deauthorized role {role_id}")),
        _ => View::Entity(ROLE_COLUMNS),
    };
    let req = cloud_access_request(project, &a.cmd);
    if let CloudAccessCmd::Authorize { role_id, wait, .. } = &a.cmd {
        if wait.wait {
            let label = format!("authorize role {role_id}");
            let body = wait_for(&label, &wait.timing, async || match ctx.api.send(&req).await {
                Ok(resp) => Ok(Poll::Done("authorized".into(), resp.body)),
                Err(CliError::Api { code, .. }) if code == "CANNOT_ASSUME_ROLE" => {
                    Ok(Poll::Pending("CANNOT_ASSUME_ROLE, retrying".into()))
                }
                Err(e) => Err(e),
            })
            .await?;
            output::print(ctx.format, &body, &view);
            return Ok(());
        }
    }
    ctx.show(&req, view).await?;
    Ok(())
}

// ---------------------------------------------------------------- encryption-at-rest

#[derive(Args, Debug)]
pub struct EncryptionArgs {
    #[command(flatten)]
    pub g: Global,
    #[command(flatten)]
    pub p: ProjectArg,
    #[command(subcommand)]
    pub cmd: EncryptionCmd,
}

#[derive(Subcommand, Debug)]
pub enum EncryptionCmd {
    /// Show the project's encryption at rest settings (AWS KMS)
    #[command(after_help = "Example:\n  atrest encryption-at-rest describe --project 6650e1a1c4b2a93f0a1b2c3e")]
    Describe,
    /// Change the AWS KMS settings (only the fields given are sent)
    #[command(
        after_help = "Example:\n  atrest encryption-at-rest update --enabled \\\n    --key-id arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab \\\n    --region US_EAST_1 --role-id 6650e1a1c4b2a93f0a1b2c40\n  atrest encryption-at-rest update --require-private-networking true\n  atrest encryption-at-rest update --disable"
    )]
    Update(EncryptionUpdate),
    /// Check the key now: prints the settings, exits 0 when the key is valid and 1 otherwise
    #[command(after_help = "Example:\n  atrest encryption-at-rest validate && echo key is valid")]
    Validate,
}

#[derive(Args, Debug, Default, Clone)]
pub struct EncryptionUpdate {
    /// Turn customer-key encryption at rest on
    #[arg(long, conflicts_with = "disable")]
    pub enabled: bool,
    /// Turn it off (refused while clusters use customer keys or private endpoints exist)
    #[arg(long)]
    pub disable: bool,
    /// AWS KMS key id or ARN (customerMasterKeyID); changing it rotates the key
    #[arg(long, value_name = "KEY")]
    pub key_id: Option<String>,
    /// AWS region of the key, e.g. US_EAST_1 (us-east-1 is accepted too)
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Cloud provider access role id (see `atrest cloud-provider-access`)
    #[arg(long, value_name = "ID")]
    pub role_id: Option<String>,
    /// Reach the key only over private endpoints
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub require_private_networking: Option<bool>,
}

const EAR_COLUMNS: &[Column] = &[
    ("AWS KMS ENABLED", "/awsKms/enabled"),
    ("KEY ID", "/awsKms/customerMasterKeyID"),
    ("REGION", "/awsKms/region"),
    ("ROLE ID", "/awsKms/roleId"),
    ("VALID", "/awsKms/valid"),
    ("REQUIRE PRIVATE NETWORKING", "/awsKms/requirePrivateNetworking"),
];

pub fn encryption_update_body(u: &EncryptionUpdate) -> Result<Value> {
    let mut kms = Map::new();
    if u.enabled {
        kms.insert("enabled".into(), json!(true));
    }
    if u.disable {
        kms.insert("enabled".into(), json!(false));
    }
    if let Some(k) = &u.key_id {
        kms.insert("customerMasterKeyID".into(), json!(k));
    }
    if let Some(r) = &u.region {
        kms.insert("region".into(), json!(atlas_region(r)));
    }
    if let Some(r) = &u.role_id {
        kms.insert("roleId".into(), json!(r));
    }
    if let Some(b) = u.require_private_networking {
        kms.insert("requirePrivateNetworking".into(), json!(b));
    }
    if kms.is_empty() {
        return Err(CliError::usage(
            "nothing to update: give --enabled, --disable, --key-id, --region, --role-id or \
             --require-private-networking",
        ));
    }
    Ok(json!({ "awsKms": kms }))
}

pub fn encryption_request(project: &str, cmd: &EncryptionCmd) -> Result<Request> {
    let path = format!("{}/encryptionAtRest", group_path(project));
    Ok(match cmd {
        EncryptionCmd::Describe | EncryptionCmd::Validate => Request::get(path),
        EncryptionCmd::Update(u) => Request::patch(path, encryption_update_body(u)?),
    })
}

pub async fn encryption(a: EncryptionArgs) -> Result<()> {
    let project = a.p.id()?;
    let ctx = Ctx::new(&a.g)?;
    let req = encryption_request(project, &a.cmd)?;
    let v = ctx.show(&req, View::Entity(EAR_COLUMNS)).await?;
    if let EncryptionCmd::Validate = a.cmd {
        let enabled = v["awsKms"]["enabled"].as_bool().unwrap_or(false);
        let valid = v["awsKms"]["valid"].as_bool().unwrap_or(false);
        if !enabled {
            return Err(CliError::other("AWS KMS encryption at rest is not enabled for this project"));
        }
        if !valid {
            return Err(CliError::other(
                "the AWS KMS key is not valid: atrest cannot use it (disabled, pending deletion, \
                 deleted, or access denied)",
            ));
        }
        if ctx.is_table() {
            eprintln!("The AWS KMS key is valid.");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- private-endpoints

#[derive(Args, Debug)]
pub struct EndpointsArgs {
    #[command(flatten)]
    pub g: Global,
    #[command(flatten)]
    pub p: ProjectArg,
    #[command(subcommand)]
    pub cmd: EndpointsCmd,
}

#[derive(Subcommand, Debug)]
pub enum EndpointsCmd {
    /// Create a private endpoint to AWS KMS in each region given (needs
    /// requirePrivateNetworking first)
    #[command(
        after_help = "Example:\n  atrest private-endpoints create --region US_EAST_1 --region EU_WEST_1 --wait\n\n\
        With --wait, exits 1 if an endpoint ends FAILED, 5 if it is still INITIATING at --timeout."
    )]
    Create {
        /// AWS region, e.g. US_EAST_1 (repeat for more)
        #[arg(long = "region", value_name = "REGION", required = true)]
        regions: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List the project's KMS private endpoints
    #[command(after_help = "Example:\n  atrest private-endpoints list")]
    List(Page),
    /// Show one private endpoint
    #[command(after_help = "Example:\n  atrest private-endpoints describe 6650e1a1c4b2a93f0a1b2c41")]
    Describe {
        /// Endpoint id
        id: String,
    },
    /// Delete a private endpoint (it shows DELETING, then is gone)
    #[command(after_help = "Example:\n  atrest private-endpoints delete 6650e1a1c4b2a93f0a1b2c41 --wait")]
    Delete {
        /// Endpoint id
        id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Wait until every endpoint has settled (none INITIATING or DELETING), showing progress
    #[command(after_help = "Example:\n  atrest private-endpoints watch --timeout 300\n\n\
        Prints the settled list; exits 5 if something is still in progress at --timeout.")]
    Watch {
        #[command(flatten)]
        timing: Timing,
    },
}

const ENDPOINT_COLUMNS: &[Column] = &[
    ("ID", "/id"),
    ("REGION", "/regionName"),
    ("STATUS", "/status"),
    ("CONNECTION", "/privateEndpointConnectionName"),
    ("ERROR", "/errorMessage"),
];

const ENDPOINTS_VIEW: View = View::List { key: "results", columns: ENDPOINT_COLUMNS };

pub fn endpoints_path(project: &str) -> String {
    format!("{}/encryptionAtRest/AWS/privateEndpoints", group_path(project))
}

pub fn endpoint_create_request(project: &str, region: &str) -> Request {
    Request::post(endpoints_path(project), json!({"regionName": atlas_region(region)}))
}

pub fn endpoint_request(project: &str, cmd: &EndpointsCmd) -> Request {
    let base = endpoints_path(project);
    match cmd {
        EndpointsCmd::List(p) => Request::get(format!("{base}{}", p.query())),
        EndpointsCmd::Describe { id } => Request::get(format!("{base}/{}", seg(id))),
        EndpointsCmd::Delete { id, .. } => Request::delete(format!("{base}/{}", seg(id))),
        EndpointsCmd::Watch { .. } | EndpointsCmd::Create { .. } => Request::get(format!("{base}?itemsPerPage=500")),
    }
}

/// Settled: anything but INITIATING and DELETING.
pub fn endpoint_settled(status: &str) -> bool {
    !matches!(status, "INITIATING" | "DELETING")
}

fn status_of(v: &Value) -> &str {
    v["status"].as_str().unwrap_or("UNKNOWN")
}

pub async fn endpoints(a: EndpointsArgs) -> Result<()> {
    let project = a.p.id()?;
    let ctx = Ctx::new(&a.g)?;
    match &a.cmd {
        EndpointsCmd::Create { regions, wait } => {
            let mut created = Vec::new();
            for r in regions {
                let resp = ctx.api.send(&endpoint_create_request(project, r)).await?;
                if !wait.wait {
                    print_endpoint(ctx.format, &resp.body);
                }
                created.push(resp.json()?);
            }
            if wait.wait {
                let mut failed = Vec::new();
                for e in &created {
                    let id = e["id"].as_str().unwrap_or_default().to_owned();
                    let region = e["regionName"].as_str().unwrap_or_default().to_owned();
                    let req = Request::get(format!("{}/{}", endpoints_path(project), seg(&id)));
                    let label = format!("private endpoint {region} ({id})");
                    let body = wait_for(&label, &wait.timing, async || {
                        let resp = ctx.api.send(&req).await?;
                        let v = resp.json()?;
                        let s = status_of(&v).to_owned();
                        Ok(if endpoint_settled(&s) { Poll::Done(s, resp.body) } else { Poll::Pending(s) })
                    })
                    .await?;
                    print_endpoint(ctx.format, &body);
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    if status_of(&v) == "FAILED" {
                        failed.push(format!("{region} ({id}): {}", v["errorMessage"].as_str().unwrap_or("no message")));
                    }
                }
                if !failed.is_empty() {
                    return Err(CliError::other(format!("private endpoint FAILED: {}", failed.join("; "))));
                }
            }
        }
        EndpointsCmd::List(_) => {
            ctx.show(&endpoint_request(project, &a.cmd), ENDPOINTS_VIEW).await?;
        }
        EndpointsCmd::Describe { .. } => {
            ctx.show(&endpoint_request(project, &a.cmd), View::Entity(ENDPOINT_COLUMNS)).await?;
        }
        EndpointsCmd::Delete { id, wait } => {
            ctx.show(&endpoint_request(project, &a.cmd), View::Message(format!("Deleting private endpoint {id}")))
                .await?;
            if wait.wait {
                let req = Request::get(format!("{}/{}", endpoints_path(project), seg(id)));
                wait_for(&format!("private endpoint {id}"), &wait.timing, async || {
                    let resp = ctx.api.execute(&req).await?;
                    if resp.status == 404 {
                        return Ok(Poll::Done("deleted".into(), ()));
                    }
                    if !(200..300).contains(&resp.status) {
                        return Err(CliError::from_response(resp.status, &resp.body));
                    }
                    Ok(Poll::Pending(status_of(&resp.json()?).to_owned()))
                })
                .await?;
            }
        }
        EndpointsCmd::Watch { timing } => {
            let req = endpoint_request(project, &a.cmd);
            let body = wait_for("private endpoints", timing, async || {
                let resp = ctx.api.send(&req).await?;
                let v = resp.json()?;
                let items = v["results"].as_array().cloned().unwrap_or_default();
                let pending: Vec<String> = items
                    .iter()
                    .filter(|e| !endpoint_settled(status_of(e)))
                    .map(|e| format!("{} {}", e["regionName"].as_str().unwrap_or("?"), status_of(e)))
                    .collect();
                Ok(if pending.is_empty() {
                    let summary = if items.is_empty() {
                        "none".to_owned()
                    } else {
                        items
                            .iter()
                            .map(|e| format!("{} {}", e["regionName"].as_str().unwrap_or("?"), status_of(e)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    Poll::Done(format!("settled: {summary}"), resp.body)
                } else {
                    Poll::Pending(pending.join(", "))
                })
            })
            .await?;
            output::print(ctx.format, &body, &ENDPOINTS_VIEW);
        }
    }
    Ok(())
}

fn print_endpoint(format: Format, body: &str) {
    output::print(format, body, &View::Entity(ENDPOINT_COLUMNS));
    if format == Format::Table {
        println!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    #[test]
    fn cloud_provider_access_requests() {
        let r = cloud_access_request("g1", &CloudAccessCmd::Create);
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/cloudProviderAccess");
        assert_eq!(r.body, Some(json!({"providerName": "AWS"})));
        let r = cloud_access_request(
            "g1",
            &CloudAccessCmd::Authorize {
                role_id: "r1".into(),
                role_arn: "arn:aws:iam::1:role/x".into(),
                wait: WaitArgs { wait: false, timing: Timing { timeout: 1, poll_interval: 1.0 } },
            },
        );
        assert_eq!(r.method, Method::PATCH);
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/cloudProviderAccess/r1");
        assert_eq!(r.body, Some(json!({"providerName": "AWS", "iamAssumedRoleArn": "arn:aws:iam::1:role/x"})));
        let r = cloud_access_request("g1", &CloudAccessCmd::List);
        assert_eq!((r.method, r.body), (Method::GET, None));
        let r = cloud_access_request("g1", &CloudAccessCmd::Describe { role_id: "r1".into() });
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/cloudProviderAccess/r1");
        let r = cloud_access_request("g1", &CloudAccessCmd::Deauthorize { role_id: "r1".into() });
        assert_eq!(r.method, Method::DELETE);
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/cloudProviderAccess/AWS/r1");
    }

    #[test]
    fn encryption_requests() {
        let r = encryption_request("g1", &EncryptionCmd::Describe).unwrap();
        assert_eq!((r.method, r.path.as_str()), (Method::GET, "/api/atlas/v2/groups/g1/encryptionAtRest"));
        let r = encryption_request(
            "g1",
            &EncryptionCmd::Update(EncryptionUpdate {
                enabled: true,
                key_id: Some("k".into()),
                region: Some("us-east-1".into()),
                role_id: Some("r1".into()),
                require_private_networking: Some(false),
                ..Default::default()
            }),
        )
        .unwrap();
        assert_eq!(r.method, Method::PATCH);
        assert_eq!(
            r.body,
            Some(json!({"awsKms": {"enabled": true, "customerMasterKeyID": "k",
                "region": "US_EAST_1", "roleId": "r1", "requirePrivateNetworking": false}}))
        );
        let r =
            encryption_request("g1", &EncryptionCmd::Update(EncryptionUpdate { disable: true, ..Default::default() }))
                .unwrap();
        assert_eq!(r.body, Some(json!({"awsKms": {"enabled": false}})));
        let e = encryption_request("g1", &EncryptionCmd::Update(EncryptionUpdate::default()));
        assert_eq!(e.unwrap_err().exit_code(), 2);
    }

    #[test]
    fn private_endpoint_requests() {
        let r = endpoint_create_request("g1", "us-east-1");
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/encryptionAtRest/AWS/privateEndpoints");
        assert_eq!(r.body, Some(json!({"regionName": "US_EAST_1"})));
        let r = endpoint_request("g1", &EndpointsCmd::Describe { id: "e1".into() });
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/encryptionAtRest/AWS/privateEndpoints/e1");
        let r = endpoint_request(
            "g1",
            &EndpointsCmd::Delete {
                id: "e1".into(),
                wait: WaitArgs { wait: false, timing: Timing { timeout: 1, poll_interval: 1.0 } },
            },
        );
        assert_eq!(r.method, Method::DELETE);
        assert!(r.body.is_none());
        for s in ["PENDING_ACCEPTANCE", "ACTIVE", "FAILED", "PENDING_RECREATION"] {
            assert!(endpoint_settled(s));
        }
        assert!(!endpoint_settled("INITIATING"));
        assert!(!endpoint_settled("DELETING"));
    }
}
