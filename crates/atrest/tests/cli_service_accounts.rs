//! `atrest service-accounts`: create (secret shown once), invite to a project, and the CLI itself
//! working as the service account (client id and secret: OAuth token, bearer calls).

mod cli_common;

use cli_common::{Cli, Server};

#[tokio::test]
async fn service_accounts_through_the_cli() {
    let s = Server::start();
    let owner = Cli::for_server(&s);
    let project = owner.run(&["projects", "create", "sa-cli"]).ok().json()["id"].as_str().unwrap().to_owned();

    let made = owner
        .run(&["service-accounts", "create", "--name", "ci", "--description", "Deploys", "--role", "ORG_MEMBER"])
        .ok()
        .json();
    let client_id = made["clientId"].as_str().unwrap().to_owned();
    let secret = made["secrets"][0]["secret"].as_str().unwrap().to_owned();
    let listed = owner.run(&["service-accounts", "list"]).ok();
    assert!(listed.stdout.contains(&client_id) && !listed.stdout.contains(&secret), "{}", listed.stdout);

    // The CLI as the service account: its client id and secret in place of the key pair.
    let sa = Cli::bare()
        .with("ATREST_URL", &s.url)
        .with("ATREST_PUBLIC_KEY", &client_id)
        .with("ATREST_PRIVATE_KEY", &secret);
    assert_eq!(sa.run(&["projects", "list"]).ok().json()["totalCount"], 0);
    let invited = owner
        .run(&["service-accounts", "invite", &client_id, "--project", &project, "--role", "GROUP_READ_ONLY"])
        .ok()
        .json();
    assert_eq!(invited["roles"], serde_json::json!(["GROUP_READ_ONLY"]));
    let seen = sa.run(&["projects", "list"]).ok().json();
    assert_eq!(seen["totalCount"], 1, "{seen}");
    let ear = sa.run(&["encryption-at-rest", "describe", "--project", &project]).ok().json();
    assert_eq!(ear["awsKms"]["enabled"], false, "{ear}");
    let refused = sa.run(&["projects", "delete", &project]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("ACCESS_FORBIDDEN"), "{}", refused.stderr);

    // A wrong secret is an authentication failure (exit 4), in words.
    let wrong = Cli::bare()
        .with("ATREST_URL", &s.url)
        .with("ATREST_PUBLIC_KEY", &client_id)
        .with("ATREST_PRIVATE_KEY", "mdb_sa_sk_x");
    let out = wrong.run(&["projects", "list"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("client id and secret"), "{}", out.stderr);

    // Secrets: a second one, then the first deleted; the account deleted ends its access.
    let second = owner.run(&["service-accounts", "create-secret", &client_id]).ok().json();
    assert!(second["secret"].as_str().unwrap().starts_with("mdb_sa_sk_"));
    let first_id = made["secrets"][0]["id"].as_str().unwrap();
    owner.run(&["service-accounts", "delete-secret", &client_id, first_id]).ok();
    assert_eq!(sa.run(&["projects", "list"]).code, 4, "the deleted secret gets no token");
    owner.run(&["service-accounts", "delete", &client_id]).ok();
    assert_eq!(owner.run(&["service-accounts", "list"]).ok().json()["totalCount"], 0);
}
