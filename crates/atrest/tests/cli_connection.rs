//! Exit codes scripts rely on: wrong credentials 4, unreachable server 3, no credentials 2;
//! flags beat the environment.

mod cli_common;

use cli_common::{dead_url, Cli, Server};

#[test]
fn wrong_credentials_exit_4() {
    let s = Server::start();
    let cli = Cli::for_server(&s).with("ATREST_PRIVATE_KEY", "00000000-0000-0000-0000-000000000000");
    let out = cli.run(&["projects", "list"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("authentication failed"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    // The same with an unknown public key, given as a flag.
    let out = Cli::for_server(&s).run(&["orgs", "list", "--public-key", "nobodyxx"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
}

#[test]
fn unreachable_server_exits_3() {
    let cli = Cli::bare()
        .with("ATREST_URL", &dead_url())
        .with("ATREST_PUBLIC_KEY", "abcdefgh")
        .with("ATREST_PRIVATE_KEY", "x");
    let out = cli.run(&["projects", "list"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);
}

#[test]
fn no_credentials_is_a_usage_error() {
    let out = Cli::bare().run(&["projects", "list"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("atrest login"), "{}", out.stderr);
}

#[test]
fn flags_beat_the_environment() {
    let s = Server::start();
    // Environment points at a dead server; --url points at the real one.
    let cli = Cli::for_server(&s).with("ATREST_URL", &dead_url());
    assert_eq!(cli.run(&["projects", "list"]).code, 3);
    cli.run(&["projects", "list", "--url", &s.url]).ok();
    cli.run(&["projects", "--url", &s.url, "list"]).ok();
}
