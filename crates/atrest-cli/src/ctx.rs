//! What every command shares: the global flags, the resolved connection, output helpers.

use clap::Args;
use serde_json::Value;

use crate::config::{self, ConnectionFlags};
use crate::error::{CliError, Result};
use crate::http::{seg, Api, Request};
use crate::output::{self, Format, View};

/// Connection and output flags, accepted by every client command (before or after the
/// subcommand name).
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// Server URL, e.g. http://127.0.0.1:8080 [env: ATREST_URL]
    #[arg(long, global = true, help_heading = "Global options", value_name = "URL")]
    pub url: Option<String>,
    /// Public API key (the Digest username) [env: ATREST_PUBLIC_KEY]
    #[arg(long, global = true, help_heading = "Global options", value_name = "KEY")]
    pub public_key: Option<String>,
    /// Private API key (the Digest password) [env: ATREST_PRIVATE_KEY]
    #[arg(long, global = true, help_heading = "Global options", value_name = "KEY")]
    pub private_key: Option<String>,
    /// Profile saved by `atrest login` (default: "default")
    #[arg(long, global = true, help_heading = "Global options", value_name = "NAME")]
    pub profile: Option<String>,
    /// Output format [default: table on a terminal, json otherwise]
    #[arg(short = 'o', long, global = true, help_heading = "Global options", value_enum, value_name = "FORMAT")]
    pub output: Option<Format>,
}

/// `--project`, for every project-scoped command.
#[derive(Args, Debug, Clone, Default)]
pub struct ProjectArg {
    /// Project (group) id
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "ATREST_PROJECT_ID",
        value_name = "ID",
        hide_env_values = true
    )]
    pub project: Option<String>,
}

impl ProjectArg {
    pub fn id(&self) -> Result<&str> {
        self.project
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| CliError::usage("this command needs --project ID (or ATREST_PROJECT_ID)"))
    }
}

/// `--page` and `--items-per-page` for list commands.
#[derive(Args, Debug, Clone, Default)]
pub struct Page {
    /// Page number, from 1
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub page: Option<u32>,
    /// Items per page (1..500; the server's default is 100)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=500))]
    pub items_per_page: Option<u32>,
}

impl Page {
    /// The query string (with its `?`), or nothing.
    pub fn query(&self) -> String {
        let mut q = Vec::new();
        if let Some(p) = self.page {
            q.push(format!("pageNum={p}"));
        }
        if let Some(n) = self.items_per_page {
            q.push(format!("itemsPerPage={n}"));
        }
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    }
}

pub const V2: &str = "/api/atlas/v2";

pub fn group_path(project: &str) -> String {
    format!("{V2}/groups/{}", seg(project))
}

pub struct Ctx {
    pub api: Api,
    pub format: Format,
    org_id: Option<String>,
}

impl Ctx {
    pub fn new(g: &Global) -> Result<Ctx> {
        let resolved = config::resolve(&ConnectionFlags {
            url: g.url.clone(),
            public_key: g.public_key.clone(),
            private_key: g.private_key.clone(),
            profile: g.profile.clone(),
        })?;
        Ok(Ctx { api: Api::new(resolved.creds)?, format: output::choose(g.output), org_id: resolved.org_id })
    }

    /// Sends, prints the answer in the chosen format, and returns it parsed.
    pub async fn show(&self, req: &Request, view: View) -> Result<Value> {
        let resp = self.api.send(req).await?;
        output::print(self.format, &resp.body, &view);
        resp.json()
    }

    pub async fn json(&self, req: &Request) -> Result<Value> {
        self.api.send(req).await?.json()
    }

    pub fn is_table(&self) -> bool {
        self.format == Format::Table
    }

    /// The organization: `--org-id`, else ATREST_ORG_ID or the profile's, else the key's only
    /// organization (GET /orgs).
    pub async fn org_id(&self, flag: Option<&str>) -> Result<String> {
        if let Some(o) = flag.filter(|o| !o.is_empty()) {
            return Ok(o.to_owned());
        }
        if let Some(o) = &self.org_id {
            return Ok(o.clone());
        }
        let orgs = self.json(&Request::get(format!("{V2}/orgs"))).await?;
        let ids: Vec<&str> =
            orgs["results"].as_array().map(|a| a.iter().filter_map(|o| o["id"].as_str()).collect()).unwrap_or_default();
        match ids.as_slice() {
            [one] => Ok((*one).to_owned()),
            [] => Err(CliError::usage("this API key belongs to no organization; give --org-id")),
            many => Err(CliError::usage(format!(
                "this API key belongs to {} organizations ({}); choose one with --org-id",
                many.len(),
                many.join(", ")
            ))),
        }
    }
}

/// `us-east-1` and `us_east_1` both become Atlas's `US_EAST_1`.
pub fn atlas_region(r: &str) -> String {
    r.trim().replace('-', "_").to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_query_and_regions() {
        assert_eq!(Page::default().query(), "");
        assert_eq!(Page { page: Some(2), items_per_page: Some(500) }.query(), "?pageNum=2&itemsPerPage=500");
        assert_eq!(atlas_region("us-east-1"), "US_EAST_1");
        assert_eq!(atlas_region("EU_WEST_1"), "EU_WEST_1");
    }
}
