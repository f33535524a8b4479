//! `atrest login` verifies the credentials, writes a 0600 profile, and later commands use it.

mod cli_common;

use cli_common::{Cli, Server};

#[test]
fn login_with_flags_then_commands_use_the_profile() {
    let s = Server::start();
    let cli = Cli::bare();
    let public = s.creds["ATREST_PUBLIC_KEY"].clone();
    let private = s.creds["ATREST_PRIVATE_KEY"].clone();

    // Wrong key: refused (exit 4) and nothing saved.
    let bad = cli.run(&["login", "--url", &s.url, "--public-key", &public, "--private-key", "wrong"]);
    assert_eq!(bad.code, 4, "{}", bad.stderr);
    assert!(!cli.profiles_path().exists());

    let out = cli.run(&["login", "--url", &s.url, "--public-key", &public, "--private-key", &private]).ok();
    let summary = out.json();
    assert_eq!(summary["profile"], "default");
    assert_eq!(summary["orgId"], s.org_id().as_str());
    let path = cli.profiles_path();
    #[cfg(unix)]
    assert_eq!(cli_common::mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&public) && text.contains(&s.url), "{text}");

    // No credentials in the environment: the default profile is used.
    let created = cli.run(&["projects", "create", "from-profile"]).ok().json();
    assert_eq!(created["orgId"], s.org_id().as_str());
    let list = cli.run(&["projects", "list"]).ok().json();
    assert_eq!(list["totalCount"], 1);

    // Logout removes it; then there are no credentials (exit 2).
    cli.run(&["logout"]).ok();
    assert_eq!(cli.run(&["projects", "list"]).code, 2);
    #[cfg(unix)]
    assert_eq!(cli_common::mode(&path), 0o600);
}

#[test]
fn login_from_the_bootstrap_file_into_a_named_profile() {
    let s = Server::start();
    let cli = Cli::bare();
    let file = s.dir.join("bootstrap-credentials");
    cli.run(&["login", "--from-file", file.to_str().unwrap(), "--profile", "local", "-o", "table"]).ok();
    // Only "local" exists: without --profile there are no credentials.
    assert_eq!(cli.run(&["orgs", "list"]).code, 2);
    let orgs = cli.run(&["orgs", "list", "--profile", "local"]).ok().json();
    assert_eq!(orgs["results"][0]["id"], s.org_id().as_str());
    // An unknown profile is a usage error.
    assert_eq!(cli.run(&["orgs", "list", "--profile", "nope"]).code, 2);

    // A second profile with a wrong URL does not disturb the first one.
    let bad = cli.run(&[
        "login",
        "--from-file",
        file.to_str().unwrap(),
        "--url",
        &cli_common::dead_url(),
        "--profile",
        "other",
    ]);
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    cli.run(&["projects", "list", "--profile", "local"]).ok();
    #[cfg(unix)]
    assert_eq!(cli_common::mode(&cli.profiles_path()), 0o600);

    // login without any credentials: usage error.
    assert_eq!(Cli::bare().run(&["login"]).code, 2);
}
