//! `clusters`, `data`, `events`.

use std::io::Read;

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::ctx::{atlas_region, group_path, Ctx, Global, Page, ProjectArg};
use crate::error::{CliError, Result};
use crate::http::{seg, Request, PLAIN_JSON, V2_CLUSTERS};
use crate::output::{Column, View};
use crate::progress::{wait_for, Poll, WaitArgs};

// ---------------------------------------------------------------- clusters

#[derive(Args, Debug)]
pub struct ClustersArgs {
    #[command(flatten)]
    pub g: Global,
    #[command(flatten)]
    pub p: ProjectArg,
    #[command(subcommand)]
    pub cmd: ClustersCmd,
}

#[derive(Subcommand, Debug)]
pub enum ClustersCmd {
    /// Create a replica set cluster on AWS
    #[command(
        after_help = "Example:\n  atrest clusters create orders --region US_EAST_1 --instance-size M10 --customer-keys --wait"
    )]
    Create(ClusterCreate),
    /// List the project's clusters
    #[command(after_help = "Example:\n  atrest clusters list")]
    List(Page),
    /// Show one cluster
    #[command(after_help = "Example:\n  atrest clusters describe orders")]
    Describe {
        /// Cluster name
        name: String,
    },
    /// Change a cluster: customer keys on or off, instance size, paused
    #[command(
        after_help = "Example:\n  atrest clusters update orders --customer-keys false --wait\n  atrest clusters update orders --instance-size M20 --wait"
    )]
    Update(ClusterUpdate),
    /// Show where a cluster's encryption stands: provider, data accessible, switch progress
    #[command(after_help = "Example:\n  atrest clusters encryption-status orders")]
    EncryptionStatus {
        /// Cluster name
        name: String,
    },
    /// Rotate a cluster's master key now (a new key wrapped by the project's KMS key)
    #[command(after_help = "Example:\n  atrest clusters rotate-master-key orders")]
    RotateMasterKey {
        /// Cluster name
        name: String,
    },
    /// Delete a cluster
    #[command(after_help = "Example:\n  atrest clusters delete orders --wait")]
    Delete {
        /// Cluster name
        name: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ClusterCreate {
    /// Cluster name
    pub name: String,
    /// AWS region, e.g. US_EAST_1 (us-east-1 is accepted too)
    #[arg(long, value_name = "REGION")]
    pub region: String,
    /// Instance size, e.g. M10 (customer keys need M10 or larger)
    #[arg(long, value_name = "SIZE")]
    pub instance_size: String,
    /// Electable nodes
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub node_count: u32,
    /// Encrypt with the project's AWS KMS key (encryptionAtRestProvider AWS)
    #[arg(long)]
    pub customer_keys: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ClusterUpdate {
    /// Cluster name
    pub name: String,
    /// Customer keys on (AWS) or off (NONE)
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub customer_keys: Option<bool>,
    /// New instance size for every region of the cluster, e.g. M20
    #[arg(long, value_name = "SIZE")]
    pub instance_size: Option<String>,
    /// Pause or resume the cluster
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    pub paused: Option<bool>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

const CLUSTER_COLUMNS: &[Column] = &[
    ("NAME", "/name"),
    ("STATE", "/stateName"),
    ("TYPE", "/clusterType"),
    ("INSTANCE", "/replicationSpecs/0/regionConfigs/0/electableSpecs/instanceSize"),
    ("REGION", "/replicationSpecs/0/regionConfigs/0/regionName"),
    ("CUSTOMER KEYS", "/encryptionAtRestProvider"),
    ("PAUSED", "/paused"),
];

pub fn clusters_path(project: &str) -> String {
    format!("{}/clusters", group_path(project))
}

pub fn cluster_path(project: &str, name: &str) -> String {
    format!("{}/{}", clusters_path(project), seg(name))
}

/// atrest's own cluster routes (not part of the Atlas API): `/api/atrest/v1/groups/{g}/clusters/{c}/...`.
fn cluster_extension_path(project: &str, name: &str, what: &str) -> String {
    format!("/api/atrest/v1/groups/{}/clusters/{}/{what}", seg(project), seg(name))
}

const ENCRYPTION_COLUMNS: &[Column] = &[
    ("NAME", "/clusterName"),
    ("STATE", "/stateName"),
    ("CUSTOMER KEYS", "/encryptionAtRestProvider"),
    ("DESIRED", "/desiredEncryptionAtRestProvider"),
    ("DATA ACCESSIBLE", "/dataAccessible"),
    ("BYTES DONE", "/switchProgress/bytesDone"),
    ("BYTES TOTAL", "/switchProgress/bytesTotal"),
];

pub fn cluster_create_request(project: &str, c: &ClusterCreate) -> Request {
    let mut body = json!({
        "name": c.name,
        "clusterType": "REPLICASET",
        "replicationSpecs": [{
            "regionConfigs": [{
                "providerName": "AWS",
                "regionName": atlas_region(&c.region),
                "priority": 7,
                "electableSpecs": {"instanceSize": c.instance_size, "nodeCount": c.node_count},
            }],
        }],
    });
    if c.customer_keys {
        body["encryptionAtRestProvider"] = json!("AWS");
    }
    Request::post(clusters_path(project), body).accept(V2_CLUSTERS)
}

/// The PATCH body. A new instance size needs the cluster's current `replicationSpecs` (Atlas
/// takes the whole topology); only their writable fields are sent back.
pub fn cluster_update_body(u: &ClusterUpdate, current: Option<&Value>) -> Result<Value> {
    let mut body = Map::new();
    if let Some(on) = u.customer_keys {
        body.insert("encryptionAtRestProvider".into(), json!(if on { "AWS" } else { "NONE" }));
    }
    if let Some(p) = u.paused {
        body.insert("paused".into(), json!(p));
    }
    if let Some(size) = &u.instance_size {
        let specs = current
            .and_then(|c| c["replicationSpecs"].as_array())
            .ok_or_else(|| CliError::other("the cluster has no replicationSpecs to resize"))?;
        let specs: Vec<Value> = specs.iter().map(|s| resized_spec(s, size)).collect();
        body.insert("replicationSpecs".into(), Value::Array(specs));
    }
    if body.is_empty() {
        return Err(CliError::usage("nothing to update: give --customer-keys, --instance-size or --paused"));
    }
    Ok(Value::Object(body))
}

fn resized_spec(spec: &Value, size: &str) -> Value {
    const REGION_FIELDS: &[&str] = &[
        "providerName",
        "regionName",
        "priority",
        "electableSpecs",
        "readOnlySpecs",
        "analyticsSpecs",
        "autoScaling",
        "analyticsAutoScaling",
        "backingProviderName",
    ];
    let configs: Vec<Value> = spec["regionConfigs"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|rc| {
            let mut out = Map::new();
            for f in REGION_FIELDS {
                if let Some(v) = rc.get(*f).filter(|v| !v.is_null()) {
                    out.insert((*f).into(), v.clone());
                }
            }
            for hw in ["electableSpecs", "readOnlySpecs", "analyticsSpecs"] {
                if let Some(Value::Object(h)) = out.get_mut(hw) {
                    h.insert("instanceSize".into(), json!(size));
                }
            }
            Value::Object(out)
        })
        .collect();
    let mut out = json!({ "regionConfigs": configs });
    if let Some(z) = spec.get("zoneName").filter(|v| v.is_string()) {
        out["zoneName"] = z.clone();
    }
    out
}

pub fn cluster_update_request(project: &str, u: &ClusterUpdate, current: Option<&Value>) -> Result<Request> {
    Ok(Request::patch(cluster_path(project, &u.name), cluster_update_body(u, current)?).accept(V2_CLUSTERS))
}

pub fn cluster_request(project: &str, cmd: &ClustersCmd) -> Request {
    match cmd {
        ClustersCmd::List(p) => Request::get(format!("{}{}", clusters_path(project), p.query())),
        ClustersCmd::Describe { name } => Request::get(cluster_path(project, name)),
        ClustersCmd::Delete { name, .. } => Request::delete(cluster_path(project, name)),
        ClustersCmd::Create(c) => cluster_create_request(project, c),
        ClustersCmd::Update(u) => Request::get(cluster_path(project, &u.name)),
        ClustersCmd::EncryptionStatus { name } => {
            return Request::get(cluster_extension_path(project, name, "encryption")).accept(PLAIN_JSON)
        }
        ClustersCmd::RotateMasterKey { name } => {
            return Request::post(cluster_extension_path(project, name, "rotateMasterKey"), json!({}))
                .accept(PLAIN_JSON)
        }
    }
    .accept(V2_CLUSTERS)
}

/// Waits until GET shows `IDLE` (or, for `gone`, answers 404); prints the final state.
async fn wait_cluster(ctx: &Ctx, project: &str, name: &str, wait: &WaitArgs, gone: bool) -> Result<()> {
    let req = Request::get(cluster_path(project, name)).accept(V2_CLUSTERS);
    let body = wait_for(&format!("cluster {name}"), &wait.timing, async || {
        let resp = ctx.api.execute(&req).await?;
        if resp.status == 404 && gone {
            return Ok(Poll::Done("deleted".into(), None));
        }
        if !(200..300).contains(&resp.status) {
            return Err(CliError::from_response(resp.status, &resp.body));
        }
        let state = resp.json()?["stateName"].as_str().unwrap_or("UNKNOWN").to_owned();
        Ok(if !gone && state == "IDLE" { Poll::Done(state, Some(resp.body)) } else { Poll::Pending(state) })
    })
    .await?;
    if let Some(body) = body {
        crate::output::print(ctx.format, &body, &View::Entity(CLUSTER_COLUMNS));
    }
    Ok(())
}

pub async fn clusters(a: ClustersArgs) -> Result<()> {
    let project = a.p.id()?;
    let ctx = Ctx::new(&a.g)?;
    match &a.cmd {
        ClustersCmd::List(_) => {
            let view = View::List { key: "results", columns: CLUSTER_COLUMNS };
            ctx.show(&cluster_request(project, &a.cmd), view).await?;
        }
        ClustersCmd::Describe { .. } => {
            ctx.show(&cluster_request(project, &a.cmd), View::Entity(CLUSTER_COLUMNS)).await?;
        }
        ClustersCmd::EncryptionStatus { .. } => {
            ctx.show(&cluster_request(project, &a.cmd), View::Entity(ENCRYPTION_COLUMNS)).await?;
        }
        ClustersCmd::RotateMasterKey { name } => {
            ctx.show(&cluster_request(project, &a.cmd), View::Message(format!("Rotated the master key of {name}")))
                .await?;
        }
        ClustersCmd::Create(c) => {
            let req = cluster_create_request(project, c);
            if c.wait.wait {
                ctx.api.send(&req).await?;
                wait_cluster(&ctx, project, &c.name, &c.wait, false).await?;
            } else {
                ctx.show(&req, View::Entity(CLUSTER_COLUMNS)).await?;
            }
        }
        ClustersCmd::Update(u) => {
            let current =
                if u.instance_size.is_some() { Some(ctx.json(&cluster_request(project, &a.cmd)).await?) } else { None };
            let req = cluster_update_request(project, u, current.as_ref())?;
            if u.wait.wait {
                ctx.api.send(&req).await?;
                wait_cluster(&ctx, project, &u.name, &u.wait, false).await?;
            } else {
                ctx.show(&req, View::Entity(CLUSTER_COLUMNS)).await?;
            }
        }
        ClustersCmd::Delete { name, wait } => {
            let req = cluster_request(project, &a.cmd);
            ctx.show(&req, View::Message(format!("Deleting cluster {name}"))).await?;
            if wait.wait {
                wait_cluster(&ctx, project, name, wait, true).await?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- data

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(flatten)]
    pub g: Global,
    #[command(flatten)]
    pub p: ProjectArg,
    #[command(subcommand)]
    pub cmd: DataCmd,
}

#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Cluster name
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    /// Database name
    #[arg(long, value_name = "NAME")]
    pub db: String,
    /// Collection name
    #[arg(long, value_name = "NAME")]
    pub collection: String,
}

#[derive(Subcommand, Debug)]
pub enum DataCmd {
    /// Insert documents (JSON arguments, or JSON read from stdin when none are given)
    #[command(
        after_help = "Example:\n  atrest data insert --cluster orders --db shop --collection items '{\"sku\":\"a1\",\"qty\":3}'\n  \
        jq -c '.[]' items.json | atrest data insert --cluster orders --db shop --collection items"
    )]
    Insert {
        #[command(flatten)]
        target: Target,
        /// Documents, one JSON object per argument
        #[arg(value_name = "JSON")]
        documents: Vec<String>,
    },
    /// Find documents
    #[command(
        after_help = "Example:\n  atrest data find --cluster orders --db shop --collection items --filter '{\"sku\":\"a1\"}' --limit 10"
    )]
    Find {
        #[command(flatten)]
        target: Target,
        /// Query filter (JSON object)
        #[arg(long, value_name = "JSON")]
        filter: Option<String>,
        /// Return at most N documents
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Return only the first match (findOne)
        #[arg(long, conflicts_with = "limit")]
        one: bool,
    },
}

pub fn data_path(project: &str, cluster: &str, action: &str) -> String {
    format!("/data/v1/groups/{}/clusters/{}/action/{action}", seg(project), seg(cluster))
}

fn parse_json(what: &str, s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| CliError::usage(format!("{what} is not valid JSON ({e}): {s}")))
}

/// Documents from the arguments, or from a JSON stream (objects, or arrays of them).
pub fn collect_documents(args: &[String], stdin: Option<&str>) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    if args.is_empty() {
        let text = stdin.unwrap_or_default();
        for v in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            match v.map_err(|e| CliError::usage(format!("stdin is not valid JSON: {e}")))? {
                Value::Array(a) => docs.extend(a),
                v => docs.push(v),
            }
        }
    } else {
        for a in args {
            docs.push(parse_json("document", a)?);
        }
    }
    if docs.is_empty() {
        return Err(CliError::usage("no documents to insert"));
    }
    if let Some(bad) = docs.iter().find(|d| !d.is_object()) {
        return Err(CliError::usage(format!("a document must be a JSON object, not {bad}")));
    }
    Ok(docs)
}

pub fn insert_request(project: &str, t: &Target, docs: Vec<Value>) -> Request {
    let (action, body) = if docs.len() == 1 {
        let doc = docs.into_iter().next().unwrap_or_default();
        ("insertOne", json!({"database": t.db, "collection": t.collection, "document": doc}))
    } else {
        ("insertMany", json!({"database": t.db, "collection": t.collection, "documents": docs}))
    };
    Request::post(data_path(project, &t.cluster, action), body).accept(PLAIN_JSON)
}

pub fn find_request(project: &str, t: &Target, filter: Option<&str>, limit: Option<u64>, one: bool) -> Result<Request> {
    let mut body = json!({"database": t.db, "collection": t.collection});
    let filter = match filter {
        Some(f) => parse_json("--filter", f)?,
        None => json!({}),
    };
    if !filter.is_object() {
        return Err(CliError::usage("--filter must be a JSON object"));
    }
    body["filter"] = filter;
    if let Some(l) = limit {
        body["limit"] = json!(l);
    }
    let action = if one { "findOne" } else { "find" };
    Ok(Request::post(data_path(project, &t.cluster, action), body).accept(PLAIN_JSON))
}

pub async fn data(a: DataArgs) -> Result<()> {
    let project = a.p.id()?;
    match &a.cmd {
        DataCmd::Insert { target, documents } => {
            let stdin = if documents.is_empty() {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .map_err(|e| CliError::usage(format!("cannot read stdin: {e}")))?;
                Some(s)
            } else {
                None
            };
            let docs = collect_documents(documents, stdin.as_deref())?;
            let ctx = Ctx::new(&a.g)?;
            ctx.show(&insert_request(project, target, docs), View::AllFields).await?;
        }
        DataCmd::Find { target, filter, limit, one } => {
            let req = find_request(project, target, filter.as_deref(), *limit, *one)?;
            let ctx = Ctx::new(&a.g)?;
            let resp = ctx.api.send(&req).await?;
            if ctx.is_table() {
                let v = resp.json()?;
                let docs: Vec<Value> = match (&v["documents"], &v["document"]) {
                    (Value::Array(d), _) => d.clone(),
                    (_, Value::Null) => Vec::new(),
                    (_, d) => vec![d.clone()],
                };
                for d in &docs {
                    println!("{d}");
                }
                eprintln!("({} document{})", docs.len(), if docs.len() == 1 { "" } else { "s" });
            } else {
                print!("{}", crate::output::json_text(&resp.body));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- events

#[derive(Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    pub g: Global,
    #[command(flatten)]
    pub p: ProjectArg,
    #[command(subcommand)]
    pub cmd: EventsCmd,
}

#[derive(Subcommand, Debug)]
pub enum EventsCmd {
    /// List the project's events, newest first
    #[command(after_help = "Example:\n  atrest events list --limit 20")]
    List {
        /// At most N events (itemsPerPage, 1..500)
        #[arg(long, visible_alias = "items-per-page", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: Option<u32>,
        /// Page number, from 1
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        page: Option<u32>,
    },
}

const EVENT_COLUMNS: &[Column] =
    &[("CREATED", "/created"), ("EVENT TYPE", "/eventTypeName"), ("CLUSTER", "/clusterName"), ("ID", "/id")];

pub fn events_request(project: &str, cmd: &EventsCmd) -> Request {
    let EventsCmd::List { limit, page } = cmd;
    let p = Page { page: *page, items_per_page: *limit };
    Request::get(format!("{}/events{}", group_path(project), p.query()))
}

pub async fn events(a: EventsArgs) -> Result<()> {
    let project = a.p.id()?;
    let ctx = Ctx::new(&a.g)?;
    let view = View::List { key: "results", columns: EVENT_COLUMNS };
    ctx.show(&events_request(project, &a.cmd), view).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::progress::Timing;

    fn no_wait() -> WaitArgs {
        WaitArgs { wait: false, timing: Timing { timeout: 600, poll_interval: 2.0 } }
    }

    #[test]
    fn cluster_create_body_is_atlas_shaped() {
        let r = cluster_create_request(
            "g1",
            &ClusterCreate {
                name: "orders".into(),
                region: "us-east-1".into(),
                instance_size: "M10".into(),
                node_count: 3,
                customer_keys: true,
                wait: no_wait(),
            },
        );
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/clusters");
        assert_eq!(r.accept, "application/vnd.atlas.2024-10-23+json");
        assert_eq!(
            r.body,
            Some(json!({
                "name": "orders",
                "clusterType": "REPLICASET",
                "replicationSpecs": [{"regionConfigs": [{
                    "providerName": "AWS", "regionName": "US_EAST_1", "priority": 7,
                    "electableSpecs": {"instanceSize": "M10", "nodeCount": 3}}]}],
                "encryptionAtRestProvider": "AWS"
            }))
        );
    }

    #[test]
    fn cluster_update_bodies() {
        let u = ClusterUpdate {
            name: "orders".into(),
            customer_keys: Some(false),
            instance_size: None,
            paused: Some(true),
            wait: no_wait(),
        };
        let r = cluster_update_request("g1", &u, None).unwrap();
        assert_eq!(r.method, Method::PATCH);
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/clusters/orders");
        assert_eq!(r.body, Some(json!({"encryptionAtRestProvider": "NONE", "paused": true})));

        let current = json!({"name": "orders", "stateName": "IDLE", "replicationSpecs": [{
            "id": "x", "zoneId": "z", "zoneName": "Zone 1",
            "regionConfigs": [{"providerName": "AWS", "regionName": "US_EAST_1", "priority": 7,
                "electableSpecs": {"instanceSize": "M10", "nodeCount": 3, "diskIOPS": null},
                "readOnlySpecs": {"instanceSize": "M10", "nodeCount": 0}, "analyticsSpecs": null}]}]});
        let u = ClusterUpdate { instance_size: Some("M20".into()), customer_keys: None, paused: None, ..u };
        let body = cluster_update_body(&u, Some(&current)).unwrap();
        assert_eq!(
            body,
            json!({"replicationSpecs": [{"zoneName": "Zone 1", "regionConfigs": [{
                "providerName": "AWS", "regionName": "US_EAST_1", "priority": 7,
                "electableSpecs": {"instanceSize": "M20", "nodeCount": 3, "diskIOPS": null},
                "readOnlySpecs": {"instanceSize": "M20", "nodeCount": 0}}]}]})
        );
        let empty = ClusterUpdate { instance_size: None, ..u };
        assert_eq!(cluster_update_body(&empty, None).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn cluster_other_requests() {
        let r = cluster_request("g1", &ClustersCmd::Delete { name: "orders".into(), wait: no_wait() });
        assert_eq!(r.method, Method::DELETE);
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/clusters/orders");
        assert_eq!(r.accept, V2_CLUSTERS);
        let r = cluster_request("g1", &ClustersCmd::List(Page::default()));
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/clusters");
    }

    #[test]
    fn data_requests() {
        let t = Target { cluster: "c1".into(), db: "shop".into(), collection: "items".into() };
        let docs = collect_documents(&[r#"{"a":1}"#.into()], None).unwrap();
        let r = insert_request("g1", &t, docs);
        assert_eq!(r.path, "/data/v1/groups/g1/clusters/c1/action/insertOne");
        assert_eq!(r.body, Some(json!({"database": "shop", "collection": "items", "document": {"a": 1}})));
        let docs = collect_documents(&[], Some("{\"a\":1}\n{\"a\":2}\n[{\"a\":3}]")).unwrap();
        let r = insert_request("g1", &t, docs);
        assert_eq!(r.path, "/data/v1/groups/g1/clusters/c1/action/insertMany");
        assert_eq!(r.body.unwrap()["documents"], json!([{"a": 1}, {"a": 2}, {"a": 3}]));
        assert!(collect_documents(&["[1]".into()], None).is_err());
        assert!(collect_documents(&["{".into()], None).is_err());

        let r = find_request("g1", &t, Some(r#"{"a":{"$gt":1}}"#), Some(5), false).unwrap();
        assert_eq!(r.path, "/data/v1/groups/g1/clusters/c1/action/find");
        assert_eq!(
            r.body,
            Some(json!({"database": "shop", "collection": "items", "filter": {"a": {"$gt": 1}}, "limit": 5}))
        );
        let r = find_request("g1", &t, None, None, true).unwrap();
        assert_eq!(r.path, "/data/v1/groups/g1/clusters/c1/action/findOne");
        assert_eq!(r.body.unwrap()["filter"], json!({}));
    }

    #[test]
    fn events_request_pages() {
        let r = events_request("g1", &EventsCmd::List { limit: Some(20), page: None });
        assert_eq!(r.path, "/api/atlas/v2/groups/g1/events?itemsPerPage=20");
    }
}
