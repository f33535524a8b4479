//! The whole product story through the real `atrest` CLI binary against the real server:
//! cloud provider access → customer key and role → authorize → encryption at rest with the key
//! → private networking with private endpoints → a cluster with customer keys → documents in and
//! out → events; the refusals on the way (exit 1 with the Atlas errorCode); then switching it all
//! off in the right order. Every step asserts the exit code and the parsed `-o json` output.

mod cli_common;

use cli_common::{Cli, Out, Server};
use serde_json::Value;

const FAST: &[&str] = &["--key-check-interval", "1s", "--reconcile-interval", "200ms", "--aws-endpoint-ready", "300ms"];

/// The IAM actions the product page's access policy grants.
const PAGE_ACTIONS: &[&str] = &["kms:Decrypt", "kms:Encrypt", "kms:DescribeKey"];

/// Short waits for a fast server.
const WAIT: &[&str] = &["--wait", "--timeout", "60", "--poll-interval", "0.2"];

fn with(args: &[&str], extra: &[&str]) -> Vec<String> {
    cat(&[args, extra])
}

fn cat(parts: &[&[&str]]) -> Vec<String> {
    parts.iter().flat_map(|p| p.iter()).map(|s| s.to_string()).collect()
}

fn run(cli: &Cli, args: Vec<String>) -> Out {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    cli.run(&refs)
}

/// Every JSON value on stdout (a command that shows several entities prints one after another).
fn json_stream(out: &Out) -> Vec<Value> {
    serde_json::Deserializer::from_str(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stdout is not a JSON stream ({e}):\n{}\nstderr: {}", out.stdout, out.stderr))
}

/// An API refusal: exit 1 and `Error: <code> (<status>): ...` on stderr.
#[track_caller]
fn refused(out: &Out, code: &str, status: u16) {
    assert_eq!(out.code, 1, "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    assert!(out.stderr.contains(&format!("Error: {code} ({status}): ")), "{}", out.stderr);
    assert!(out.stdout.trim().is_empty(), "nothing on stdout after a refusal: {}", out.stdout);
}

fn endpoints(cli: &Cli) -> Vec<Value> {
    let list = cli.run(&["private-endpoints", "list", "-o", "json"]).ok().json();
    list["results"].as_array().unwrap_or_else(|| panic!("{list}")).clone()
}

#[tokio::test]
async fn customer_keys_story_through_the_cli() {
    let s = Server::start_with(FAST);
    let api = s.client();
    let owner = Cli::for_server(&s);
    let project =
        owner.run(&["projects", "create", "story", "-o", "json"]).ok().json()["id"].as_str().unwrap().to_owned();
    let cli = owner.with("ATREST_PROJECT_ID", &project);

    // 1. The Atlas side of the IAM role.
    let role = cli.run(&["cloud-provider-access", "create", "-o", "json"]).ok().json();
    let role_id = role["roleId"].as_str().unwrap().to_owned();
    let atlas_arn = role["atlasAWSAccountArn"].as_str().unwrap().to_owned();
    let external_id = role["atlasAssumedRoleExternalId"].as_str().unwrap().to_owned();

    // 2. The customer side: a key, and a role trusting atrest's principal with the external id.
    let customer = s.customer();
    let (key_id, key_arn) = customer.create_key().await;
    let role_arn = customer.create_atlas_role("atlas-story", &atlas_arn, &external_id, &key_arn, PAGE_ACTIONS).await;

    // 3. Authorize the role.
    let authorized =
        cli.run(&["cloud-provider-access", "authorize", &role_id, "--role-arn", &role_arn, "-o", "json"]).ok().json();
    assert_eq!(authorized["roleId"], role_id.as_str());
    assert_eq!(authorized["iamAssumedRoleArn"], role_arn.as_str());
    assert!(authorized["authorizedDate"].is_string(), "{authorized}");
    let described = cli.run(&["cloud-provider-access", "describe", &role_id, "-o", "json"]).ok().json();
    assert_eq!(described["iamAssumedRoleArn"], role_arn.as_str());

    // 4. Enable encryption at rest with the key: the server proved it can use it.
    let ear = cli
        .run(&[
            "encryption-at-rest",
            "update",
            "--enabled",
            "--key-id",
            &key_id,
            "--region",
            "US_EAST_1",
            "--role-id",
            &role_id,
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(ear["awsKms"]["enabled"], true, "{ear}");
    assert_eq!(ear["awsKms"]["valid"], true, "{ear}");
    assert_eq!(ear["awsKms"]["customerMasterKeyID"], key_id.as_str());
    assert_eq!(ear["awsKms"]["region"], "US_EAST_1");
    assert_eq!(ear["awsKms"]["roleId"], role_id.as_str());
    let v = cli.run(&["encryption-at-rest", "validate", "-o", "json"]).ok().json();
    assert_eq!((v["awsKms"]["enabled"].clone(), v["awsKms"]["valid"].clone()), (Value::Bool(true), Value::Bool(true)));

    // 5. Private networking, then endpoints in two regions, waited for.
    let ear =
        cli.run(&["encryption-at-rest", "update", "--require-private-networking", "true", "-o", "json"]).ok().json();
    assert_eq!(ear["awsKms"]["requirePrivateNetworking"], true, "{ear}");
    assert_eq!(ear["awsKms"]["enabled"], true, "{ear}");
    let create = ["private-endpoints", "create", "--region", "US_EAST_1", "--region", "us-west-2", "-o", "json"];
    let created = run(&cli, with(&create, WAIT)).ok();
    let created = json_stream(&created);
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(created[0]["regionName"], "US_EAST_1");
    assert_eq!(created[1]["regionName"], "US_WEST_2", "us-west-2 is sent as US_WEST_2");
    for e in &created {
        assert_eq!(e["status"], "ACTIVE", "--wait returns once settled: {e}");
    }
    let ids: Vec<String> = created.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();

    let listed = endpoints(&cli);
    assert_eq!(listed.len(), 2, "{listed:?}");
    for e in &listed {
        assert_eq!(e["status"], "ACTIVE", "{e}");
        assert!(ids.contains(&e["id"].as_str().unwrap().to_owned()), "{e}");
    }
    let table = cli.run(&["private-endpoints", "list", "-o", "table"]).ok().stdout;
    assert!(table.contains("US_WEST_2") && table.contains("ACTIVE") && table.contains(&ids[0]), "{table}");
    let one = cli.run(&["private-endpoints", "describe", &ids[0], "-o", "json"]).ok().json();
    assert_eq!(one["id"], ids[0].as_str());
    assert_eq!(one["regionName"], "US_EAST_1");
    assert_eq!(one["status"], "ACTIVE");
    let raw =
        api.get(&format!("/api/atlas/v2/groups/{project}/encryptionAtRest/AWS/privateEndpoints/{}", ids[0])).await;
    assert_eq!(raw.json(), one, "the CLI printed what the server holds");
    // Nothing in progress: watch returns at once with the settled list.
    let watched = cli.run(&["private-endpoints", "watch", "--timeout", "10", "-o", "json"]).ok();
    assert_eq!(watched.json()["results"].as_array().unwrap().len(), 2);
    assert!(watched.stderr.contains("private endpoints: settled: "), "{}", watched.stderr);

    // 6. A cluster with customer keys, waited for.
    let cluster = run(
        &cli,
        with(
            &[
                "clusters",
                "create",
                "orders",
                "--region",
                "US_EAST_1",
                "--instance-size",
                "M10",
                "--customer-keys",
                "-o",
                "json",
            ],
            WAIT,
        ),
    )
    .ok()
    .json();
    assert_eq!(cluster["name"], "orders");
    assert_eq!(cluster["stateName"], "IDLE", "{cluster}");
    assert_eq!(cluster["encryptionAtRestProvider"], "AWS", "{cluster}");
    let list = cli.run(&["clusters", "list", "-o", "json"]).ok().json();
    let results = list["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{list}");
    assert_eq!(results[0]["name"], "orders");
    assert_eq!(results[0]["stateName"], "IDLE");
    assert_eq!(results[0]["encryptionAtRestProvider"], "AWS");
    let d = cli.run(&["clusters", "describe", "orders", "-o", "json"]).ok().json();
    assert_eq!(d["stateName"], "IDLE");
    assert_eq!(d["encryptionAtRestProvider"], "AWS");
    let rc = &d["replicationSpecs"][0]["regionConfigs"][0];
    assert_eq!(rc["regionName"], "US_EAST_1", "{d}");
    assert_eq!(rc["electableSpecs"]["instanceSize"], "M10", "{d}");
    let t = cli.run(&["clusters", "describe", "orders", "-o", "table"]).ok().stdout;
    assert!(t.contains("IDLE") && t.contains("AWS") && t.contains("M10"), "{t}");
    let st = cli.run(&["clusters", "encryption-status", "orders", "-o", "json"]).ok().json();
    assert_eq!(
        (st["encryptionAtRestProvider"].as_str(), st["dataAccessible"].as_bool()),
        (Some("AWS"), Some(true)),
        "{st}"
    );
    let rot = cli.run(&["clusters", "rotate-master-key", "orders", "-o", "json"]).ok().json();
    assert!(rot["masterKeyVersion"].as_u64().is_some_and(|v| v >= 2), "{rot}");

    // 7. Documents in and out.
    let target = ["--cluster", "orders", "--db", "shop", "--collection", "items"];
    let ins = run(&cli, cat(&[&["data", "insert"], &target, &[r#"{"sku":"a1","qty":3}"#, "-o", "json"]])).ok().json();
    assert!(ins["insertedId"].is_string() || ins["insertedId"].is_object(), "{ins}");
    let many = cli
        .run_stdin(
            &["data", "insert", "--cluster", "orders", "--db", "shop", "--collection", "items", "-o", "json"],
            Some("{\"sku\":\"b2\",\"qty\":1}\n{\"sku\":\"c3\",\"qty\":7}\n"),
        )
        .ok()
        .json();
    assert_eq!(many["insertedIds"].as_array().map(Vec::len), Some(2), "{many}");
    let all = run(&cli, cat(&[&["data", "find"], &target, &["-o", "json"]])).ok().json();
    let docs = all["documents"].as_array().unwrap_or_else(|| panic!("{all}"));
    let mut skus: Vec<&str> = docs.iter().map(|d| d["sku"].as_str().unwrap()).collect();
    skus.sort();
    assert_eq!(skus, ["a1", "b2", "c3"]);
    let found =
        run(&cli, cat(&[&["data", "find"], &target, &["--filter", r#"{"sku":"a1"}"#, "-o", "json"]])).ok().json();
    let docs = found["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 1, "{found}");
    assert_eq!((docs[0]["sku"].clone(), docs[0]["qty"].clone()), (Value::from("a1"), Value::from(3)));
    let one = run(&cli, cat(&[&["data", "find"], &target, &["--one", "--filter", r#"{"sku":"c3"}"#, "-o", "json"]]))
        .ok()
        .json();
    assert_eq!(one["document"]["qty"], 7, "{one}");

    // A new instance size: the CLI sends the cluster's topology back with the size changed.
    let c =
        run(&cli, with(&["clusters", "update", "orders", "--instance-size", "M20", "-o", "json"], WAIT)).ok().json();
    assert_eq!(c["stateName"], "IDLE", "{c}");
    assert_eq!(c["replicationSpecs"][0]["regionConfigs"][0]["electableSpecs"]["instanceSize"], "M20", "{c}");
    assert_eq!(c["replicationSpecs"][0]["regionConfigs"][0]["electableSpecs"]["nodeCount"], 3, "{c}");
    assert_eq!(c["encryptionAtRestProvider"], "AWS", "{c}");

    // 8. Events: non-empty, and what the server holds.
    let events = cli.run(&["events", "list", "--limit", "500", "-o", "json"]).ok().json();
    let names: Vec<&str> =
        events["results"].as_array().unwrap().iter().filter_map(|e| e["eventTypeName"].as_str()).collect();
    assert!(!names.is_empty(), "{events}");
    assert_eq!(names.len(), s.events(&project).await.len());
    // A short table says how to see more, and the flags it names work.
    let t = cli.run(&["events", "list", "--limit", "1", "-o", "table"]).ok().stdout;
    let hint = format!("(1 of {} shown; use --page / --items-per-page for more)", names.len());
    assert!(t.contains(&hint), "{t}");
    let page2 = cli.run(&["events", "list", "--items-per-page", "1", "--page", "2", "-o", "json"]).ok().json();
    assert_eq!(page2["results"].as_array().unwrap().len(), 1, "{page2}");
    assert_eq!(page2["results"][0], events["results"][1]);

    // 9. Refusals, each with its Atlas error code and exit 1.
    let r = cli.run(&["encryption-at-rest", "update", "--disable", "-o", "json"]);
    refused(&r, "CANNOT_DISABLE_ENCRYPTION_AT_REST_REQUIRE_PRIVATE_NETWORKING_WHILE_PRIVATE_ENDPOINTS_EXIST", 409);
    let r = cli.run(&[
        "clusters",
        "create",
        "tiny",
        "--region",
        "US_EAST_1",
        "--instance-size",
        "M0",
        "--customer-keys",
        "-o",
        "json",
    ]);
    refused(&r, "CANNOT_USE_ENCRYPTION_AT_REST_TENANT", 400);
    let r = cli.run(&["clusters", "describe", "tiny", "-o", "json"]);
    assert_eq!(r.code, 1, "the refused cluster was not created: {}", r.stdout);
    let ear = cli.run(&["encryption-at-rest", "describe", "-o", "json"]).ok().json();
    assert_eq!(ear["awsKms"]["enabled"], true, "a refused update changed nothing: {ear}");

    // 10. Switching off, in the right order.
    for id in &ids {
        let out = run(&cli, with(&["private-endpoints", "delete", id, "-o", "json"], WAIT)).ok();
        assert!(out.stderr.contains(&format!("private endpoint {id}: deleted")), "{}", out.stderr);
    }
    assert!(endpoints(&cli).is_empty());
    let r = cli.run(&["private-endpoints", "describe", &ids[0], "-o", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let ear =
        cli.run(&["encryption-at-rest", "update", "--require-private-networking", "false", "-o", "json"]).ok().json();
    assert_eq!(ear["awsKms"]["requirePrivateNetworking"], false, "{ear}");
    let c =
        run(&cli, with(&["clusters", "update", "orders", "--customer-keys", "false", "-o", "json"], WAIT)).ok().json();
    assert_eq!(c["stateName"], "IDLE", "{c}");
    assert_eq!(c["encryptionAtRestProvider"], "NONE", "{c}");
    // The documents survived the switch to atrest's own keys.
    let all = run(&cli, cat(&[&["data", "find"], &target, &["-o", "json"]])).ok().json();
    assert_eq!(all["documents"].as_array().unwrap().len(), 3, "{all}");
    let ear = cli.run(&["encryption-at-rest", "update", "--disable", "-o", "json"]).ok().json();
    assert_eq!(ear["awsKms"]["enabled"], false, "{ear}");
    let v = cli.run(&["encryption-at-rest", "validate", "-o", "json"]);
    assert_eq!(v.code, 1, "validate of a disabled configuration: {}", v.stderr);
    let out = run(&cli, with(&["clusters", "delete", "orders", "-o", "json"], WAIT)).ok();
    assert!(out.stderr.contains("cluster orders: deleted"), "{}", out.stderr);
    assert_eq!(cli.run(&["clusters", "list", "-o", "json"]).ok().json()["results"], serde_json::json!([]));
    cli.run(&["cloud-provider-access", "deauthorize", &role_id]).ok();
    let roles = cli.run(&["cloud-provider-access", "list", "-o", "json"]).ok().json();
    assert_eq!(roles["awsIamRoles"], serde_json::json!([]));
}

/// `private-endpoints watch` follows endpoints created without --wait until they settle, and
/// `create` without --wait returns them INITIATING.
#[tokio::test]
async fn private_endpoints_watch_until_settled() {
    let s = Server::start_with(FAST);
    let cmk = s.enable_cmk("watch").await;
    let cli = Cli::for_server(&s).with("ATREST_PROJECT_ID", &cmk.g);
    cli.run(&["encryption-at-rest", "update", "--require-private-networking", "true"]).ok();

    let created =
        cli.run(&["private-endpoints", "create", "--region", "US_EAST_1", "--region", "EU_WEST_1", "-o", "json"]).ok();
    let created = json_stream(&created);
    assert_eq!(created.len(), 2);
    for e in &created {
        assert_eq!(e["status"], "INITIATING", "{e}");
    }
    let w = cli.run(&["private-endpoints", "watch", "--timeout", "60", "--poll-interval", "0.1", "-o", "json"]).ok();
    let results = w.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 2);
    for e in &results {
        assert_eq!(e["status"], "ACTIVE", "{e}");
    }
    assert!(w.stderr.contains("INITIATING"), "progress lines show the pending status: {}", w.stderr);
    assert!(w.stderr.contains("settled: "), "{}", w.stderr);

    // A delete without --wait: watch waits for DELETING to be gone.
    let id = results[0]["id"].as_str().unwrap();
    cli.run(&["private-endpoints", "delete", id]).ok();
    let w = cli.run(&["private-endpoints", "watch", "--timeout", "60", "--poll-interval", "0.1", "-o", "json"]).ok();
    let results = w.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_ne!(results[0]["id"], id);

    // Still pending at --timeout: exit 5.
    cli.run(&["private-endpoints", "create", "--region", "US_WEST_2"]).ok();
    let w = cli.run(&["private-endpoints", "watch", "--timeout", "0", "-o", "json"]);
    assert_eq!(w.code, 5, "{}", w.stderr);
    assert!(w.stderr.contains("INITIATING"), "{}", w.stderr);
}

/// `cloud-provider-access authorize --wait` retries CANNOT_ASSUME_ROLE while a new trust policy
/// propagates (the embedded IAM's `--aws-iam-propagation-secs`), then prints the authorized role.
#[tokio::test]
async fn authorize_waits_for_iam_propagation() {
    let s = Server::start_with(&["--aws-iam-propagation-secs", "2"]);
    let owner = Cli::for_server(&s);
    let project =
        owner.run(&["projects", "create", "iam", "-o", "json"]).ok().json()["id"].as_str().unwrap().to_owned();
    let cli = owner.with("ATREST_PROJECT_ID", &project);
    let role = cli.run(&["cloud-provider-access", "create", "-o", "json"]).ok().json();
    let role_id = role["roleId"].as_str().unwrap().to_owned();
    let customer = s.customer();
    let (_, key_arn) = customer.create_key().await;
    let role_arn = customer
        .create_atlas_role(
            "atlas-slow",
            role["atlasAWSAccountArn"].as_str().unwrap(),
            role["atlasAssumedRoleExternalId"].as_str().unwrap(),
            &key_arn,
            PAGE_ACTIONS,
        )
        .await;

    let at_once = cli.run(&["cloud-provider-access", "authorize", &role_id, "--role-arn", &role_arn]);
    refused(&at_once, "CANNOT_ASSUME_ROLE", 400);
    let waited =
        run(&cli, with(&["cloud-provider-access", "authorize", &role_id, "--role-arn", &role_arn, "-o", "json"], WAIT))
            .ok();
    assert!(waited.stderr.contains("CANNOT_ASSUME_ROLE, retrying"), "{}", waited.stderr);
    assert!(waited.stderr.contains("authorized"), "{}", waited.stderr);
    let v = waited.json();
    assert_eq!(v["roleId"], role_id.as_str());
    assert_eq!(v["iamAssumedRoleArn"], role_arn.as_str());
    assert!(v["authorizedDate"].is_string(), "{v}");
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    let cli = Cli::bare();
    for sh in ["bash", "zsh", "fish"] {
        let out = cli.run(&["completions", sh]).ok();
        assert!(out.stdout.len() > 1000, "{sh}: {}", out.stdout);
        for word in ["private-endpoints", "encryption-at-rest", "clusters", "cloud-provider-access"] {
            assert!(out.stdout.contains(word), "{sh} completion lacks {word}");
        }
    }
    let bad = cli.run(&["completions", "tcsh"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stdout.is_empty());
}
