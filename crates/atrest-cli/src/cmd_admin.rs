//! `login`, `logout`, `orgs`, `projects`, `api-keys`, `service-accounts`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::config::{self, Profile, DEFAULT_PROFILE};
use crate::ctx::{group_path, Ctx, Global, Page, V2};
use crate::error::{CliError, Result};
use crate::http::{seg, Api, Credentials, Request, V2_SERVICE_ACCOUNTS};
use crate::output::{self, Column, Format, View};

// ---------------------------------------------------------------- login / logout

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Server URL [env: ATREST_URL]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Public API key [env: ATREST_PUBLIC_KEY]
    #[arg(long, value_name = "KEY")]
    pub public_key: Option<String>,
    /// Private API key [env: ATREST_PRIVATE_KEY]
    #[arg(long, value_name = "KEY")]
    pub private_key: Option<String>,
    /// Read URL, keys and organization from a server's `<data-dir>/bootstrap-credentials`
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    /// Name to save the profile under
    #[arg(long, value_name = "NAME", default_value = DEFAULT_PROFILE)]
    pub profile: String,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT")]
    pub output: Option<Format>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Profile to remove
    #[arg(long, value_name = "NAME", default_value = DEFAULT_PROFILE)]
    pub profile: String,
}

pub async fn login(a: LoginArgs) -> Result<()> {
    let file = match &a.from_file {
        Some(p) => config::read_env_file(p)?,
        None => Default::default(),
    };
    let pick = |flag: &Option<String>, key: &str| {
        flag.clone().or_else(|| file.get(key).cloned()).or_else(|| std::env::var(key).ok()).filter(|v| !v.is_empty())
    };
    let url = pick(&a.url, "ATREST_URL");
    let public_key = pick(&a.public_key, "ATREST_PUBLIC_KEY");
    let private_key = pick(&a.private_key, "ATREST_PRIVATE_KEY");
    let (Some(url), Some(public_key), Some(private_key)) = (url, public_key, private_key) else {
        return Err(CliError::usage(
            "atrest login needs --url, --public-key and --private-key (or --from-file \
             <data-dir>/bootstrap-credentials)",
        ));
    };
    let api =
        Api::new(Credentials { url: url.clone(), public_key: public_key.clone(), private_key: private_key.clone() })?;
    // Verify before saving anything.
    let orgs = api.send(&Request::get(format!("{V2}/orgs"))).await?.json()?;
    let org_ids: Vec<String> = orgs["results"]
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let org_id = file.get("ATREST_ORG_ID").cloned().or_else(|| (org_ids.len() == 1).then(|| org_ids[0].clone()));

    let path = config::profiles_path()?;
    let mut profiles = config::load_profiles(&path)?;
    profiles.insert(
        a.profile.clone(),
        Profile {
            url: url.trim_end_matches('/').to_owned(),
            public_key: public_key.clone(),
            private_key,
            org_id: org_id.clone(),
        },
    );
    config::save_profiles(&path, &profiles)?;
    let summary = json!({
        "profile": a.profile,
        "path": path.display().to_string(),
        "url": url,
        "publicKey": public_key,
        "orgId": org_id,
    });
    match output::choose(a.output) {
        Format::Json => println!("{summary}"),
        Format::Table => {
            println!("Logged in to {url} as {public_key}; saved profile {:?} in {}", a.profile, path.display())
        }
    }
    Ok(())
}

pub async fn logout(a: LogoutArgs) -> Result<()> {
    let path = config::profiles_path()?;
    let mut profiles = config::load_profiles(&path)?;
    if profiles.remove(&a.profile).is_none() {
        return Err(CliError::usage(format!("no profile named {:?} in {}", a.profile, path.display())));
    }
    config::save_profiles(&path, &profiles)?;
    eprintln!("Removed profile {:?} from {}", a.profile, path.display());
    Ok(())
}

// ---------------------------------------------------------------- orgs

#[derive(Args, Debug)]
pub struct OrgsArgs {
    #[command(flatten)]
    pub g: Global,
    #[command(subcommand)]
    pub cmd: OrgsCmd,
}

#[derive(Subcommand, Debug)]
pub enum OrgsCmd {
    /// List the organizations this API key belongs to
    #[command(after_help = "Example:\n  atrest orgs list -o json")]
    List(Page),
    /// Show one organization (default: the key's only one)
    #[command(after_help = "Example:\n  atrest orgs describe 6650e1a1c4b2a93f0a1b2c3d")]
    Describe {
        /// Organization id
        id: Option<String>,
    },
}

const ORG_COLUMNS: &[Column] = &[("ID", "/id"), ("NAME", "/name"), ("DELETED", "/isDeleted")];

pub fn orgs_request(cmd: &OrgsCmd, org: Option<&str>) -> Request {
    match cmd {
        OrgsCmd::List(p) => Request::get(format!("{V2}/orgs{}", p.query())),
        OrgsCmd::Describe { .. } => Request::get(format!("{V2}/orgs/{}", seg(org.unwrap_or("")))),
    }
}

pub async fn orgs(a: OrgsArgs) -> Result<()> {
    let ctx = Ctx::new(&a.g)?;
    match &a.cmd {
        OrgsCmd::List(_) => {
            let view = View::List { key: "results", columns: ORG_COLUMNS };
            ctx.show(&orgs_request(&a.cmd, None), view).await?;
        }
        OrgsCmd::Describe { id } => {
            let org = ctx.org_id(id.as_deref()).await?;
            ctx.show(&orgs_request(&a.cmd, Some(&org)), View::Entity(ORG_COLUMNS)).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- projects

#[derive(Args, Debug)]
pub struct ProjectsArgs {
    #[command(flatten)]
    pub g: Global,
    #[command(subcommand)]
    pub cmd: ProjectsCmd,
}

#[derive(Subcommand, Debug)]
pub enum ProjectsCmd {
    /// List the projects this API key can see
    #[command(after_help = "Example:\n  atrest projects list\n  atrest projects list -o json | jq -r '.results[].id'")]
    List(Page),
    /// Create a project
    #[command(
        after_help = "Example:\n  atrest projects create prod\n  atrest projects create prod --org-id 6650e1a1c4b2a93f0a1b2c3d"
    )]
    Create {
        /// Project name
        name: String,
        /// Organization [default: ATREST_ORG_ID, the profile's, or the key's only organization]
        #[arg(long, value_name = "ID")]
        org_id: Option<String>,
    },
    /// Show one project, by id or by name
    #[command(
        after_help = "Example:\n  atrest projects describe 6650e1a1c4b2a93f0a1b2c3e\n  atrest projects describe --name prod"
    )]
    Describe {
        /// Project id
        #[arg(required_unless_present = "name", conflicts_with = "name")]
        id: Option<String>,
        /// Find the project by its name instead
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// Delete a project (it must have no clusters left)
    #[command(after_help = "Example:\n  atrest projects delete 6650e1a1c4b2a93f0a1b2c3e")]
    Delete {
        /// Project id
        id: String,
    },
}

const PROJECT_COLUMNS: &[Column] =
    &[("ID", "/id"), ("NAME", "/name"), ("ORG ID", "/orgId"), ("CLUSTERS", "/clusterCount"), ("CREATED", "/created")];

pub fn projects_request(cmd: &ProjectsCmd, org: Option<&str>) -> Request {
    match cmd {
        ProjectsCmd::List(p) => Request::get(format!("{V2}/groups{}", p.query())),
        ProjectsCmd::Create { name, .. } => {
            Request::post(format!("{V2}/groups"), json!({"name": name, "orgId": org.unwrap_or_default()}))
        }
        ProjectsCmd::Describe { id: Some(id), .. } => Request::get(group_path(id)),
        ProjectsCmd::Describe { name, .. } => {
            Request::get(format!("{V2}/groups/byName/{}", seg(name.as_deref().unwrap_or_default())))
        }
        ProjectsCmd::Delete { id } => Request::delete(group_path(id)),
    }
}

pub async fn projects(a: ProjectsArgs) -> Result<()> {
    let ctx = Ctx::new(&a.g)?;
    match &a.cmd {
        ProjectsCmd::List(_) => {
            let view = View::List { key: "results", columns: PROJECT_COLUMNS };
            ctx.show(&projects_request(&a.cmd, None), view).await?;
        }
        ProjectsCmd::Create { org_id, .. } => {
            let org = ctx.org_id(org_id.as_deref()).await?;
            ctx.show(&projects_request(&a.cmd, Some(&org)), View::Entity(PROJECT_COLUMNS)).await?;
        }
        ProjectsCmd::Describe { .. } => {
            ctx.show(&projects_request(&a.cmd, None), View::Entity(PROJECT_COLUMNS)).await?;
        }
        ProjectsCmd::Delete { id } => {
            ctx.show(&projects_request(&a.cmd, None), View::Message(format!("Deleted project {id}"))).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- api-keys

#[derive(Args, Debug)]
pub struct ApiKeysArgs {
    #[command(flatten)]
    pub g: Global,
    /// Organization [default: ATREST_ORG_ID, the profile's, or the key's only organization]
    #[arg(long, global = true, value_name = "ID")]
    pub org_id: Option<String>,
    #[command(subcommand)]
    pub cmd: ApiKeysCmd,
}

#[derive(Subcommand, Debug)]
pub enum ApiKeysCmd {
    /// List the organization's API keys
    #[command(after_help = "Example:\n  atrest api-keys list")]
    List(Page),
    /// Create an API key; its private key is shown once
    #[command(after_help = "Example:\n  atrest api-keys create --desc reader --role ORG_MEMBER\n\n\
        Organization roles: ORG_OWNER, ORG_MEMBER, ORG_GROUP_CREATOR, ORG_READ_ONLY, ...")]
    Create {
        /// Description of the key
        #[arg(long)]
        desc: String,
        /// Organization role (repeat for more than one)
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
    },
    /// Show one API key
    #[command(after_help = "Example:\n  atrest api-keys describe 6650e1a1c4b2a93f0a1b2c3f")]
    Describe {
        /// API key id
        id: String,
    },
    /// Delete an API key
    #[command(after_help = "Example:\n  atrest api-keys delete 6650e1a1c4b2a93f0a1b2c3f")]
    Delete {
        /// API key id
        id: String,
    },
    /// Give an API key roles on a project (replaces its roles there)
    #[command(
        after_help = "Example:\n  atrest api-keys assign 6650e1a1c4b2a93f0a1b2c3f --project 6650e1a1c4b2a93f0a1b2c3e --role GROUP_READ_ONLY\n\n\
        Project roles: GROUP_OWNER, GROUP_CLUSTER_MANAGER, GROUP_READ_ONLY, ..."
    )]
    Assign {
        /// API key id
        id: String,
        /// Project id
        #[arg(long, env = "ATREST_PROJECT_ID", value_name = "ID", hide_env_values = true)]
        project: String,
        /// Project role (repeat for more than one)
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
    },
}

const KEY_COLUMNS: &[Column] =
    &[("ID", "/id"), ("PUBLIC KEY", "/publicKey"), ("DESCRIPTION", "/desc"), ("ROLES", "/roles/*/roleName")];

const NEW_KEY_COLUMNS: &[Column] = &[
    ("ID", "/id"),
    ("PUBLIC KEY", "/publicKey"),
    ("PRIVATE KEY", "/privateKey"),
    ("DESCRIPTION", "/desc"),
    ("ROLES", "/roles/*/roleName"),
];

pub fn api_keys_request(cmd: &ApiKeysCmd, org: &str) -> Request {
    let base = format!("{V2}/orgs/{}/apiKeys", seg(org));
    match cmd {
        ApiKeysCmd::List(p) => Request::get(format!("{base}{}", p.query())),
        ApiKeysCmd::Create { desc, roles } => Request::post(base, json!({"desc": desc, "roles": roles})),
        ApiKeysCmd::Describe { id } => Request::get(format!("{base}/{}", seg(id))),
        ApiKeysCmd::Delete { id } => Request::delete(format!("{base}/{}", seg(id))),
        ApiKeysCmd::Assign { id, project, roles } => {
            Request::patch(format!("{}/apiKeys/{}", group_path(project), seg(id)), json!({"roles": roles}))
        }
    }
}

pub async fn api_keys(a: ApiKeysArgs) -> Result<()> {
    let ctx = Ctx::new(&a.g)?;
    let org = match &a.cmd {
        ApiKeysCmd::Assign { .. } => String::new(),
        _ => ctx.org_id(a.org_id.as_deref()).await?,
    };
    let req = api_keys_request(&a.cmd, &org);
    let view = match &a.cmd {
        ApiKeysCmd::List(_) => View::List { key: "results", columns: KEY_COLUMNS },
        ApiKeysCmd::Create { .. } => View::Entity(NEW_KEY_COLUMNS),
        ApiKeysCmd::Delete { id } => View::Message(format!("Deleted API key {id}")),
        ApiKeysCmd::Describe { .. } | ApiKeysCmd::Assign { .. } => View::Entity(KEY_COLUMNS),
    };
    ctx.show(&req, view).await?;
    if matches!(a.cmd, ApiKeysCmd::Create { .. }) && ctx.is_table() {
        eprintln!("Save the private key now: it is never shown again.");
    }
    Ok(())
}

// ---------------------------------------------------------------- service-accounts

#[derive(Args, Debug)]
pub struct ServiceAccountsArgs {
    #[command(flatten)]
    pub g: Global,
    /// Organization id (default: the profile's organization)
    #[arg(long, value_name = "ID")]
    pub org_id: Option<String>,
    #[command(subcommand)]
    pub cmd: ServiceAccountsCmd,
}

#[derive(Subcommand, Debug)]
pub enum ServiceAccountsCmd {
    /// List the organization's service accounts
    #[command(after_help = "Example:\n  atrest service-accounts list")]
    List(Page),
    /// Create a service account; its first secret is shown once
    #[command(
        after_help = "Example:\n  atrest service-accounts create --name ci --description Deploys --role ORG_MEMBER\n\n\
        Log in as it: atrest login --url URL --public-key <clientId> --private-key <secret>"
    )]
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: String,
        /// Organization role (repeat for more than one)
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        /// Hours until the secret expires (8..8766)
        #[arg(long, value_name = "HOURS", default_value_t = 720)]
        secret_expires_after_hours: i64,
    },
    /// Show one service account
    #[command(after_help = "Example:\n  atrest service-accounts describe mdb_sa_id_6650e1a1c4b2a93f0a1b2c3f")]
    Describe {
        /// Client id (mdb_sa_id_...)
        client_id: String,
    },
    /// Rename, describe or re-role a service account
    #[command(
        after_help = "Example:\n  atrest service-accounts update mdb_sa_id_6650e1a1c4b2a93f0a1b2c3f --role ORG_READ_ONLY"
    )]
    Update {
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Organization role (repeat for more than one; replaces the roles)
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// Delete a service account (its tokens stop working)
    #[command(after_help = "Example:\n  atrest service-accounts delete mdb_sa_id_6650e1a1c4b2a93f0a1b2c3f")]
    Delete { client_id: String },
    /// Create another secret (at most two); shown once
    #[command(
        after_help = "Example:\n  atrest service-accounts create-secret mdb_sa_id_6650e1a1c4b2a93f0a1b2c3f --secret-expires-after-hours 48"
    )]
    CreateSecret {
        client_id: String,
        #[arg(long, value_name = "HOURS", default_value_t = 720)]
        secret_expires_after_hours: i64,
    },
    /// Delete one secret
    #[command(
        after_help = "Example:\n  atrest service-accounts delete-secret mdb_sa_id_6650e1a1c4b2a93f0a1b2c3f 6650e1a1c4b2a93f0a1b2c40"
    )]
    DeleteSecret { client_id: String, secret_id: String },
    /// Give a service account roles on a project
    #[command(
        after_help = "Example:\n  atrest service-accounts invite mdb_sa_id_... --project 6650e1a1c4b2a93f0a1b2c3e --role GROUP_OWNER"
    )]
    Invite {
        client_id: String,
        #[arg(long, value_name = "ID", env = "ATREST_PROJECT_ID", hide_env_values = true)]
        project: String,
        /// Project role (repeat for more than one)
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
    },
}

const SA_COLUMNS: &[Column] =
    &[("CLIENT ID", "/clientId"), ("NAME", "/name"), ("DESCRIPTION", "/description"), ("ROLES", "/roles")];
const NEW_SA_COLUMNS: &[Column] = &[
    ("CLIENT ID", "/clientId"),
    ("NAME", "/name"),
    ("ROLES", "/roles"),
    ("SECRET", "/secrets/0/secret"),
    ("EXPIRES", "/secrets/0/expiresAt"),
];
const SECRET_COLUMNS: &[Column] = &[("ID", "/id"), ("SECRET", "/secret"), ("EXPIRES", "/expiresAt")];

pub fn service_accounts_request(cmd: &ServiceAccountsCmd, org: &str) -> Request {
    use ServiceAccountsCmd::*;
    let base = format!("{V2}/orgs/{}/serviceAccounts", seg(org));
    match cmd {
        List(p) => Request::get(format!("{base}{}", p.query())),
        Create { name, description, roles, secret_expires_after_hours } => Request::post(
            base,
            json!({"name": name, "description": description, "roles": roles,
                   "secretExpiresAfterHours": secret_expires_after_hours}),
        ),
        Describe { client_id } => Request::get(format!("{base}/{}", seg(client_id))),
        Update { client_id, name, description, roles } => {
            let mut body = serde_json::Map::new();
            if let Some(n) = name {
                body.insert("name".into(), json!(n));
            }
            if let Some(d) = description {
                body.insert("description".into(), json!(d));
            }
            if !roles.is_empty() {
                body.insert("roles".into(), json!(roles));
            }
            Request::patch(format!("{base}/{}", seg(client_id)), body.into())
        }
        Delete { client_id } => Request::delete(format!("{base}/{}", seg(client_id))),
        CreateSecret { client_id, secret_expires_after_hours } => Request::post(
            format!("{base}/{}/secrets", seg(client_id)),
            json!({"secretExpiresAfterHours": secret_expires_after_hours}),
        ),
        DeleteSecret { client_id, secret_id } => {
            Request::delete(format!("{base}/{}/secrets/{}", seg(client_id), seg(secret_id)))
        }
        Invite { client_id, project, roles } => Request::post(
            format!("{}/serviceAccounts/{}:invite", group_path(project), seg(client_id)),
            json!({"roles": roles}),
        ),
    }
    .accept(V2_SERVICE_ACCOUNTS)
}

pub async fn service_accounts(a: ServiceAccountsArgs) -> Result<()> {
    use ServiceAccountsCmd::*;
    let ctx = Ctx::new(&a.g)?;
    let org = match &a.cmd {
        Invite { .. } => String::new(),
        _ => ctx.org_id(a.org_id.as_deref()).await?,
    };
    let req = service_accounts_request(&a.cmd, &org);
    let view = match &a.cmd {
        List(_) => View::List { key: "results", columns: SA_COLUMNS },
        Create { .. } => View::Entity(NEW_SA_COLUMNS),
        CreateSecret { .. } => View::Entity(SECRET_COLUMNS),
        Delete { client_id } => View::Message(format!("Deleted service account {client_id}")),
        DeleteSecret { secret_id, .. } => View::Message(format!("Deleted secret {secret_id}")),
        Describe { .. } | Update { .. } | Invite { .. } => View::Entity(SA_COLUMNS),
    };
    ctx.show(&req, view).await?;
    if matches!(a.cmd, Create { .. } | CreateSecret { .. }) && ctx.is_table() {
        eprintln!("Save the secret now: it is never shown again.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    #[test]
    fn project_requests() {
        let r = projects_request(&ProjectsCmd::Create { name: "prod".into(), org_id: None }, Some("o1"));
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path, "/api/atlas/v2/groups");
        assert_eq!(r.body, Some(json!({"name": "prod", "orgId": "o1"})));
        let r = projects_request(&ProjectsCmd::Describe { id: None, name: Some("a b".into()) }, None);
        assert_eq!(r.path, "/api/atlas/v2/groups/byName/a%20b");
        let r = projects_request(&ProjectsCmd::Delete { id: "g1".into() }, None);
        assert_eq!((r.method, r.path.as_str()), (Method::DELETE, "/api/atlas/v2/groups/g1"));
    }

    #[test]
    fn api_key_requests() {
        let r = api_keys_request(&ApiKeysCmd::Create { desc: "reader".into(), roles: vec!["ORG_MEMBER".into()] }, "o1");
        assert_eq!(r.path, "/api/atlas/v2/orgs/o1/apiKeys");
        assert_eq!(r.body, Some(json!({"desc": "reader", "roles": ["ORG_MEMBER"]})));
        let r = api_keys_request(
            &ApiKeysCmd::Assign { id: "k1".into(), project: "g1".into(), roles: vec!["GROUP_READ_ONLY".into()] },
            "",
        );
        assert_eq!(r.method, Method::PATCH);
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/apiKeys/k1");
        assert_eq!(r.body, Some(json!({"roles": ["GROUP_READ_ONLY"]})));
    }
}
