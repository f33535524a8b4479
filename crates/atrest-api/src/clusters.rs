//! `/groups/{groupId}/clusters`: the cluster fields atrest supports, in each resource version's
//! shape: `LegacyAtlasCluster` (2023-01-01 and the v1.0 surface: `providerSettings`,
//! `replicationSpecs[].regionsConfig`), `AdvancedClusterDescription` (2023-02-01: `regionConfigs`
//! with `numShards`) and `ClusterDescription20240805` (2024-08-05, 2024-10-23). A body in any of
//! them is read whatever the version, so older clients and newer ones can share a project.
//! Customer key management per cluster is `encryptionAtRestProvider`.

use atrest_core::clusters::{Cluster, ClusterPatch, NewCluster, Provider, RegionConfig};
use atrest_core::roles::Operation;
use atrest_core::{time_fmt, Error};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::Principal;
use crate::conventions::{ok, AtlasJson, Ctx, Paging};
use crate::errors::ApiResult;
use crate::{projects, AppState, Routes};

pub fn routes() -> Routes {
    Routes::new()
        .get("/groups/{groupId}/clusters", list)
        .post("/groups/{groupId}/clusters", create)
        .get("/groups/{groupId}/clusters/{clusterName}", read)
        .patch("/groups/{groupId}/clusters/{clusterName}", update)
        .delete("/groups/{groupId}/clusters/{clusterName}", delete)
}

/// atrest-only: a provider switch's progress.
pub fn extension_routes() -> Routes {
    Routes::new()
        .get("/groups/{groupId}/clusters/{clusterName}/encryption", encryption_status)
        .post("/groups/{groupId}/clusters/{clusterName}/rotateMasterKey", rotate)
}

/// Fields atrest reads; read-only fields are ignored; anything else is refused by name.
const READ_ONLY: &[&str] = &[
    "id",
    "groupId",
    "createDate",
    "mongoDBVersion",
    "connectionStrings",
    "stateName",
    "links",
    "effectiveReplicationSpecs",
    "mongoURI",
    "mongoURIUpdated",
    "mongoURIWithOptions",
    "srvAddress",
];
const ACCEPTED_DEFAULTS: &[(&str, Value)] = &[];

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RegionConfigBody {
    provider_name: String,
    region_name: Value,
    #[serde(default)]
    priority: Option<u32>,
    electable_specs: SpecsBody,
    #[serde(default)]
    backing_provider_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SpecsBody {
    instance_size: String,
    #[serde(default)]
    node_count: Option<u32>,
    #[serde(default, rename = "diskSizeGB")]
    #[allow(dead_code)]
    disk_size_gb: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReplicationSpecBody {
    #[serde(default)]
    region_configs: Option<Vec<RegionConfigBody>>,
    /// `LegacyReplicationSpec` (2023-01-01): nodes per region, the size in `providerSettings`.
    #[serde(default)]
    regions_config: Option<BTreeMap<String, LegacyRegionBody>>,
    #[serde(default)]
    num_shards: Option<u32>,
    #[serde(default)]
    #[allow(dead_code)]
    zone_name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    zone_id: Option<Value>,
}

/// `RegionSpec`: atrest's nodes are all electable.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LegacyRegionBody {
    #[serde(default)]
    electable_nodes: Option<u32>,
    #[serde(default)]
    priority: Option<u32>,
    #[serde(default)]
    read_only_nodes: Option<u32>,
    #[serde(default)]
    analytics_nodes: Option<u32>,
}

/// `providerSettings` of `LegacyAtlasCluster`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProviderSettingsBody {
    provider_name: String,
    #[serde(default)]
    backing_provider_name: Option<String>,
    #[serde(default)]
    instance_size_name: Option<String>,
    #[serde(default)]
    region_name: Option<String>,
    #[serde(default, rename = "diskIOPS")]
    #[allow(dead_code)]
    disk_iops: Option<u32>,
    #[serde(default, rename = "encryptEBSVolume")]
    #[allow(dead_code)]
    encrypt_ebs_volume: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    volume_type: Option<String>,
}

/// What a body asks of the cluster.
struct ClusterBody {
    name: Option<String>,
    regions: Option<Vec<RegionConfig>>,
    /// A legacy `providerSettings.instanceSizeName` without regions: every region takes it.
    resize: Option<String>,
    provider: Option<Provider>,
    paused: Option<bool>,
}

fn invalid(name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidAttribute { name: name.into(), reason: reason.into() }
}

/// A part of the body as its type, refused in the body's own terms (field names, Atlas codes).
fn typed<T: serde::de::DeserializeOwned>(v: Value) -> ApiResult<T> {
    Ok(crate::conventions::parse_body(v.to_string().as_bytes())?)
}

fn check_provider(provider: &str, backing: Option<&str>) -> Result<(), Error> {
    let tenant = provider == "TENANT";
    if provider != "AWS" && !(tenant && backing.unwrap_or("AWS") == "AWS") {
        return Err(Error::ProviderUnsupported { provider: provider.into() });
    }
    Ok(())
}

fn one_shard(n: Option<u32>) -> Result<(), Error> {
    match n {
        None | Some(1) => Ok(()),
        Some(_) => Err(invalid("numShards", "atrest supports replica sets: one shard")),
    }
}

/// Regions of a legacy body: `replicationSpecs[].regionsConfig` or `replicationSpec`, each region
/// with its electable nodes, all of the `providerSettings` size.
fn legacy_regions(regions: BTreeMap<String, LegacyRegionBody>, size: Option<&str>) -> Result<Vec<RegionConfig>, Error> {
    let size = size.ok_or_else(|| Error::MissingAttribute { name: "providerSettings.instanceSizeName".into() })?;
    let mut out = vec![];
    for (region, r) in regions {
        for (name, n) in [("readOnlyNodes", r.read_only_nodes), ("analyticsNodes", r.analytics_nodes)] {
            if n.unwrap_or(0) != 0 {
                return Err(invalid(name, "atrest deploys electable nodes only"));
            }
        }
        out.push(RegionConfig {
            region,
            priority: r.priority.unwrap_or(7),
            instance_size: size.to_owned(),
            node_count: r.electable_nodes.unwrap_or(3),
        });
    }
    // The preferred region first, as the other shapes list it.
    out.sort_by_key(|r| std::cmp::Reverse(r.priority));
    Ok(out)
}

/// Splits the body into what atrest understands and refuses the rest by name.
fn parse(body: Value, creating: bool) -> ApiResult<ClusterBody> {
    let Value::Object(mut map) = body else {
        return Err(Error::MalformedJson { reason: "the body must be a JSON object".into() }.into());
    };
    for ro in READ_ONLY {
        map.remove(*ro);
    }
    let _ = ACCEPTED_DEFAULTS;
    let take = |map: &mut Map<String, Value>, k: &str| map.remove(k);
    let name = take(&mut map, "name");
    let cluster_type = take(&mut map, "clusterType");
    let specs = take(&mut map, "replicationSpecs");
    let provider = take(&mut map, "encryptionAtRestProvider");
    let paused = take(&mut map, "paused");
    let provider_settings = take(&mut map, "providerSettings");
    let legacy_spec = take(&mut map, "replicationSpec");
    let replication_factor = take(&mut map, "replicationFactor");
    let num_shards = take(&mut map, "numShards");
    // Sizes of disks and the MongoDB version are the host's business here: accepted, not used.
    for k in ["diskSizeGB", "mongoDBMajorVersion"] {
        if let Some(v) = take(&mut map, k) {
            if !(v.is_number() || v.is_string() || v.is_null()) {
                return Err(invalid(k, format!("must be a number or string, not {v}")).into());
            }
        }
    }
    for (k, must_be) in [
        ("backupEnabled", json!(false)),
        ("providerBackupEnabled", json!(false)),
        ("pitEnabled", json!(false)),
        ("terminationProtectionEnabled", json!(false)),
    ] {
        if let Some(v) = take(&mut map, k) {
            if v != must_be {
                return Err(invalid(k, format!("atrest supports only {must_be}")).into());
            }
        }
    }
    if let Some(unknown) = map.keys().next() {
        return Err(invalid(unknown, "atrest does not support this cluster attribute").into());
    }
    if let Some(t) = cluster_type {
        match t.as_str() {
            Some("REPLICASET") => {}
            Some("SHARDED") | Some("GEOSHARDED") => {
                return Err(invalid("clusterType", "atrest supports REPLICASET clusters").into())
            }
            _ => return Err(Error::InvalidEnumValue { field: "clusterType".into(), value: t.to_string() }.into()),
        }
    }
    let name = match name {
        Some(Value::String(n)) => Some(n),
        Some(other) => return Err(invalid("name", format!("must be a string, not {other}")).into()),
        None if creating => return Err(Error::MissingAttribute { name: "name".into() }.into()),
        None => None,
    };
    let num_shards: Option<u32> = num_shards.map(typed).transpose()?;
    one_shard(num_shards)?;
    let settings: Option<ProviderSettingsBody> = provider_settings.map(typed).transpose()?;
    if let Some(p) = &settings {
        check_provider(&p.provider_name, p.backing_provider_name.as_deref())?;
    }
    let size = settings.as_ref().and_then(|p| p.instance_size_name.clone());
    let mut resize = None;
    let regions = match (specs, legacy_spec) {
        (Some(_), Some(_)) => {
            return Err(invalid("replicationSpec", "send replicationSpecs or replicationSpec, not both").into())
        }
        (Some(v), None) => {
            let specs: Vec<ReplicationSpecBody> = typed(v)?;
            if specs.len() != 1 {
                return Err(invalid("replicationSpecs", "atrest supports exactly one replication spec").into());
            }
            let spec = specs.into_iter().next().expect("one spec");
            one_shard(spec.num_shards)?;
            match (spec.region_configs, spec.regions_config) {
                (Some(configs), None) => {
                    let mut out = vec![];
                    for r in configs {
                        check_provider(&r.provider_name, r.backing_provider_name.as_deref())?;
                        let region = r
                            .region_name
                            .as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| invalid("regionName", "must be a string such as US_EAST_1"))?;
                        out.push(RegionConfig {
                            region,
                            priority: r.priority.unwrap_or(7),
                            instance_size: r.electable_specs.instance_size,
                            node_count: r.electable_specs.node_count.unwrap_or(3),
                        });
                    }
                    Some(out)
                }
                (None, Some(legacy)) => Some(legacy_regions(legacy, size.as_deref())?),
                (Some(_), Some(_)) => {
                    return Err(invalid("regionsConfig", "send regionConfigs or regionsConfig, not both").into())
                }
                (None, None) => return Err(Error::MissingAttribute { name: "regionConfigs".into() }.into()),
            }
        }
        (None, Some(v)) => {
            let legacy: BTreeMap<String, LegacyRegionBody> = typed(v)?;
            Some(legacy_regions(legacy, size.as_deref())?)
        }
        (None, None) => match settings.as_ref().and_then(|p| p.region_name.clone()) {
            // `LegacyAtlasCluster` with one region: `providerSettings` and `replicationFactor`.
            Some(region) => {
                let nodes = match &replication_factor {
                    Some(v) => v.as_u64().filter(|n| [3, 5, 7].contains(n)).ok_or_else(|| Error::InvalidEnumValue {
                        field: "replicationFactor".into(),
                        value: v.to_string(),
                    })? as u32,
                    None => 3,
                };
                let size = size
                    .clone()
                    .ok_or_else(|| Error::MissingAttribute { name: "providerSettings.instanceSizeName".into() })?;
                Some(vec![RegionConfig { region, priority: 7, instance_size: size, node_count: nodes }])
            }
            None if creating => return Err(Error::MissingAttribute { name: "replicationSpecs".into() }.into()),
            None => {
                resize = size.clone();
                None
            }
        },
    };
    let provider = match provider {
        Some(Value::String(p)) => Some(Provider::parse(&p)?),
        Some(other) => {
            return Err(
                Error::InvalidEnumValue { field: "encryptionAtRestProvider".into(), value: other.to_string() }.into()
            )
        }
        None => None,
    };
    let paused = match paused {
        Some(Value::Bool(b)) => Some(b),
        Some(other) => return Err(invalid("paused", format!("must be a boolean, not {other}")).into()),
        None => None,
    };
    Ok(ClusterBody { name, regions, resize, provider, paused })
}

/// The shape a response takes, by resource version.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `LegacyAtlasCluster`: 2023-01-01 and the v1.0 surface.
    Legacy,
    /// `AdvancedClusterDescription`: 2023-02-01.
    Advanced,
    /// `ClusterDescription20240805`: 2024-08-05 and 2024-10-23.
    Current,
}

fn shape(ctx: &Ctx) -> Shape {
    match ctx.version {
        Some("2023-02-01") => Shape::Advanced,
        Some(v) if v >= "2024-08-05" => Shape::Current,
        _ => Shape::Legacy,
    }
}

pub fn view(ctx: &Ctx, c: &Cluster) -> Value {
    let mut out = json!({
        "backupEnabled": false,
        "clusterType": "REPLICASET",
        "createDate": time_fmt::format(c.created),
        "encryptionAtRestProvider": c.desired_provider.as_str(),
        "groupId": c.group_id.to_string(),
        "id": c.id.to_string(),
        "links": ctx.self_link(&format!("/groups/{}/clusters/{}", c.group_id, c.name)),
        "mongoDBMajorVersion": "8.0",
        "mongoDBVersion": "8.0.0",
        "name": c.name,
        "paused": c.paused,
        "stateName": c.state.as_str(),
        "terminationProtectionEnabled": false,
    });
    let shape = shape(ctx);
    if shape == Shape::Legacy {
        let regions: Map<String, Value> = c
            .regions
            .iter()
            .map(|r| {
                let spec = json!({"analyticsNodes": 0, "electableNodes": r.node_count, "priority": r.priority,
                                  "readOnlyNodes": 0});
                (r.region.clone(), spec)
            })
            .collect();
        let preferred = c.regions.iter().max_by_key(|r| r.priority);
        let size = preferred.map(|r| r.instance_size.as_str()).unwrap_or_default();
        let region = preferred.map(|r| r.region.as_str()).unwrap_or_default();
        let settings = if atrest_core::clusters::is_tenant(size) {
            json!({"providerName": "TENANT", "backingProviderName": "AWS", "instanceSizeName": size, "regionName": region})
        } else {
            json!({"providerName": "AWS", "instanceSizeName": size, "regionName": region})
        };
        let nodes: u32 = c.regions.iter().map(|r| r.node_count).sum();
        out["numShards"] = json!(1);
        out["providerBackupEnabled"] = json!(false);
        out["providerSettings"] = settings;
        if [3, 5, 7].contains(&nodes) {
            out["replicationFactor"] = json!(nodes);
        }
        out["replicationSpec"] = Value::Object(regions.clone());
        out["replicationSpecs"] =
            json!([{"id": c.id.to_string(), "numShards": 1, "zoneName": "Zone 1", "regionsConfig": regions}]);
        return out;
    }
    let region_configs: Vec<Value> = c
        .regions
        .iter()
        .map(|r| {
            json!({
                "providerName": "AWS",
                "regionName": r.region,
                "priority": r.priority,
                "electableSpecs": {"instanceSize": r.instance_size, "nodeCount": r.node_count},
            })
        })
        .collect();
    let mut spec = json!({"id": c.id.to_string(), "zoneName": "Zone 1", "regionConfigs": region_configs});
    if shape == Shape::Advanced {
        spec["numShards"] = json!(1);
    }
    out["replicationSpecs"] = json!([spec]);
    out
}

async fn create(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    Path(group): Path<String>,
    AtlasJson(body): AtlasJson<Value>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::CreateCluster, &group).await?;
    let ClusterBody { name, regions, provider, .. } = parse(body, true)?;
    let provider = provider.unwrap_or(Provider::None);
    if provider == Provider::Aws {
        who.require(Operation::ChangeClusterEncryption, Some(&project.id))?;
    }
    let new = NewCluster { name: name.unwrap_or_default(), regions: regions.unwrap_or_default(), provider };
    let c = s.control.create_cluster(&project.id, new).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&ctx, &c))).into_response())
}

async fn list(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    paging: Paging,
    Path(group): Path<String>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ListClusters, &group).await?;
    let (list, total) = s.store.list_clusters(&project.id, &paging.page).await?;
    Ok(ok(paging.list(list.iter().map(|c| view(&ctx, c)).collect(), total)))
}

async fn read(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    Path((group, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ListClusters, &group).await?;
    Ok(ok(view(&ctx, &s.control.cluster(&project.id, &name).await?)))
}

async fn update(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    Path((group, name)): Path<(String, String)>,
    AtlasJson(body): AtlasJson<Value>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::UpdateCluster, &group).await?;
    let ClusterBody { name: new_name, mut regions, resize, provider, paused } = parse(body, false)?;
    if new_name.is_some_and(|n| n != name) {
        return Err(invalid("name", "a cluster cannot be renamed").into());
    }
    let current = s.control.cluster(&project.id, &name).await?;
    if let Some(size) = resize {
        let resized = current.regions.iter().map(|r| RegionConfig { instance_size: size.clone(), ..r.clone() });
        regions = Some(resized.collect());
    }
    if provider.is_some_and(|p| p != current.desired_provider) {
        who.require(Operation::ChangeClusterEncryption, Some(&project.id))?;
    }
    let c = s.control.update_cluster(&project.id, &name, ClusterPatch { regions, provider, paused }).await?;
    Ok(ok(view(&ctx, &c)))
}

async fn delete(
    State(s): State<AppState>,
    who: Principal,
    Path((group, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::DeleteCluster, &group).await?;
    s.control.delete_cluster(&project.id, &name).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// atrest-only: rotate the cluster's master keys now (database keys are re-wrapped; no data is rewritten).
async fn rotate(
    State(s): State<AppState>,
    who: Principal,
    Path((group, name)): Path<(String, String)>,
    req: axum::extract::Request,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ChangeClusterEncryption, &group).await?;
    let c = s.control.cluster(&project.id, &name).await?;
    // The replica serving the cluster's data plane rotates its keys.
    let target = req.extensions().get::<crate::conventions::RequestTarget>().map(|t| t.0.clone()).unwrap_or_default();
    let forwarded = req.extensions().get::<crate::replicas::Forwarded>().is_some();
    let method = req.method().clone();
    if let Some(answer) =
        crate::replicas::to_owner(&s, &who, &c, forwarded, &method, &target, bytes::Bytes::new()).await?
    {
        return Ok(answer);
    }
    let version = s.control.rotate_master_key(&c).await?;
    Ok(ok(json!({"clusterName": c.name, "masterKeyVersion": version})))
}

async fn encryption_status(
    State(s): State<AppState>,
    who: Principal,
    Path((group, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::ListClusters, &group).await?;
    let c = s.control.cluster(&project.id, &name).await?;
    let progress = s.control.switch_progress(&c.id);
    let open = s.control.data.is_open(&c.id.to_string());
    Ok(ok(json!({
        "clusterName": c.name,
        "stateName": c.state.as_str(),
        "encryptionAtRestProvider": c.provider.as_str(),
        "desiredEncryptionAtRestProvider": c.desired_provider.as_str(),
        "dataAccessible": open,
        "switchProgress": progress.map(|p| json!({
            "databasesDone": p.databases_done, "databasesTotal": p.databases_total,
            "bytesDone": p.bytes_done, "bytesTotal": p.bytes_total,
        })),
    })))
}
