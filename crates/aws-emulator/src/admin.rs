//! Admin API (`/_emulator/...`), served only on the emulator's own listener. See README.md.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::faults::FaultRule;
use crate::server::Shared;
use crate::state::Account;
use crate::wire::{self, Resp};

fn ok(request_id: &str, v: Value) -> Resp {
    wire::json(200, request_id, &v)
}

fn bad(request_id: &str, status: u16, msg: impl Into<String>) -> Resp {
    wire::json(status, request_id, &json!({"error": msg.into()}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewAccount {
    name: String,
    #[serde(default)]
    account_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Clock {
    advance_seconds: i64,
}

pub async fn handle(sh: &Shared, parts: &http::request::Parts, body: &[u8], rid: &str) -> Resp {
    let path = parts.uri.path().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').skip(2).collect(); // after "/_emulator"
    let method = parts.method.as_str();
    match (method, segments.as_slice()) {
        ("GET", ["health"]) => ok(rid, json!({"status": "ok", "url": sh.url})),
        ("GET", ["accounts"]) => ok(rid, json!({"accounts": sh.accounts()})),
        ("GET", ["secrets"]) => match sh.secrets_seen() {
            Some(secrets) => ok(rid, json!({"secrets": secrets})),
            None => {
                bad(rid, 404, "secrets are recorded only when the emulator starts with ATREST_AWS_RECORD_SECRETS=1")
            }
        },
        ("POST", ["accounts"]) => {
            let req: NewAccount = match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => return bad(rid, 400, e.to_string()),
            };
            if req.name.is_empty() || !req.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return bad(rid, 400, "name must be [A-Za-z0-9_-]+");
            }
            if let Some(id) = &req.account_id {
                if !crate::ids::is_account_id(id) {
                    return bad(rid, 400, "accountId must be 12 digits");
                }
            }
            let created = {
                let mut g = sh.inner();
                if g.state.accounts.iter().any(|a| a.name == req.name || Some(&a.account_id) == req.account_id.as_ref())
                {
                    return bad(rid, 409, "account already exists");
                }
                let a = Account {
                    name: req.name.clone(),
                    account_id: req.account_id.unwrap_or_else(crate::ids::account_id),
                    access_key_id: crate::ids::root_access_key_id(),
                    secret_access_key: crate::ids::secret_access_key(),
                    created: crate::server::real_now(),
                };
                if let Err(e) = g.save_account(&a) {
                    return bad(rid, 500, e.to_string());
                }
                g.state.accounts.push(a.clone());
                Shared::account_credentials(&a)
            };
            if let Err(e) = sh.write_credentials_file() {
                return bad(rid, 500, e.to_string());
            }
            ok(rid, json!(created))
        }
        ("GET", ["requests"]) => {
            let counters = sh.counters.lock().map(|c| c.clone()).unwrap_or_default();
            let mut by_address = serde_json::Map::new();
            let mut by_service = serde_json::Map::new();
            let mut entries = vec![];
            for ((addr, svc, op), n) in counters {
                let a = by_address.entry(addr.clone()).or_insert(json!(0));
                *a = json!(a.as_u64().unwrap_or(0) + n);
                let s = by_service
                    .entry(svc.clone())
                    .or_insert(json!({}))
                    .as_object_mut()
                    .map(|m| m.entry(addr.clone()).or_insert(json!(0)));
                if let Some(s) = s {
                    *s = json!(s.as_u64().unwrap_or(0) + n);
                }
                entries.push(json!({"address": addr, "service": svc, "operation": op, "count": n}));
            }
            ok(rid, json!({"byAddress": by_address, "byService": by_service, "requests": entries}))
        }
        ("DELETE", ["requests"]) => {
            if let Ok(mut c) = sh.counters.lock() {
                c.clear();
            }
            ok(rid, json!({}))
        }
        ("GET", ["faults"]) => ok(rid, json!({"faults": sh.faults().list()})),
        ("POST", ["faults"]) => match serde_json::from_slice::<FaultRule>(body) {
            Ok(rule) => ok(rid, json!(sh.faults().add(rule))),
            Err(e) => bad(rid, 400, e.to_string()),
        },
        ("DELETE", ["faults"]) => {
            sh.faults().clear();
            ok(rid, json!({}))
        }
        ("DELETE", ["faults", id]) => match id.parse::<u64>() {
            Ok(id) if sh.faults().remove(id) => ok(rid, json!({})),
            _ => bad(rid, 404, "no such fault"),
        },
        (m @ ("POST" | "DELETE"), ["regions", region, what @ ("unavailable" | "acceptance-required")]) => {
            if !crate::ids::is_region(region) && *region != "*" {
                return bad(rid, 400, "invalid region");
            }
            let mut g = sh.inner();
            let set = if *what == "unavailable" {
                &mut g.state.settings.unavailable_regions
            } else {
                &mut g.state.settings.acceptance_required
            };
            if m == "POST" {
                set.insert(region.to_string());
            } else {
                set.remove(*region);
            }
            if let Err(e) = g.save_settings() {
                return bad(rid, 500, e.to_string());
            }
            ok(rid, json!(g.state.settings))
        }
        ("GET", ["regions"]) => ok(rid, json!(sh.inner().state.settings)),
        ("GET", ["clock"]) => ok(
            rid,
            json!({"now": sh.now(), "offsetSeconds": sh.clock_offset.load(std::sync::atomic::Ordering::SeqCst)}),
        ),
        ("POST", ["clock"]) => {
            let req: Clock = match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => return bad(rid, 400, e.to_string()),
            };
            if req.advance_seconds < 0 {
                return bad(rid, 400, "time only moves forward");
            }
            let offset = sh.clock_offset.fetch_add(req.advance_seconds, std::sync::atomic::Ordering::SeqCst)
                + req.advance_seconds;
            {
                let mut g = sh.inner();
                g.state.settings.clock_offset_secs = offset;
                if let Err(e) = g.save_settings() {
                    return bad(rid, 500, e.to_string());
                }
            }
            sh.tick();
            ok(rid, json!({"now": sh.now(), "offsetSeconds": offset}))
        }
        ("GET", ["endpoints"]) => {
            let g = sh.inner();
            let list: Vec<Value> = g
                .state
                .endpoints
                .values()
                .map(|e| {
                    json!({
                        "vpcEndpointId": e.id, "state": e.state, "region": e.region,
                        "vpcId": e.vpc_id, "ownerId": e.owner_id, "dnsName": e.dns_name,
                        "url": if e.listens() { Some(e.url()) } else { None },
                        "serviceId": crate::ec2::service_id(&e.region),
                    })
                })
                .collect();
            ok(rid, json!({"endpoints": list}))
        }
        ("POST", ["tick"]) => {
            sh.tick();
            ok(rid, json!({}))
        }
        _ => bad(rid, 404, format!("no admin route {method} {path}")),
    }
}
