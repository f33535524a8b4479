//! `/groups/{groupId}/clusters`: the fields of `ClusterDescription20240805` atrest supports.
//! Customer key management per cluster is `encryptionAtRestProvider`.

use atrest_core::clusters::{Cluster, ClusterPatch, NewCluster, Provider, RegionConfig};
use atrest_core::roles::Operation;
use atrest_core::{time_fmt, Error};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
    region_configs: Vec<RegionConfigBody>,
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

/// Splits the body into what atrest understands and refuses the rest by name.
fn parse(
    body: Value,
    creating: bool,
) -> ApiResult<(Option<String>, Option<Vec<RegionConfig>>, Option<Provider>, Option<bool>)> {
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
    for (k, must_be) in [("backupEnabled", json!(false)), ("terminationProtectionEnabled", json!(false))] {
        if let Some(v) = take(&mut map, k) {
            if v != must_be {
                return Err(Error::InvalidAttribute {
                    name: k.into(),
                    reason: format!("atrest supports only {must_be}"),
                }
                .into());
            }
        }
    }
    if let Some(unknown) = map.keys().next() {
        return Err(Error::InvalidAttribute {
            name: unknown.clone(),
            reason: "atrest does not support this cluster attribute".into(),
        }
        .into());
    }
    if let Some(t) = cluster_type {
        match t.as_str() {
            Some("REPLICASET") => {}
            Some("SHARDED") | Some("GEOSHARDED") => {
                return Err(Error::InvalidAttribute {
                    name: "clusterType".into(),
                    reason: "atrest supports REPLICASET clusters".into(),
                }
                .into())
            }
            _ => return Err(Error::InvalidEnumValue { field: "clusterType".into(), value: t.to_string() }.into()),
        }
    }
    let name = match name {
        Some(Value::String(n)) => Some(n),
        Some(other) => {
            return Err(Error::InvalidAttribute {
                name: "name".into(),
                reason: format!("must be a string, not {other}"),
            }
            .into())
        }
        None if creating => return Err(Error::MissingAttribute { name: "name".into() }.into()),
        None => None,
    };
    let regions = match specs {
        Some(v) => {
            let specs: Vec<ReplicationSpecBody> = crate::conventions::parse_body(v.to_string().as_bytes())?;
            if specs.len() != 1 {
                return Err(Error::InvalidAttribute {
                    name: "replicationSpecs".into(),
                    reason: "atrest supports exactly one replication spec".into(),
                }
                .into());
            }
            let mut out = vec![];
            for r in specs.into_iter().next().map(|s| s.region_configs).unwrap_or_default() {
                let tenant = r.provider_name == "TENANT";
                if r.provider_name != "AWS" && !(tenant && r.backing_provider_name.as_deref().unwrap_or("AWS") == "AWS")
                {
                    return Err(Error::ProviderUnsupported { provider: r.provider_name }.into());
                }
                let region = r.region_name.as_str().map(str::to_owned).ok_or_else(|| Error::InvalidAttribute {
                    name: "regionName".into(),
                    reason: "must be a string such as US_EAST_1".into(),
                })?;
                out.push(RegionConfig {
                    region,
                    priority: r.priority.unwrap_or(7),
                    instance_size: r.electable_specs.instance_size,
                    node_count: r.electable_specs.node_count.unwrap_or(3),
                });
            }
            Some(out)
        }
        None if creating => return Err(Error::MissingAttribute { name: "replicationSpecs".into() }.into()),
        None => None,
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
        Some(other) => {
            return Err(Error::InvalidAttribute {
                name: "paused".into(),
                reason: format!("must be a boolean, not {other}"),
            }
            .into())
        }
        None => None,
    };
    Ok((name, regions, provider, paused))
}

pub fn view(ctx: &Ctx, c: &Cluster) -> Value {
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
    json!({
        "backupEnabled": false,
        "clusterType": "REPLICASET",
        "createDate": time_fmt::format(c.created),
        "encryptionAtRestProvider": c.desired_provider.as_str(),
        "groupId": c.group_id.to_string(),
        "id": c.id.to_string(),
        "links": ctx.self_link(&format!("/groups/{}/clusters/{}", c.group_id, c.name)),
        "mongoDBVersion": "8.0.0",
        "name": c.name,
        "paused": c.paused,
        "replicationSpecs": [{"id": c.id.to_string(), "zoneName": "Zone 1", "regionConfigs": region_configs}],
        "stateName": c.state.as_str(),
        "terminationProtectionEnabled": false,
    })
}

async fn create(
    State(s): State<AppState>,
    who: Principal,
    ctx: Ctx,
    Path(group): Path<String>,
    AtlasJson(body): AtlasJson<Value>,
) -> ApiResult<Response> {
    let project = projects::load(&s, &who, Operation::CreateCluster, &group).await?;
    let (name, regions, provider, _paused) = parse(body, true)?;
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
    let (new_name, regions, provider, paused) = parse(body, false)?;
    if new_name.is_some_and(|n| n != name) {
        return Err(
            Error::InvalidAttribute { name: "name".into(), reason: "a cluster cannot be renamed".into() }.into()
        );
    }
    let current = s.control.cluster(&project.id, &name).await?;
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
