//! The OpenAPI 3 document of exactly what atrest serves (`GET /api/atlas/v2/openapi.json`).
//!
//! Paths and methods come from [`crate::route_table`], the table the router is built from, so a
//! route cannot be served without being documented (nor documented without being served).
//! Operations come from the vendored official Atlas definitions (`openapi/atlas-ear-subset.json`,
//! values verbatim) where Atlas has them, and from `openapi/atrest-operations.json` (atrest's
//! own, in the same style) for the rest. Two adjustments say what atrest really does:
//! - private endpoints are AWS KMS ones only, so a new one's body is `AWSKMSEARPrivateEndpoint`
//!   (the official `EARPrivateEndpoint` is Azure or AWS);
//! - the `/api/atlas/v1.0` surface mirrors v2 with plain `application/json`, in the newest shape
//!   but for clusters, which v1.0 serves as `LegacyAtlasCluster`, as Atlas does;
//! - error `parameters` are strings, as Atlas's are (the official schema says objects);
//! - every Admin API operation may answer 429 (rate limits);
//! - the OAuth token URL is this server's `/api/oauth/token`.

use std::sync::OnceLock;

use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::auth::Principal;
use crate::conventions::{self, V1_PREFIX, V2_PREFIX};
use crate::errors::ApiResult;

const OFFICIAL: &str = include_str!("../openapi/atlas-ear-subset.json");
const ATREST: &str = include_str!("../openapi/atrest-operations.json");

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

fn parse(text: &str, what: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("vendored {what} is not JSON: {e}"))
}

fn build() -> Value {
    let official = parse(OFFICIAL, "atlas-ear-subset.json");
    let atrest = parse(ATREST, "atrest-operations.json");
    let mut paths = Map::new();
    for (method, path) in crate::route_table() {
        let m = method.to_ascii_lowercase();
        let op = operation(&official, &atrest, &m, &path)
            .unwrap_or_else(|| panic!("{method} {path} is served but has no OpenAPI definition"));
        let item = paths.entry(path.clone()).or_insert_with(|| json!({}));
        item[m.as_str()] = op;
    }
    let mut components = official["components"].clone();
    // Access tokens come from this server's own token endpoint.
    components["securitySchemes"]["ServiceAccounts"]["flows"]["clientCredentials"]["tokenUrl"] =
        json!("/api/oauth/token");
    // Atlas's errors carry their parameters as strings (`["cluster-1", "5f0a…"]`), as atrest's do;
    // the official schema says objects.
    components["schemas"]["ApiError"]["properties"]["parameters"]["items"] = json!({});
    for (name, schema) in atrest["components"]["schemas"].as_object().into_iter().flatten() {
        components["schemas"][name] = schema.clone();
    }
    json!({
        "openapi": official["openapi"],
        "info": {
            "title": "atrest Admin API",
            "version": "2.0",
            "description": format!(
                "The operations this atrest server serves, generated from its route table. Operations \
                 Atlas has are its official definitions (see x-extracted-from); the others are atrest's own. {}",
                atrest["info"]["description"].as_str().unwrap_or_default()
            ),
            "x-extracted-from": official["info"]["x-extracted-from"],
        },
        "security": [{"ServiceAccounts": []}, {"DigestAuth": []}],
        "tags": official["tags"],
        "paths": paths,
        "components": components,
    })
}

/// The definition of one served operation.
fn operation(official: &Value, atrest: &Value, method: &str, path: &str) -> Option<Value> {
    if let Some(rest) = path.strip_prefix(V1_PREFIX) {
        let mut op = operation(official, atrest, method, &format!("{V2_PREFIX}{rest}"))?;
        if let Some(id) = op["operationId"].as_str() {
            op["operationId"] = json!(format!("{id}V1"));
        }
        plain_json(&mut op, rest.contains("/clusters"));
        return Some(op);
    }
    let op = official["paths"][path][method].clone();
    let mut op = if op.is_object() { op } else { atrest["paths"][path][method].clone() };
    if !op.is_object() {
        return None;
    }
    // Every Admin API answer may be a rate-limit refusal.
    if (path.starts_with("/api/atlas/") || path.starts_with("/api/atrest/")) && op["responses"].get("429").is_none() {
        op["responses"]["429"] = json!({"$ref": "#/components/responses/tooManyRequests"});
    }
    let body = op.get_mut("requestBody").and_then(|b| b.get_mut("content")).and_then(Value::as_object_mut);
    for media in body.into_iter().flat_map(|c| c.values_mut()) {
        if media["schema"]["$ref"] == "#/components/schemas/EARPrivateEndpoint" {
            media["schema"]["$ref"] = json!("#/components/schemas/AWSKMSEARPrivateEndpoint");
        }
    }
    Some(op)
}

/// Every `content` map of an operation (request body and responses).
fn contents(op: &mut Value) -> Vec<&mut Map<String, Value>> {
    let mut out = Vec::new();
    let Some(obj) = op.as_object_mut() else { return out };
    for (k, v) in obj.iter_mut() {
        match k.as_str() {
            "requestBody" => out.extend(v.get_mut("content").and_then(Value::as_object_mut)),
            "responses" => {
                for r in v.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
                    if let Some(c) = r.get_mut("content").and_then(Value::as_object_mut) {
                        out.push(c);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// v1.0 speaks plain JSON: the newest versioned media type of each content (the oldest with
/// `oldest`) becomes `application/json`.
fn plain_json(op: &mut Value, oldest: bool) {
    for content in contents(op) {
        let versioned = content.keys().filter(|k| k.starts_with("application/vnd.atlas."));
        let chosen = if oldest { versioned.min() } else { versioned.max() }.cloned();
        if let Some(chosen) = chosen {
            let media = content.remove(&chosen).unwrap_or_default();
            content.retain(|k, _| !k.starts_with("application/vnd.atlas."));
            content.insert("application/json".into(), media);
        }
    }
}

pub(crate) async fn serve(who: Principal) -> ApiResult<Response> {
    who.require(atrest_core::roles::Operation::ReadApiDocument, None)?;
    Ok(conventions::ok(document().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_exactly_the_route_table() {
        let doc = document();
        let mut documented = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        let served: std::collections::BTreeSet<_> =
            crate::route_table().into_iter().map(|(m, p)| (m.to_owned(), p)).collect();
        assert_eq!(documented, served);
    }

    #[test]
    fn every_reference_resolves_and_operation_ids_are_unique() {
        let doc = document();
        let mut ids = std::collections::BTreeSet::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let id = op["operationId"].as_str().expect("operationId").to_owned();
                assert!(ids.insert(id.clone()), "operationId {id} twice");
            }
        }
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|x| refs(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(doc, &mut all);
        assert!(all.len() > 50);
        for r in all {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {r}"));
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
        }
    }

    #[test]
    fn official_operations_are_verbatim_and_adjustments_are_documented() {
        let doc = document();
        let official = parse(OFFICIAL, "subset");
        let p = "/api/atlas/v2/groups/{groupId}/encryptionAtRest";
        assert_eq!(doc["paths"][p]["patch"], official["paths"][p]["patch"]);
        let c = "/api/atlas/v2/groups/{groupId}/clusters";
        assert_eq!(doc["paths"][c]["get"], official["paths"][c]["get"]);
        let v1 = &doc["paths"]["/api/atlas/v1.0/groups/{groupId}/clusters/{clusterName}"]["get"];
        let legacy = &official["paths"][format!("{c}/{{clusterName}}")]["get"]["responses"]["200"]["content"]
            ["application/vnd.atlas.2023-01-01+json"];
        assert_eq!(v1["responses"]["200"]["content"]["application/json"], *legacy, "v1.0 clusters are legacy");
        assert!(doc["paths"]["/api/atlas/v2/groups"]["get"].get("requestBody").is_none());
        let v1 = &doc["paths"]["/api/atlas/v1.0/groups/{groupId}/encryptionAtRest"]["patch"];
        assert!(v1["requestBody"]["content"]["application/json"].is_object());
        assert_eq!(v1["operationId"], format!("{}V1", official["paths"][p]["patch"]["operationId"].as_str().unwrap()));
    }
}
