//! `atrest cloud-provider-access`, `encryption-at-rest describe|validate` and `events list`
//! against the real server: a role is created, shown, refused authorization (exit 1 with
//! CANNOT_ASSUME_ROLE; with --wait it keeps retrying until the timeout, exit 5), deauthorized.

mod cli_common;

use cli_common::{Cli, Server};

#[tokio::test]
async fn cloud_provider_access_roles_through_the_cli() {
    let s = Server::start();
    let api = s.client();
    let owner = Cli::for_server(&s);
    let project = owner.run(&["projects", "create", "kms"]).ok().json()["id"].as_str().unwrap().to_owned();
    let cli = owner.with("ATREST_PROJECT_ID", &project);

    let role = cli.run(&["cloud-provider-access", "create"]).ok().json();
    let role_id = role["roleId"].as_str().unwrap().to_owned();
    assert_eq!(role["providerName"], "AWS");
    assert!(role["atlasAssumedRoleExternalId"].as_str().is_some_and(|e| !e.is_empty()));
    let held = api.get(&format!("/api/atlas/v2/groups/{project}/cloudProviderAccess/{role_id}")).await;
    assert_eq!(held.json(), role, "the CLI printed what the server holds");
    assert_eq!(cli.run(&["cloud-provider-access", "describe", &role_id]).ok().json(), role);

    let list = cli.run(&["cloud-provider-access", "list"]).ok().json();
    assert_eq!(list["awsIamRoles"][0]["roleId"], role_id.as_str());
    let table = cli.run(&["cloud-provider-access", "list", "-o", "table"]).ok().stdout;
    assert!(table.contains(&role_id) && table.contains(role["atlasAWSAccountArn"].as_str().unwrap()), "{table}");

    // Nobody trusts this ARN: an API error, exit 1.
    let arn = "arn:aws:iam::123456789012:role/not-there";
    let refused = cli.run(&["cloud-provider-access", "authorize", &role_id, "--role-arn", arn]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("Error: CANNOT_ASSUME_ROLE (400): "), "{}", refused.stderr);
    // With --wait it is retried until the timeout: exit 5, progress lines on stderr.
    let waited = cli.run(&[
        "cloud-provider-access",
        "authorize",
        &role_id,
        "--role-arn",
        arn,
        "--wait",
        "--timeout",
        "1",
        "--poll-interval",
        "0.2",
    ]);
    assert_eq!(waited.code, 5, "{}", waited.stderr);
    assert!(waited.stderr.contains("CANNOT_ASSUME_ROLE"), "{}", waited.stderr);

    // Encryption at rest is off: describe shows it, validate exits 1.
    let ear = cli.run(&["encryption-at-rest", "describe"]).ok().json();
    assert_eq!(ear["awsKms"]["enabled"], false);
    let t = cli.run(&["encryption-at-rest", "describe", "-o", "table"]).ok().stdout;
    assert!(t.contains("AWS KMS ENABLED") && t.contains("false"), "{t}");
    let v = cli.run(&["encryption-at-rest", "validate"]);
    assert_eq!(v.code, 1, "{}", v.stderr);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&v.stdout).unwrap(), ear);

    // Deauthorize: gone from the list.
    cli.run(&["cloud-provider-access", "deauthorize", &role_id]).ok();
    let list = cli.run(&["cloud-provider-access", "list"]).ok().json();
    assert_eq!(list["awsIamRoles"], serde_json::json!([]));

    // The project's events, with --limit.
    let events = cli.run(&["events", "list", "--limit", "500"]).ok().json();
    assert!(events["results"].as_array().is_some(), "{events}");
    let raw = api.get(&format!("/api/atlas/v2/groups/{project}/events?itemsPerPage=500")).await;
    assert_eq!(events, raw.json());
    cli.run(&["events", "list", "-o", "table"]).ok();
    assert_eq!(cli.run(&["events", "list", "--limit", "501"]).code, 2);
}
