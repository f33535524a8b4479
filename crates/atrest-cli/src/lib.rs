//! `atrest` client subcommands: talk to a running server over the Admin API.
//!
//! Every command is one or a few Atlas Admin API v2 calls (see `cmd_*`), sent with HTTP Digest
//! (`http`), configured by flags, `ATREST_*` variables or a profile saved by `atrest login`
//! (`config`), printed as the server's JSON or as a table (`output`).

mod cmd_admin;
mod cmd_clusters;
mod cmd_ear;
mod config;
mod ctx;
pub mod demo;
mod error;
mod http;
mod output;
mod progress;

use clap::Subcommand;

pub use error::exit;
pub use error::EXIT_CODES;

/// The exit code table as a literal, for `concat!` in help texts.
macro_rules! exit_codes {
    () => {
        "Exit codes: 0 success, 1 API error (stderr: Error: <errorCode> (<status>): <detail>), \
         2 usage error, 3 cannot connect, 4 authentication failed (401), 5 --wait timed out."
    };
}

// Client commands, flattened into the `atrest` binary next to `serve`. (No doc comment here:
// clap would make it the `about` of the whole binary. The `after_help` below does land on
// `atrest --help`, on purpose.) Connection flags and `-o/--output` are accepted by every client
// command, before or after its subcommand.
#[derive(Subcommand, Debug)]
#[command(after_help = concat!(
    "Client commands take --url, --public-key and --private-key (or ATREST_URL,\n\
     ATREST_PUBLIC_KEY, ATREST_PRIVATE_KEY, or a profile saved by `atrest login`), and\n\
     --output json|table (default: table on a terminal, the server's JSON otherwise).\n\
     Project-scoped commands take --project ID (or ATREST_PROJECT_ID).\n\n\
     Example:\n  atrest login --from-file atrest-data/bootstrap-credentials\n  \
     atrest projects create prod\n\n",
    "Exit codes:\n  0  success\n  1  API error (stderr: Error: <errorCode> (<status>): <detail>)\n  \
     2  usage error\n  3  cannot connect / network error\n  4  authentication failed (401)\n  \
     5  --wait or watch timed out"
))]
pub enum ClientCommand {
    /// Check credentials against a server and save them as a profile (mode 0600)
    #[command(after_help = concat!(
        "Example:\n  atrest login --url http://127.0.0.1:8080 --public-key abcdefgh --private-key 1234-...\n  \
         atrest login --from-file atrest-data/bootstrap-credentials --profile local\n\n\
         The profile file is $ATREST_CONFIG_DIR/profiles.toml (default ~/.config/atrest/profiles.toml).\n\n",
        exit_codes!()
    ))]
    Login(cmd_admin::LoginArgs),
    /// Remove a saved profile
    #[command(after_help = concat!("Example:\n  atrest logout --profile local\n\n", exit_codes!()))]
    Logout(cmd_admin::LogoutArgs),
    /// Organizations
    #[command(after_help = concat!("Example:\n  atrest orgs list\n\n", exit_codes!()))]
    Orgs(cmd_admin::OrgsArgs),
    /// Projects (Atlas groups)
    #[command(after_help = concat!("Example:\n  atrest projects create prod\n  atrest projects list -o json\n\n", exit_codes!()))]
    Projects(cmd_admin::ProjectsArgs),
    /// Organization API keys and their project roles
    #[command(after_help = concat!("Example:\n  atrest api-keys create --desc ci --role ORG_MEMBER\n\n", exit_codes!()))]
    ApiKeys(cmd_admin::ApiKeysArgs),
    /// OAuth service accounts, their secrets and project roles
    #[command(after_help = concat!("Example:\n  atrest service-accounts create --name ci --description Deploys --role ORG_MEMBER\n\n", exit_codes!()))]
    ServiceAccounts(cmd_admin::ServiceAccountsArgs),
    /// AWS IAM roles atrest assumes to reach your KMS key
    #[command(after_help = concat!("Example:\n  atrest cloud-provider-access create --project 6650e1a1c4b2a93f0a1b2c3e\n\n", exit_codes!()))]
    CloudProviderAccess(cmd_ear::CloudAccessArgs),
    /// The project's encryption at rest with your AWS KMS key
    #[command(after_help = concat!("Example:\n  atrest encryption-at-rest describe --project 6650e1a1c4b2a93f0a1b2c3e\n\n", exit_codes!()))]
    EncryptionAtRest(cmd_ear::EncryptionArgs),
    /// Private endpoints from atrest to AWS KMS
    #[command(after_help = concat!("Example:\n  atrest private-endpoints create --region US_EAST_1 --wait\n\n", exit_codes!()))]
    PrivateEndpoints(cmd_ear::EndpointsArgs),
    /// Clusters and their customer keys
    #[command(after_help = concat!("Example:\n  atrest clusters create orders --region US_EAST_1 --instance-size M10 --customer-keys --wait\n\n", exit_codes!()))]
    Clusters(cmd_clusters::ClustersArgs),
    /// Read and write documents in a cluster (data API)
    #[command(after_help = concat!("Example:\n  atrest data find --cluster orders --db shop --collection items\n\n", exit_codes!()))]
    Data(cmd_clusters::DataArgs),
    /// The project's activity feed
    #[command(after_help = concat!("Example:\n  atrest events list --limit 20\n\n", exit_codes!()))]
    Events(cmd_clusters::EventsArgs),
}

/// Runs one client command; returns the process exit code.
pub async fn run(cmd: ClientCommand) -> i32 {
    let result = match cmd {
        ClientCommand::Login(a) => cmd_admin::login(a).await,
        ClientCommand::Logout(a) => cmd_admin::logout(a).await,
        ClientCommand::Orgs(a) => cmd_admin::orgs(a).await,
        ClientCommand::Projects(a) => cmd_admin::projects(a).await,
        ClientCommand::ApiKeys(a) => cmd_admin::api_keys(a).await,
        ClientCommand::ServiceAccounts(a) => cmd_admin::service_accounts(a).await,
        ClientCommand::CloudProviderAccess(a) => cmd_ear::cloud_access(a).await,
        ClientCommand::EncryptionAtRest(a) => cmd_ear::encryption(a).await,
        ClientCommand::PrivateEndpoints(a) => cmd_ear::endpoints(a).await,
        ClientCommand::Clusters(a) => cmd_clusters::clusters(a).await,
        ClientCommand::Data(a) => cmd_clusters::data(a).await,
        ClientCommand::Events(a) => cmd_clusters::events(a).await,
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

/// Prints the completion script for `shell` (bash, zsh, fish, elvish, powershell) for the
/// whole `atrest` command (`cmd`, from the binary's `Cli::command()`) on stdout.
pub fn completions(shell: &str, cmd: &mut clap::Command) -> anyhow::Result<()> {
    completions_to(shell, cmd, &mut std::io::stdout())
}

fn completions_to(shell: &str, cmd: &mut clap::Command, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    use clap::ValueEnum;
    let sh = clap_complete::Shell::from_str(shell, true)
        .map_err(|_| anyhow::anyhow!("unknown shell {shell:?}: use bash, zsh, fish, elvish or powershell"))?;
    let name = cmd.get_name().to_owned();
    clap_complete::generate(sh, cmd, name, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// The binary's shape: `ClientCommand` flattened next to other subcommands.
    #[derive(Parser, Debug)]
    #[command(name = "atrest")]
    struct Cli {
        #[command(subcommand)]
        command: Top,
    }

    #[derive(Subcommand, Debug)]
    #[allow(clippy::large_enum_variant)]
    enum Top {
        Serve,
        #[command(flatten)]
        Client(ClientCommand),
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("atrest").chain(args.iter().copied()))
    }

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_subcommand() {
        let c = parse(&["projects", "--url", "http://x", "list", "-o", "json"]).unwrap();
        let Top::Client(ClientCommand::Projects(p)) = c.command else { panic!() };
        assert_eq!(p.g.url.as_deref(), Some("http://x"));
        assert_eq!(p.g.output, Some(output::Format::Json));
        let c = parse(&["clusters", "list", "--project", "g1"]).unwrap();
        let Top::Client(ClientCommand::Clusters(a)) = c.command else { panic!() };
        assert_eq!(a.p.project.as_deref(), Some("g1"));
    }

    #[test]
    fn usage_errors_are_clap_errors() {
        assert!(parse(&["projects", "describe"]).is_err());
        assert!(parse(&["encryption-at-rest", "update", "--enabled", "--disable"]).is_err());
        assert!(parse(&["clusters", "update", "c", "--paused", "maybe"]).is_err());
        assert!(parse(&["api-keys", "create", "--desc", "x"]).is_err());
        assert!(parse(&["projects", "list", "-o", "yaml"]).is_err());
        assert!(parse(&["private-endpoints", "create", "--region", "US_EAST_1", "--wait", "--timeout", "5"]).is_ok());
    }

    #[test]
    fn every_command_has_an_example() {
        fn walk(c: &clap::Command, path: &str) {
            for s in c.get_subcommands() {
                let p = format!("{path} {}", s.get_name());
                if p.trim() != "serve" && !p.split(' ').any(|w| w == "help") {
                    let h = s.get_after_help().map(|h| h.to_string()).unwrap_or_default();
                    assert!(h.contains("Example:"), "{p} has no example");
                }
                walk(s, &p);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        walk(&cmd, "");
        let top = cmd.get_after_help().map(|h| h.to_string()).unwrap_or_default();
        assert!(top.contains("Exit codes"), "{top}");
    }

    #[test]
    fn completions_for_the_three_shells() {
        for sh in ["bash", "zsh", "fish"] {
            let mut out = Vec::new();
            completions_to(sh, &mut Cli::command(), &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("private-endpoints"), "{sh}");
        }
        assert!(completions("tcsh", &mut Cli::command()).is_err());
    }
}
