//! Commands whose endpoints are still being built answer with the server's error (exit 1, the
//! Atlas error code), and usage mistakes are caught before any request (exit 2).

mod cli_common;

use cli_common::{Cli, Server};

#[test]
fn usage_errors_before_any_request() {
    let s = Server::start();
    let cli = Cli::for_server(&s).with("ATREST_PROJECT_ID", "0123456789abcdef01234567");
    let bad_json = cli.run(&["data", "insert", "--cluster", "c", "--db", "d", "--collection", "x", "{not json"]);
    assert_eq!(bad_json.code, 2, "{}", bad_json.stderr);
    let bad_filter = cli.run(&["data", "find", "--cluster", "c", "--db", "d", "--collection", "x", "--filter", "[1]"]);
    assert_eq!(bad_filter.code, 2, "{}", bad_filter.stderr);
    let nothing = cli.run(&["encryption-at-rest", "update"]);
    assert_eq!(nothing.code, 2, "{}", nothing.stderr);
    let nothing = cli.run(&["clusters", "update", "c"]);
    assert_eq!(nothing.code, 2, "{}", nothing.stderr);
    let both = cli.run(&["encryption-at-rest", "update", "--enabled", "--disable"]);
    assert_eq!(both.code, 2);
    let empty_stdin = cli.run_stdin(&["data", "insert", "--cluster", "c", "--db", "d", "--collection", "x"], Some(""));
    assert_eq!(empty_stdin.code, 2, "{}", empty_stdin.stderr);
}

#[test]
fn every_command_has_help_with_an_example() {
    let cli = Cli::bare();
    for args in [
        vec!["projects", "create", "--help"],
        vec!["api-keys", "assign", "--help"],
        vec!["private-endpoints", "watch", "--help"],
        vec!["clusters", "update", "--help"],
        vec!["data", "insert", "--help"],
        vec!["events", "list", "--help"],
        vec!["login", "--help"],
    ] {
        let out = cli.run(&args).ok();
        assert!(out.stdout.contains("Example:"), "{args:?}: {}", out.stdout);
    }
    let top = cli.run(&["--help"]).ok();
    assert!(top.stdout.contains("Exit codes"), "{}", top.stdout);
    assert!(top.stdout.contains("projects") && top.stdout.contains("serve"));
}
