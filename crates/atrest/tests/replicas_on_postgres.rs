//! Three `atrest serve` replicas on one PostgreSQL database and one AWS, behind a "load balancer"
//! that picks a replica at random for every request, while replicas are killed (`kill -9`) and
//! restarted. Every reconcile step must happen once: one AWS endpoint per record, every cluster
//! IDLE, and no state change recorded twice in the events. A cluster's data plane follows its
//! lease: served through any replica, and taken over when the replica serving it dies.
//! Runs when `ATREST_TEST_DATABASE_URL` names a PostgreSQL server (`scripts/test` starts one).

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cluster_body, with_postgres, Client, Resp, Server, V2024};
use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const REPLICAS: usize = 3;
const PROJECTS: usize = 20;
/// Ten commercial regions (the official list starts with the two GovCloud ones).
const REGIONS: &[&str] = {
    let (_, rest) = atrest_core::regions::AWS_REGIONS.split_at(2);
    rest.split_at(10).0
};
const CLUSTERS: usize = 50;

/// `atrest aws serve`: the AWS every replica shares.
struct SharedAws {
    child: Child,
    url: String,
    credentials: PathBuf,
}

impl SharedAws {
    fn start(dir: &Path) -> SharedAws {
        let mut child = Command::new(env!("CARGO_BIN_EXE_atrest"))
            .args(["aws", "serve", "--aws-listen", "127.0.0.1:0", "--endpoint-ready-ms", "300", "--data-dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start atrest aws serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let info: Value = serde_json::from_str(&line).expect("atrest aws serve prints its URL as JSON");
        SharedAws {
            child,
            url: info["url"].as_str().unwrap().to_owned(),
            credentials: PathBuf::from(info["credentialsFile"].as_str().unwrap()),
        }
    }
}

impl Drop for SharedAws {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cluster {
    dir: PathBuf,
    database_url: String,
    aws: (String, PathBuf),
    replicas: Mutex<Vec<Option<Server>>>,
}

impl Cluster {
    /// One replica: its own random id (so a restart is a new replica and a dead one's clusters
    /// are taken over when its leases expire), the shared data directory, database and AWS.
    fn launch(&self) -> Server {
        let args: Vec<String> = [
            "--database-url",
            &self.database_url,
            "--aws",
            "real",
            "--aws-endpoint-url",
            &self.aws.0,
            "--lease-ttl",
            "2s",
            "--reconcile-interval",
            "300ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let env =
            [("AWS_SHARED_CREDENTIALS_FILE", self.aws.1.display().to_string()), ("AWS_PROFILE", "operator".to_owned())];
        let mut s = Server::launch(&self.dir, &args, &env, Some(self.database_url.clone()));
        s.aws = Some(self.aws.clone());
        s
    }

    /// A client of a random live replica, as a load balancer would pick.
    fn any(&self) -> Client {
        let replicas = self.replicas.lock().unwrap();
        let live: Vec<&Server> = replicas.iter().flatten().collect();
        live[rand::thread_rng().gen_range(0..live.len())].client()
    }

    /// Sends until a replica answers (a dead or dying one does not).
    async fn request(&self, method: Method, path: &str, body: Option<&Value>, accept: &str) -> Resp {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(r) = self.any().with_accept(accept).try_request(method.clone(), path, body).await {
                if r.status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                    return r;
                }
            }
            assert!(Instant::now() < deadline, "no replica answered {method} {path}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn kill(&self, i: usize) -> bool {
        let server = self.replicas.lock().unwrap()[i].take();
        match server {
            Some(mut s) => {
                s.kill9();
                true
            }
            None => false,
        }
    }

    fn revive_all(&self) {
        for i in 0..REPLICAS {
            if self.replicas.lock().unwrap()[i].is_none() {
                let s = self.launch();
                self.replicas.lock().unwrap()[i] = Some(s);
            }
        }
    }

    fn sql<T: Send + 'static>(&self, sql: &str, f: fn(&tokio_postgres::Row) -> T) -> Vec<T> {
        let sql = sql.to_owned();
        with_postgres(&self.database_url, move |c| {
            Box::pin(async move { c.query(&sql, &[]).await.unwrap().iter().map(f).collect() })
        })
    }
}

fn pes(g: &str) -> String {
    format!("/api/atlas/v2/groups/{g}/encryptionAtRest/AWS/privateEndpoints")
}

/// 202 (or 201), or 409: created by an earlier try whose answer was lost with its replica.
fn created(r: &Resp, what: &str) {
    assert!(
        r.status == StatusCode::ACCEPTED || r.status == StatusCode::CREATED || r.status == StatusCode::CONFLICT,
        "{what}: {} {}",
        r.status,
        r.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_under_kills_do_every_step_once() {
    if std::env::var("ATREST_TEST_DATABASE_URL").map_or(true, |u| u.is_empty()) {
        eprintln!("SKIPPED: set ATREST_TEST_DATABASE_URL (scripts/test and scripts/with-postgres do) to run it");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let aws = SharedAws::start(&tmp.path().join("aws"));
    let dir = tmp.path().join("shared");
    let database_url = common::database_url(&dir).unwrap();
    let lb = Arc::new(Cluster {
        dir,
        database_url,
        aws: (aws.url.clone(), aws.credentials.clone()),
        replicas: Mutex::new((0..REPLICAS).map(|_| None).collect()),
    });
    // The first replica bootstraps the organization; the others find it.
    lb.revive_all();

    // Projects with customer keys and private networking required, before the chaos starts.
    let mut groups = Vec::new();
    for p in 0..PROJECTS {
        // Taken out of the set for the setup (nothing is killed yet), so no lock is held across it.
        let s = lb.replicas.lock().unwrap()[p % REPLICAS].take().unwrap();
        let cmk = s.enable_cmk(&format!("p{p}")).await;
        let r = s
            .client()
            .patch(
                &format!("/api/atlas/v2/groups/{}/encryptionAtRest", cmk.g),
                &json!({"awsKms": {"requirePrivateNetworking": true}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        lb.replicas.lock().unwrap()[p % REPLICAS] = Some(s);
        groups.push(cmk.g);
    }

    // Clusters go in projects of their own (without private networking), 25 (the most) in each.
    let mut cluster_groups = Vec::new();
    for name in ["clusters-a", "clusters-b"] {
        let s = lb.replicas.lock().unwrap()[0].take().unwrap();
        let r = s.client().post("/api/atlas/v2/groups", &json!({"name": name, "orgId": s.org_id()})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        cluster_groups.push(r.json()["id"].as_str().unwrap().to_owned());
        lb.replicas.lock().unwrap()[0] = Some(s);
    }

    // A customer-key cluster, for a CMK change made through a replica that does not serve it.
    let s = lb.replicas.lock().unwrap()[1].take().unwrap();
    let keyed = s.enable_cmk("keyed").await;
    let customer = s.customer();
    let body = cluster_body("k0", "M10", "AWS", &["US_EAST_1"]);
    let r = s.client().with_accept(V2024).post(&format!("/api/atlas/v2/groups/{}/clusters", keyed.g), &body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    lb.replicas.lock().unwrap()[1] = Some(s);

    // Chaos: every ~1.5 s one replica is killed; it stays dead past its leases (2 s), then a new
    // one starts in its place.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let kills = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let chaos = {
        let (lb, stop, kills) = (lb.clone(), stop.clone(), kills.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let victim = rand::thread_rng().gen_range(0..REPLICAS);
                if lb.kill(victim) {
                    kills.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(2500)).await;
                let lb = lb.clone();
                tokio::task::spawn_blocking(move || lb.revive_all()).await.unwrap();
            }
        })
    };

    // 200 endpoints and 50 clusters, each request through a random replica.
    let mut work: Vec<(Method, String, Value, &str)> = Vec::new();
    for g in &groups {
        for region in REGIONS {
            work.push((Method::POST, pes(g), json!({"regionName": region}), common::V2));
        }
    }
    for c in 0..CLUSTERS {
        let g = &cluster_groups[c % cluster_groups.len()];
        let body = cluster_body(&format!("c{c}"), "M10", "NONE", &["US_EAST_1"]);
        work.push((Method::POST, format!("/api/atlas/v2/groups/{g}/clusters"), body, V2024));
    }
    rand::seq::SliceRandom::shuffle(work.as_mut_slice(), &mut rand::thread_rng());
    let work = Arc::new(Mutex::new(work));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (lb, work) = (lb.clone(), work.clone());
        senders.spawn(async move {
            loop {
                let Some((method, path, body, accept)) = work.lock().unwrap().pop() else { return };
                let r = lb.request(method, &path, Some(&body), accept).await;
                created(&r, &path);
            }
        });
    }
    while let Some(r) = senders.join_next().await {
        r.unwrap();
    }
    // A while longer under chaos, so that reconcile steps run through kills too.
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    chaos.await.unwrap();
    lb.revive_all();
    assert!(kills.load(std::sync::atomic::Ordering::SeqCst) >= 3, "the replicas were killed during the run");

    // Everything settles: 200 endpoints ACTIVE, 50 clusters IDLE, seen through any replica.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut active = 0;
        let mut idle = 0;
        for g in &groups {
            let r = lb.request(Method::GET, &format!("{}?itemsPerPage=500", pes(g)), None, common::V2).await.json();
            active += r["results"].as_array().unwrap().iter().filter(|e| e["status"] == "ACTIVE").count();
        }
        for g in &cluster_groups {
            let r = lb.request(Method::GET, &format!("/api/atlas/v2/groups/{g}/clusters"), None, V2024).await.json();
            idle += r["results"].as_array().unwrap().iter().filter(|c| c["stateName"] == "IDLE").count();
        }
        let keyed_path = format!("/api/atlas/v2/groups/{}/clusters/k0", keyed.g);
        let keyed_idle = lb.request(Method::GET, &keyed_path, None, V2024).await.json()["stateName"] == "IDLE";
        if active == PROJECTS * REGIONS.len() && idle == CLUSTERS && keyed_idle {
            break;
        }
        assert!(Instant::now() < deadline, "not settled: {active} endpoints ACTIVE, {idle} clusters IDLE");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Exactly one AWS endpoint per record, and no other.
    let records = lb.sql("SELECT status, aws_endpoint_id FROM private_endpoints", |r| {
        (r.get::<_, String>(0), r.get::<_, Option<String>>(1))
    });
    assert_eq!(records.len(), PROJECTS * REGIONS.len(), "one record per project and region");
    let recorded: HashSet<String> = records.iter().filter_map(|(_, id)| id.clone()).collect();
    assert_eq!(recorded.len(), records.len(), "every record has its own AWS endpoint");
    let listed = reqwest::get(format!("{}/_emulator/endpoints", aws.url)).await.unwrap().json::<Value>().await.unwrap();
    let in_aws: HashSet<String> = listed["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["state"] != "deleted")
        .map(|e| e["vpcEndpointId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(in_aws, recorded, "AWS holds exactly the recorded endpoints");

    // No reconcile step twice: each state change has exactly one event.
    let steps = lb.sql(
        "SELECT type, COALESCE(details::jsonb ->> 'endpointId', group_id || '/' || (details::jsonb ->> 'clusterName')),
                COALESCE(details::jsonb ->> 'from', ''), COALESCE(details::jsonb ->> 'to', '')
         FROM events WHERE type IN ('ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_CREATED',
             'ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_STATUS_CHANGED', 'CLUSTER_CREATED', 'CLUSTER_READY')",
        |r| (r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, String>(2), r.get::<_, String>(3)),
    );
    let mut counts: HashMap<(String, String, String, String), usize> = HashMap::new();
    for s in steps {
        *counts.entry(s).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "steps recorded more than once: {twice:?}");
    let of = |t: &str| counts.keys().filter(|k| k.0 == t).count();
    assert_eq!(of("ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_CREATED"), PROJECTS * REGIONS.len());
    let to_active = counts.keys().filter(|k| k.0.ends_with("STATUS_CHANGED") && k.3 == "ACTIVE").count();
    assert_eq!(to_active, PROJECTS * REGIONS.len(), "each endpoint became ACTIVE once");
    assert_eq!((of("CLUSTER_CREATED"), of("CLUSTER_READY")), (CLUSTERS + 1, CLUSTERS + 1));

    // The CMK changes through a replica that does not serve the cluster: the holder re-opens the
    // re-wrapped keyring, and after the old key is disabled and the holder killed, the replica
    // taking over opens the cluster with the new key alone.
    let data = |g: &str, action: &str| format!("/data/v1/groups/{g}/clusters/k0/action/{action}");
    let doc = json!({"database": "shop", "collection": "items", "document": {"sku": "k"}});
    let r = lb.request(Method::POST, &data(&keyed.g, "insertOne"), Some(&doc), "application/json").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let holder_of = |g: &str, name: &str| {
        let id = lb.sql(&format!("SELECT id FROM clusters WHERE group_id = '{g}' AND name = '{name}'"), |r| {
            r.get::<_, String>(0)
        });
        lb.sql(&format!("SELECT holder_url FROM leases WHERE name = 'cluster:{}'", id[0]), |r| r.get::<_, String>(0))[0]
            .clone()
    };
    let holder = holder_of(&keyed.g, "k0");
    let other = lb.replicas.lock().unwrap().iter().flatten().find(|s| s.url != holder).unwrap().client();
    let (new_key, new_arn) = customer.create_key().await;
    let access = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": common::PAGE_ACTIONS, "Resource": [keyed.key_arn, new_arn]}]});
    customer
        .iam
        .put_role_policy()
        .role_name(&keyed.role_name)
        .policy_name("atlas-kms-access")
        .policy_document(access.to_string())
        .send()
        .await
        .unwrap();
    let r = other
        .patch(
            &format!("/api/atlas/v2/groups/{}/encryptionAtRest", keyed.g),
            &json!({"awsKms": {"enabled": true, "customerMasterKeyID": new_key, "region": "US_EAST_1",
                               "roleId": keyed.role_id}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A new database makes the holder write the keyring: it must not write back the old wrapping.
    let fresh = json!({"database": "fresh", "collection": "items", "document": {"sku": "f"}});
    let r = lb.request(Method::POST, &data(&keyed.g, "insertOne"), Some(&fresh), "application/json").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    customer.disable_key(&keyed.key_id).await;
    let find_k = json!({"database": "shop", "collection": "items", "filter": {"sku": "k"}});
    let r = lb.request(Method::POST, &data(&keyed.g, "find"), Some(&find_k), "application/json").await;
    assert_eq!(r.json()["documents"].as_array().map(Vec::len), Some(1), "{}", r.text);
    let victim = lb.replicas.lock().unwrap().iter().position(|s| s.as_ref().is_some_and(|s| s.url == holder));
    lb.kill(victim.unwrap());
    let r = lb.request(Method::POST, &data(&keyed.g, "find"), Some(&find_k), "application/json").await;
    assert_eq!(r.json()["documents"].as_array().map(Vec::len), Some(1), "{}", r.text);
    let find_f = json!({"database": "fresh", "collection": "items", "filter": {"sku": "f"}});
    let r = lb.request(Method::POST, &data(&keyed.g, "find"), Some(&find_f), "application/json").await;
    assert_eq!(r.json()["documents"].as_array().map(Vec::len), Some(1), "{}", r.text);
    assert_ne!(holder_of(&keyed.g, "k0"), holder, "another replica took the cluster over");
    lb.revive_all();

    // The data plane: written through any replica (forwarded to the one serving the cluster),
    // and still there when that replica dies and another takes the cluster over.
    let g = &cluster_groups[0];
    let path = format!("/data/v1/groups/{g}/clusters/c0/action/insertOne");
    let doc = json!({"database": "shop", "collection": "items", "document": {"sku": "a1"}});
    let r = lb.request(Method::POST, &path, Some(&doc), "application/json").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let holder = lb.sql("SELECT holder_url FROM leases WHERE name LIKE 'cluster:%'", |r| r.get::<_, String>(0));
    assert!(!holder.is_empty(), "clusters are held by replicas");
    let cluster_id =
        lb.sql(&format!("SELECT id FROM clusters WHERE group_id = '{g}' AND name = 'c0'"), |r| r.get::<_, String>(0));
    let owner = lb.sql(&format!("SELECT holder_url FROM leases WHERE name = 'cluster:{}'", cluster_id[0]), |r| {
        r.get::<_, String>(0)
    });
    let victim = lb.replicas.lock().unwrap().iter().position(|s| s.as_ref().is_some_and(|s| s.url == owner[0]));
    lb.kill(victim.expect("the cluster's holder is one of the replicas"));
    let find = json!({"database": "shop", "collection": "items", "filter": {"sku": "a1"}});
    let path = format!("/data/v1/groups/{g}/clusters/c0/action/find");
    let r = lb.request(Method::POST, &path, Some(&find), "application/json").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["documents"].as_array().map(Vec::len), Some(1), "{}", r.text);
    let now = lb.sql(&format!("SELECT holder_url FROM leases WHERE name = 'cluster:{}'", cluster_id[0]), |r| {
        r.get::<_, String>(0)
    });
    assert_ne!(now, owner, "another replica took the cluster over");
}
