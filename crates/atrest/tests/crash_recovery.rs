//! `kill -9` at random points of every flow that changes state, then a restart on the same data
//! directory: nothing acknowledged is lost, no key is lost, every document stays readable, and
//! AWS holds no duplicate resources.
//!
//! Each flow runs `ATREST_CRASH_KILLS` kills (default 8; RELIABILITY.md records a run of 50),
//! each at a delay drawn from `ATREST_CRASH_SEED` (printed, so a failure can be replayed) over a
//! window covering the flow's work, foreground and background.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{cluster_body, wait_until, Client, Resp, Server, V2024};
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const FAST: &[&str] = &["--key-check-interval", "1s", "--reconcile-interval", "200ms", "--aws-endpoint-ready", "300ms"];

fn kills() -> usize {
    std::env::var("ATREST_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(8)
}

/// The random delays of one flow, reproducible from the seed.
struct Chaos {
    rng: rand::rngs::StdRng,
    flow: &'static str,
    kills: usize,
    acknowledged: usize,
}

impl Chaos {
    fn new(flow: &'static str) -> Chaos {
        let seed = std::env::var("ATREST_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20260101u64);
        let salt: u64 = flow.bytes().map(u64::from).sum();
        eprintln!("crash flow {flow}: seed {seed}");
        Chaos { rng: rand::rngs::StdRng::seed_from_u64(seed ^ salt), flow, kills: 0, acknowledged: 0 }
    }

    fn delay(&mut self, window_ms: u64) -> Duration {
        Duration::from_millis(self.rng.gen_range(0..=window_ms))
    }

    /// Sends the request, kills the server after a random delay, restarts it; returns the new
    /// server and the response if one arrived before the kill (i.e. the change was acknowledged).
    async fn kill_during(
        &mut self,
        s: Server,
        c: &Client,
        method: Method,
        path: &str,
        body: Option<Value>,
        window_ms: u64,
    ) -> (Server, Option<Resp>) {
        let (c2, p2) = (c.clone(), path.to_owned());
        let call = tokio::spawn(async move { c2.try_request(method, &p2, body.as_ref()).await });
        tokio::time::sleep(self.delay(window_ms)).await;
        let s = s.restart_with(FAST);
        let resp = call.await.unwrap();
        self.kills += 1;
        if resp.as_ref().is_some_and(|r| r.status.is_success()) {
            self.acknowledged += 1;
        }
        (s, resp)
    }

    /// A kill at a random point of background work (no request in flight).
    async fn kill_after(&mut self, s: Server, window_ms: u64) -> Server {
        tokio::time::sleep(self.delay(window_ms)).await;
        self.kills += 1;
        s.restart_with(FAST)
    }

    fn report(&self) {
        eprintln!("crash flow {}: {} kills, {} acknowledged changes, 0 lost", self.flow, self.kills, self.acknowledged);
    }
}

fn ok(r: &Resp) -> bool {
    r.status.is_success()
}

#[tokio::test]
async fn kill_9_during_authorize_and_encryption_at_rest_patches() {
    let mut s = Server::start_with(FAST);
    let cmk = s.enable_cmk("crash-ear").await;
    let g = cmk.g.clone();
    let customer = s.customer();
    let (second_id, second_arn) = customer.create_key().await;
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": common::PAGE_ACTIONS, "Resource": [cmk.key_arn, second_arn]}]});
    customer
        .iam
        .put_role_policy()
        .role_name(&cmk.role_name)
        .policy_name("atlas-kms-access")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();

    // Authorize: a fresh Atlas role and IAM role each time, PATCHed under a kill.
    let mut authorize = Chaos::new("authorize");
    for i in 0..kills() {
        let c = s.client();
        // The embedded AWS listens on a new port after each restart.
        let customer = s.customer();
        let role =
            c.post(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess"), &json!({"providerName": "AWS"})).await;
        assert_eq!(role.status, StatusCode::OK, "{}", role.text);
        let role = role.json();
        let role_id = role["roleId"].as_str().unwrap().to_owned();
        let arn = customer
            .create_atlas_role(
                &format!("crash-{i}"),
                role["atlasAWSAccountArn"].as_str().unwrap(),
                role["atlasAssumedRoleExternalId"].as_str().unwrap(),
                &cmk.key_arn,
                common::PAGE_ACTIONS,
            )
            .await;
        let path = format!("/api/atlas/v2/groups/{g}/cloudProviderAccess/{role_id}");
        let body = json!({"providerName": "AWS", "iamAssumedRoleArn": arn});
        let (next, resp) = authorize.kill_during(s, &c, Method::PATCH, &path, Some(body.clone()), 150).await;
        s = next;
        let c = s.client();
        let now = c.get(&path).await.json();
        if resp.as_ref().is_some_and(ok) {
            assert_eq!(now["iamAssumedRoleArn"], arn, "acknowledged authorization lost: {now}");
        }
        // Retrying is safe whatever happened.
        let r = c.patch(&path, &body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(c.get(&path).await.json()["iamAssumedRoleArn"], arn);
    }
    let roles = s.client().get(&format!("/api/atlas/v2/groups/{g}/cloudProviderAccess")).await.json();
    let ids: Vec<String> =
        roles["awsIamRoles"].as_array().unwrap().iter().map(|r| r["roleId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), kills() + 1, "roles duplicated or lost: {roles}");
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
    authorize.report();

    // PATCH encryptionAtRest: alternate the CMK; the stored configuration is the acknowledged
    // one, or (unacknowledged) one of the two, always valid.
    let mut patch = Chaos::new("patch encryptionAtRest");
    let keys = [cmk.key_id.clone(), second_id.clone()];
    let path = format!("/api/atlas/v2/groups/{g}/encryptionAtRest");
    for i in 0..kills() {
        let want = &keys[(i + 1) % 2];
        let c = s.client();
        let body = json!({"awsKms": {"customerMasterKeyID": want}});
        let (next, resp) = patch.kill_during(s, &c, Method::PATCH, &path, Some(body.clone()), 200).await;
        s = next;
        let now = s.client().get(&path).await.json();
        let stored = now["awsKms"]["customerMasterKeyID"].as_str().unwrap_or_default().to_owned();
        if resp.as_ref().is_some_and(ok) {
            assert_eq!(&stored, want, "acknowledged PATCH lost: {now}");
        } else {
            assert!(keys.contains(&stored), "torn configuration: {now}");
        }
        assert_eq!(now["awsKms"]["enabled"], true, "{now}");
        let r = s.client().patch(&path, &body).await;
        assert_eq!(r.json()["awsKms"]["valid"], true, "{}", r.text);
    }
    patch.report();
}

async fn endpoints(c: &Client, g: &str) -> Vec<Value> {
    let r = c.get(&format!("/api/atlas/v2/groups/{g}/encryptionAtRest/AWS/privateEndpoints")).await.json();
    r["results"].as_array().cloned().unwrap_or_default()
}

async fn settled(s: &Server, g: &str) -> Vec<Value> {
    let c = s.client();
    let (c2, g2) = (&c, g);
    wait_until("private endpoints settle", Duration::from_secs(30), || async move {
        endpoints(c2, g2).await.iter().all(|e| e["status"] == "ACTIVE")
    })
    .await;
    endpoints(&c, g).await
}

/// The VPC endpoints AWS has that are not deleted.
async fn live_vpc_endpoints(s: &Server) -> Vec<Value> {
    let aws = s.admin(Method::GET, "endpoints", None).await;
    aws["endpoints"].as_array().unwrap().iter().filter(|e| e["state"] != "deleted").cloned().collect()
}

#[tokio::test]
async fn kill_9_during_private_endpoint_create_and_delete() {
    let mut s = Server::start_with(FAST);
    let cmk = s.enable_cmk("crash-pe").await;
    let g = cmk.g.clone();
    let r = s
        .client()
        .patch(
            &format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
            &json!({"awsKms": {"requirePrivateNetworking": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let pes = format!("/api/atlas/v2/groups/{g}/encryptionAtRest/AWS/privateEndpoints");
    let mut chaos = Chaos::new("private endpoint create/delete");
    for _ in 0..kills() {
        // Create under a kill, and kill again while the reconciler provisions it.
        let c = s.client();
        let (next, resp) =
            chaos.kill_during(s, &c, Method::POST, &pes, Some(json!({"regionName": "US_EAST_1"})), 100).await;
        s = chaos.kill_after(next, 400).await;
        let now = settled(&s, &g).await;
        let acked_id = resp.filter(ok).map(|r| r.json()["id"].as_str().unwrap().to_owned());
        if let Some(id) = &acked_id {
            assert!(now.iter().any(|e| e["id"] == id.as_str()), "acknowledged endpoint {id} lost: {now:?}");
        }
        assert!(now.len() <= 1, "duplicate endpoints for one region: {now:?}");
        let live = live_vpc_endpoints(&s).await;
        assert_eq!(live.len(), now.len(), "AWS endpoints {live:?} vs atrest {now:?}");

        // Delete under a kill.
        if let Some(e) = now.first() {
            let c = s.client();
            let path = format!("{pes}/{}", e["id"].as_str().unwrap());
            let (next, resp) = chaos.kill_during(s, &c, Method::DELETE, &path, None, 100).await;
            s = next;
            let c = s.client();
            if resp.as_ref().is_some_and(ok) {
                let (c2, p2) = (&c, path.as_str());
                wait_until("acknowledged delete finishes", Duration::from_secs(30), || async move {
                    c2.get(p2).await.status == StatusCode::NOT_FOUND
                })
                .await;
            } else {
                let _ = c.delete(&path).await;
                let (c2, p2) = (&c, path.as_str());
                wait_until("retried delete finishes", Duration::from_secs(30), || async move {
                    c2.get(p2).await.status == StatusCode::NOT_FOUND
                })
                .await;
            }
        }
        let (s2, g2) = (&s, g.as_str());
        wait_until("AWS endpoints deleted", Duration::from_secs(30), || async move {
            live_vpc_endpoints(s2).await.is_empty() && endpoints(&s2.client(), g2).await.is_empty()
        })
        .await;
    }
    chaos.report();
}

async fn cluster(c: &Client, g: &str, name: &str) -> Resp {
    c.clone().with_accept(V2024).get(&format!("/api/atlas/v2/groups/{g}/clusters/{name}")).await
}

async fn wait_idle(c: &Client, g: &str, name: &str, provider: &str) {
    wait_until(&format!("{name} IDLE with {provider}"), Duration::from_secs(60), || async move {
        let st = c
            .clone()
            .with_accept("application/json")
            .get(&format!("/api/atrest/v1/groups/{g}/clusters/{name}/encryption"))
            .await;
        let st = st.json();
        st["stateName"] == "IDLE" && st["encryptionAtRestProvider"] == provider && st["dataAccessible"] == true
    })
    .await;
}

/// Every document ever acknowledged in `db`, by its `n`.
async fn documents(c: &Client, g: &str, name: &str, db: &str) -> BTreeSet<u64> {
    let r = c.data(g, name, "find", &json!({"database": db, "collection": "docs", "limit": 1000000})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["documents"].as_array().unwrap().iter().filter_map(|d| d["n"].as_u64()).collect()
}

#[tokio::test]
async fn kill_9_during_cluster_create() {
    let mut s = Server::start_with(FAST);
    let mut chaos = Chaos::new("cluster create");
    // (project, cluster name, provider); a project holds at most 25 clusters.
    let mut expected: Vec<(String, String, &str)> = Vec::new();
    let mut g = String::new();
    for i in 0..kills() {
        if i % 20 == 0 {
            g = s.enable_cmk(&format!("crash-create-{i}")).await.g;
        }
        let name = format!("created-{i}");
        let provider = if i % 2 == 0 { "AWS" } else { "NONE" };
        let c = s.client().with_accept(V2024);
        let body = cluster_body(&name, "M10", provider, &["US_EAST_1"]);
        let path = format!("/api/atlas/v2/groups/{g}/clusters");
        let (next, resp) = chaos.kill_during(s, &c, Method::POST, &path, Some(body.clone()), 300).await;
        s = chaos.kill_after(next, 300).await;
        let c = s.client();
        if resp.as_ref().is_some_and(ok) {
            assert_eq!(cluster(&c, &g, &name).await.status, StatusCode::OK, "acknowledged cluster {name} lost");
        } else if cluster(&c, &g, &name).await.status == StatusCode::NOT_FOUND {
            let r = c.clone().with_accept(V2024).post(&path, &body).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
        wait_idle(&c, &g, &name, provider).await;
        let r =
            c.data(&g, &name, "insertOne", &json!({"database": "d", "collection": "docs", "document": {"n": 1}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        expected.push((g.clone(), name, provider));
    }
    // Every cluster is there once, serves its documents, and survives another restart.
    let s = s.restart_with(FAST);
    let c = s.client();
    let projects: BTreeSet<&String> = expected.iter().map(|(g, _, _)| g).collect();
    for g in projects {
        let list = c.clone().with_accept(V2024).get(&format!("/api/atlas/v2/groups/{g}/clusters")).await.json();
        let names: Vec<String> =
            list["results"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect();
        let want: BTreeSet<String> = expected.iter().filter(|(p, _, _)| p == g).map(|(_, n, _)| n.clone()).collect();
        assert_eq!(names.iter().cloned().collect::<BTreeSet<_>>(), want, "{names:?}");
        assert_eq!(names.len(), want.len(), "duplicate clusters: {names:?}");
    }
    for (g, name, provider) in &expected {
        wait_idle(&c, g, name, provider).await;
        assert_eq!(documents(&c, g, name, "d").await, BTreeSet::from([1]), "{name}");
    }
    chaos.report();
}

#[tokio::test]
async fn kill_9_during_encryption_switch_rotation_and_writes() {
    let mut s = Server::start_with(FAST);
    let cmk = s.enable_cmk("crash-data").await;
    let g = cmk.g.clone();
    let name = "crashing";
    s.client().create_cluster(&g, &cluster_body(name, "M10", "NONE", &["US_EAST_1"])).await;
    let mut acked = BTreeSet::new();
    let mut next_n = 0u64;

    // Document writes: a stream of inserts, killed at random; every acknowledged one survives.
    let mut writes = Chaos::new("document writes");
    for _ in 0..kills() {
        let c = s.client();
        let (g2, start) = (g.clone(), next_n);
        let writer = tokio::spawn(async move {
            let mut done = Vec::new();
            for n in start..start + 10_000 {
                let body = json!({"database": "w", "collection": "docs", "document": {"n": n, "pad": "p".repeat(512)}});
                match c
                    .clone()
                    .with_accept("application/json")
                    .try_request(
                        Method::POST,
                        &format!("/data/v1/groups/{g2}/clusters/{name}/action/insertOne"),
                        Some(&body),
                    )
                    .await
                {
                    Some(r) if r.status == StatusCode::OK => done.push(n),
                    _ => break,
                }
            }
            done
        });
        s = writes.kill_after(s, 400).await;
        let done = writer.await.unwrap();
        writes.acknowledged += done.len();
        next_n += 10_000;
        acked.extend(done);
        let c = s.client();
        wait_idle(&c, &g, name, "NONE").await;
        let have = documents(&c, &g, name, "w").await;
        let lost: Vec<_> = acked.difference(&have).collect();
        assert!(lost.is_empty(), "acknowledged documents lost: {lost:?}");
    }
    writes.report();
    // Unacknowledged writes may or may not have landed; from here on the set must not change.
    let present = documents(&s.client(), &g, name, "w").await;

    // Encryption switch NONE <-> AWS, killed at random points of the re-encryption.
    let mut switch = Chaos::new("encryption switch");
    let mut provider = "NONE";
    for _ in 0..kills() {
        let target = if provider == "NONE" { "AWS" } else { "NONE" };
        let c = s.client().with_accept(V2024);
        let path = format!("/api/atlas/v2/groups/{g}/clusters/{name}");
        let body = json!({"encryptionAtRestProvider": target});
        let (next, resp) = switch.kill_during(s, &c, Method::PATCH, &path, Some(body.clone()), 600).await;
        s = next;
        let c = s.client();
        if !resp.as_ref().is_some_and(ok) {
            let now = cluster(&c, &g, name).await.json();
            if now["encryptionAtRestProvider"] != target {
                let r = c.clone().with_accept(V2024).patch(&path, &body).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            }
        }
        provider = target;
        wait_idle(&c, &g, name, provider).await;
        let have = documents(&c, &g, name, "w").await;
        assert_eq!(have, present, "documents lost or invented by the switch");
    }
    switch.report();

    // Master-key rotation on demand: the version only moves forward and every document stays readable.
    let mut rotation = Chaos::new("master key rotation");
    let mut last_version = 0u64;
    for _ in 0..kills() {
        let c = s.client().with_accept("application/json");
        let path = format!("/api/atrest/v1/groups/{g}/clusters/{name}/rotateMasterKey");
        let (next, resp) = rotation.kill_during(s, &c, Method::POST, &path, Some(json!({})), 150).await;
        s = next;
        if let Some(r) = resp.filter(ok) {
            last_version = r.json()["masterKeyVersion"].as_u64().unwrap();
        }
        let c = s.client();
        wait_idle(&c, &g, name, provider).await;
        assert_eq!(documents(&c, &g, name, "w").await, present, "documents unreadable after a rotation crash");
        let r = c.clone().with_accept("application/json").post(&path, &json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let v = r.json()["masterKeyVersion"].as_u64().unwrap();
        assert!(v > last_version, "master key version went back: {v} after {last_version}");
        last_version = v;
    }
    rotation.report();
}
