//! `atrest api-keys`: create (private key shown once), list, describe, assign a project role,
//! and the new key really works with the roles it was given.

mod cli_common;

use cli_common::{Cli, Server};

#[tokio::test]
async fn api_keys_through_the_cli() {
    let s = Server::start();
    let owner = Cli::for_server(&s);
    let api = s.client();

    let project = owner.run(&["projects", "create", "shared"]).ok().json()["id"].as_str().unwrap().to_owned();

    let key = owner.run(&["api-keys", "create", "--desc", "reader", "--role", "ORG_MEMBER"]).ok().json();
    let key_id = key["id"].as_str().unwrap().to_owned();
    let public = key["publicKey"].as_str().unwrap().to_owned();
    let private = key["privateKey"].as_str().unwrap().to_owned();
    assert!(!private.is_empty());

    // The server holds it; list and describe show it (never the private key again).
    let held = api.get(&format!("/api/atlas/v2/orgs/{}/apiKeys/{key_id}", s.org_id())).await.json();
    assert_eq!(held["desc"], "reader");
    let described = owner.run(&["api-keys", "describe", &key_id]).ok().json();
    assert_eq!(described, held);
    let list = owner.run(&["api-keys", "list"]).ok();
    assert!(list.stdout.contains(&public) && !list.stdout.contains(&private));
    let table = owner.run(&["api-keys", "list", "-o", "table"]).ok().stdout;
    assert!(table.contains("reader") && table.contains("ORG_MEMBER"), "{table}");

    // The new key sees no project until it is assigned one.
    let reader =
        Cli::bare().with("ATREST_URL", &s.url).with("ATREST_PUBLIC_KEY", &public).with("ATREST_PRIVATE_KEY", &private);
    assert_eq!(reader.run(&["projects", "list"]).ok().json()["totalCount"], 0);

    let assigned =
        owner.run(&["api-keys", "assign", &key_id, "--project", &project, "--role", "GROUP_READ_ONLY"]).ok().json();
    let roles = assigned["roles"].to_string();
    assert!(roles.contains("GROUP_READ_ONLY"), "{roles}");
    let visible = reader.run(&["projects", "list"]).ok().json();
    assert_eq!(visible["totalCount"], 1);
    assert_eq!(visible["results"][0]["id"], project.as_str());

    // Read-only cannot delete the project: 403 is an API error (exit 1), not an auth failure.
    let denied = reader.run(&["projects", "delete", &project]);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert!(denied.stderr.contains("(403)"), "{}", denied.stderr);

    // Delete the key: its credentials stop working (exit 4).
    owner.run(&["api-keys", "delete", &key_id]).ok();
    let refused = reader.run(&["projects", "list"]);
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    let gone = owner.run(&["api-keys", "describe", &key_id]);
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.contains("(404)"), "{}", gone.stderr);

    // A role is required (clap usage error).
    assert_eq!(owner.run(&["api-keys", "create", "--desc", "x"]).code, 2);
}
