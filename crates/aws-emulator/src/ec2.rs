//! EC2 (ec2Query) subset for KMS interface VPC endpoints. Each endpoint gets its own loopback
//! listener; KMS requests arriving there carry `aws:SourceVpce` / `aws:SourceVpc`.

use crate::policy::{self, ContextKeys, Decision};
use crate::server::{ReqCtx, Shared};
use crate::state::{Endpoint, Inner};
use crate::wire::{esc, leaf, QueryError, EC2_NS};

type R<T> = Result<T, QueryError>;

/// Tag carrying the emulator-specific URL of the endpoint's listener.
pub const URL_TAG: &str = "atrest:endpoint-url";

fn param<'a>(params: &'a [(String, String)], k: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// Values of `Prefix.1`, `Prefix.2`, ... in index order.
fn list(params: &[(String, String)], prefix: &str) -> Vec<String> {
    let mut items: Vec<(u32, String)> = params
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(prefix)?.strip_prefix('.')?;
            rest.parse::<u32>().ok().map(|i| (i, v.clone()))
        })
        .collect();
    items.sort_by_key(|(i, _)| *i);
    items.into_iter().map(|(_, v)| v).collect()
}

/// `Filter.N.Name` / `Filter.N.Value.M`.
fn filters(params: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let mut out = vec![];
    for n in 1..=50u32 {
        let Some(name) = param(params, &format!("Filter.{n}.Name")) else {
            continue;
        };
        out.push((name.to_string(), list(params, &format!("Filter.{n}.Value"))));
    }
    out
}

fn tags(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = vec![];
    for n in 1..=10u32 {
        for m in 1..=50u32 {
            let Some(k) = param(params, &format!("TagSpecification.{n}.Tag.{m}.Key")) else {
                continue;
            };
            let v = param(params, &format!("TagSpecification.{n}.Tag.{m}.Value")).unwrap_or("");
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

pub fn endpoint_xml(e: &Endpoint) -> String {
    let mut s = String::new();
    s.push_str(&leaf("vpcEndpointId", &e.id));
    s.push_str(&leaf("vpcEndpointType", &e.endpoint_type));
    s.push_str(&leaf("vpcId", &e.vpc_id));
    s.push_str(&leaf("serviceName", &e.service_name));
    s.push_str(&leaf("state", &e.state));
    s.push_str("<routeTableIdSet/>");
    s.push_str("<subnetIdSet>");
    for sn in &e.subnet_ids {
        s.push_str(&leaf("item", sn));
    }
    s.push_str("</subnetIdSet><groupSet>");
    for g in &e.security_group_ids {
        s.push_str(&format!("<item>{}{}</item>", leaf("groupId", g), leaf("groupName", g)));
    }
    s.push_str("</groupSet>");
    s.push_str(&leaf("ipAddressType", "ipv4"));
    s.push_str(&leaf("privateDnsEnabled", &e.private_dns_enabled.to_string()));
    s.push_str(&leaf("requesterManaged", "false"));
    s.push_str("<networkInterfaceIdSet/>");
    s.push_str(&format!(
        "<dnsEntrySet><item>{}{}</item></dnsEntrySet>",
        leaf("dnsName", &e.dns_name),
        leaf("hostedZoneId", "Z7HUB22UULQXV")
    ));
    s.push_str(&leaf("creationTimestamp", &e.creation_timestamp));
    s.push_str("<tagSet>");
    let mut all_tags = e.tags.clone();
    if e.listens() {
        all_tags.push((URL_TAG.to_string(), e.url()));
    }
    for (k, v) in &all_tags {
        s.push_str(&format!("<item>{}{}</item>", leaf("key", k), leaf("value", v)));
    }
    s.push_str("</tagSet>");
    s.push_str(&leaf("ownerId", &e.owner_id));
    s
}

fn response(action: &str, request_id: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{EC2_NS}\"><requestId>{}</requestId>{body}</{action}Response>",
        esc(request_id)
    )
}

fn unsuccessful(items: &[(String, &str, String)]) -> String {
    let mut s = String::from("<unsuccessful>");
    for (id, code, msg) in items {
        s.push_str(&format!(
            "<item><error>{}{}</error>{}</item>",
            leaf("code", code),
            leaf("message", msg),
            leaf("resourceId", id)
        ));
    }
    s.push_str("</unsuccessful>");
    s
}

fn authorize(sh: &Shared, ctx: &ReqCtx, action: &str) -> R<()> {
    let inner = sh.inner();
    let ids = crate::kms::identity_policies(&inner, &ctx.caller);
    let keys = ContextKeys::new();
    let d = policy::authorize_identity(
        &ids,
        &policy::Request { caller: &ctx.caller, action, resource: "*", context: &keys },
    );
    if d == Decision::Allow {
        Ok(())
    } else {
        Err(QueryError::new(
            403,
            "UnauthorizedOperation",
            format!("You are not authorized to perform this operation ({action})."),
        ))
    }
}

/// Decide where a `pending` endpoint goes once it is ready. Returns the new state.
pub fn settle_endpoint(inner: &mut Inner, id: &str, acceptance_default: bool) -> Option<&'static str> {
    let settings = inner.state.settings.clone();
    let e = inner.state.endpoints.get_mut(id)?;
    if e.state != "pending" {
        return None;
    }
    let next = if settings.unavailable_regions.contains(&e.region) {
        "failed"
    } else if acceptance_default
        || settings.acceptance_required.contains(&e.region)
        || settings.acceptance_required.contains("*")
    {
        "pendingAcceptance"
    } else {
        "available"
    };
    e.state = next.to_string();
    e.ready_at = None;
    if let Err(err) = inner.save_endpoint(id) {
        tracing::error!(error = %err, "failed to persist endpoint state");
    }
    tracing::info!(endpoint = %id, state = next, "vpc endpoint settled");
    Some(next)
}

pub fn handle(sh: &Shared, ctx: &ReqCtx, action: &str, params: &[(String, String)]) -> R<String> {
    authorize(sh, ctx, &format!("ec2:{action}"))?;
    let body = match action {
        "CreateVpcEndpoint" => create(sh, ctx, params)?,
        "DescribeVpcEndpoints" => {
            let ids = list(params, "VpcEndpointId");
            let filters = filters(params);
            let inner = sh.inner();
            for id in &ids {
                let visible = inner.state.endpoints.get(id).map(|e| e.owner_id == ctx.caller.account).unwrap_or(false);
                if !visible {
                    return Err(QueryError::new(
                        400,
                        "InvalidVpcEndpointId.NotFound",
                        format!("The Vpc Endpoint Id '{id}' does not exist"),
                    ));
                }
            }
            let mut s = String::from("<vpcEndpointSet>");
            for e in inner.state.endpoints.values() {
                if e.owner_id != ctx.caller.account || e.region != ctx.region {
                    continue;
                }
                if !ids.is_empty() && !ids.contains(&e.id) {
                    continue;
                }
                let pass = filters.iter().all(|(name, vals)| {
                    let field = match name.as_str() {
                        "vpc-endpoint-id" => &e.id,
                        "vpc-endpoint-state" => &e.state,
                        "vpc-id" => &e.vpc_id,
                        "service-name" => &e.service_name,
                        "vpc-endpoint-type" => &e.endpoint_type,
                        _ => return true,
                    };
                    vals.iter().any(|v| v.eq_ignore_ascii_case(field))
                });
                if pass {
                    s.push_str(&format!("<item>{}</item>", endpoint_xml(e)));
                }
            }
            s.push_str("</vpcEndpointSet>");
            s
        }
        "DescribeVpcEndpointConnections" => {
            let inner = sh.inner();
            let mut s = String::from("<vpcEndpointConnectionSet>");
            for e in inner.state.endpoints.values() {
                if e.region != ctx.region || e.state == "deleted" {
                    continue;
                }
                s.push_str(&format!(
                    "<item>{}{}{}{}{}</item>",
                    leaf("serviceId", &service_id(&e.region)),
                    leaf("vpcEndpointId", &e.id),
                    leaf("vpcEndpointOwner", &e.owner_id),
                    leaf("vpcEndpointState", &e.state),
                    leaf("creationTimestamp", &e.creation_timestamp),
                ));
            }
            s.push_str("</vpcEndpointConnectionSet>");
            s
        }
        "DescribeVpcEndpointServices" => {
            let name = format!("com.amazonaws.{}.kms", ctx.region);
            format!(
                "<serviceNameSet>{}</serviceNameSet><serviceDetailSet><item>{}{}<serviceType><item><serviceType>Interface</serviceType></item></serviceType>{}{}</item></serviceDetailSet>",
                leaf("item", &name),
                leaf("serviceName", &name),
                leaf("serviceId", &service_id(&ctx.region)),
                leaf("owner", "amazon"),
                leaf("acceptanceRequired", "false"),
            )
        }
        "DeleteVpcEndpoints" => {
            let ids = list(params, "VpcEndpointId");
            if ids.is_empty() {
                return Err(QueryError::new(
                    400,
                    "MissingParameter",
                    "The request must contain the parameter VpcEndpointId",
                ));
            }
            let mut failed = vec![];
            let mut inner = sh.inner();
            for id in ids {
                match inner.state.endpoints.get_mut(&id) {
                    Some(e) if e.owner_id == ctx.caller.account && e.state != "deleted" => {
                        e.state = "deleted".into();
                        e.ready_at = None;
                        sh.stop_endpoint_listener(&id);
                        inner.save_endpoint(&id).map_err(|_| QueryError::internal())?;
                    }
                    _ => failed.push((
                        id.clone(),
                        "InvalidVpcEndpoint.NotFound",
                        format!("The Vpc Endpoint Id '{id}' does not exist"),
                    )),
                }
            }
            unsuccessful(&failed)
        }
        "AcceptVpcEndpointConnections" | "RejectVpcEndpointConnections" => {
            let service = param(params, "ServiceId").ok_or_else(|| QueryError::missing("ServiceId"))?;
            let ids = list(params, "VpcEndpointId");
            if ids.is_empty() {
                return Err(QueryError::missing("VpcEndpointId"));
            }
            let accept = action == "AcceptVpcEndpointConnections";
            let mut failed = vec![];
            let mut inner = sh.inner();
            for id in ids {
                let Some(e) = inner.state.endpoints.get_mut(&id) else {
                    failed.push((
                        id.clone(),
                        "InvalidVpcEndpoint.NotFound",
                        format!("The Vpc Endpoint Id '{id}' does not exist"),
                    ));
                    continue;
                };
                if service != service_id(&e.region) && service != e.service_name {
                    failed.push((
                        id.clone(),
                        "InvalidVpcEndpointService.NotFound",
                        format!("The endpoint {id} does not connect to service {service}"),
                    ));
                    continue;
                }
                let ok = if accept {
                    matches!(e.state.as_str(), "pendingAcceptance" | "rejected" | "available")
                } else {
                    matches!(e.state.as_str(), "pendingAcceptance" | "available" | "rejected")
                };
                if !ok {
                    failed.push((id.clone(), "InvalidState", format!("Endpoint {id} is in state {}", e.state)));
                    continue;
                }
                if accept {
                    e.state = "available".into();
                    let (vpc, port) = (e.vpc_id.clone(), e.port);
                    match sh.start_endpoint_listener(&id, &vpc, port) {
                        Ok(p) => {
                            if let Some(e) = inner.state.endpoints.get_mut(&id) {
                                e.port = p;
                            }
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "cannot bind endpoint listener");
                            return Err(QueryError::internal());
                        }
                    }
                } else {
                    e.state = "rejected".into();
                    sh.stop_endpoint_listener(&id);
                }
                inner.save_endpoint(&id).map_err(|_| QueryError::internal())?;
            }
            unsuccessful(&failed)
        }
        other => {
            return Err(QueryError::new(
                400,
                "InvalidAction",
                format!("The action {other} is not valid for this web service."),
            ))
        }
    };
    Ok(response(action, &ctx.request_id, &body))
}

/// The (deterministic) service id of `com.amazonaws.<region>.kms`.
pub fn service_id(region: &str) -> String {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(format!("kms/{region}").as_bytes()));
    format!("vpce-svc-{}", &h[..17])
}

fn create(sh: &Shared, ctx: &ReqCtx, params: &[(String, String)]) -> R<String> {
    let vpc_id = param(params, "VpcId").ok_or_else(|| QueryError::missing("VpcId"))?;
    if !vpc_id.starts_with("vpc-") || vpc_id.len() < 8 || vpc_id.len() > 32 {
        return Err(QueryError::new(
            400,
            "InvalidVpcId.Malformed",
            format!("Invalid Id: '{vpc_id}' (expecting 'vpc-...')"),
        ));
    }
    let service_name = param(params, "ServiceName").ok_or_else(|| QueryError::missing("ServiceName"))?;
    let expected = format!("com.amazonaws.{}.kms", ctx.region);
    if service_name != expected {
        return Err(QueryError::new(
            400,
            "InvalidServiceName",
            format!("The Vpc Endpoint Service '{service_name}' does not exist (this emulator offers {expected})"),
        ));
    }
    let endpoint_type = param(params, "VpcEndpointType").unwrap_or("Gateway");
    if endpoint_type != "Interface" {
        return Err(QueryError::new(
            400,
            "InvalidParameter",
            format!("The Vpc Endpoint Service '{service_name}' does not support endpoint type {endpoint_type}"),
        ));
    }
    let client_token = param(params, "ClientToken").map(str::to_string);
    let subnets = list(params, "SubnetId");
    let groups = list(params, "SecurityGroupId");
    let private_dns = param(params, "PrivateDnsEnabled") == Some("true");
    let mut inner = sh.inner();
    if let Some(token) = &client_token {
        if let Some(e) = inner
            .state
            .endpoints
            .values()
            .find(|e| e.owner_id == ctx.caller.account && e.client_token.as_ref() == Some(token))
        {
            if e.vpc_id != vpc_id || e.service_name != service_name {
                return Err(QueryError::new(
                    400,
                    "IdempotentParameterMismatch",
                    "The client token has already been used with different parameters",
                ));
            }
            return Ok(format!("<vpcEndpoint>{}</vpcEndpoint>{}", endpoint_xml(e), leaf("clientToken", token)));
        }
    }
    let id = crate::ids::vpce_id();
    let port = sh.start_endpoint_listener(&id, vpc_id, 0).map_err(|err| {
        tracing::error!(error = %err, "cannot bind endpoint listener");
        QueryError::internal()
    })?;
    let e = Endpoint {
        id: id.clone(),
        owner_id: ctx.caller.account.clone(),
        region: ctx.region.clone(),
        vpc_id: vpc_id.to_string(),
        service_name: service_name.to_string(),
        endpoint_type: "Interface".into(),
        state: "pending".into(),
        client_token: client_token.clone(),
        creation_timestamp: crate::wire::iso8601(ctx.now),
        ready_at: Some(crate::server::real_now() + sh.cfg.endpoint_ready_delay.as_secs_f64()),
        port,
        dns_name: format!("{id}-{}.kms.{}.vpce.amazonaws.com", crate::ids::dns_suffix(), ctx.region),
        subnet_ids: subnets,
        security_group_ids: groups,
        private_dns_enabled: private_dns,
        tags: tags(params),
    };
    inner.state.endpoints.insert(id.clone(), e);
    inner.save_endpoint(&id).map_err(|_| QueryError::internal())?;
    if sh.cfg.endpoint_ready_delay.is_zero()
        && settle_endpoint(&mut inner, &id, sh.cfg.endpoint_acceptance_required) == Some("failed")
    {
        sh.stop_endpoint_listener(&id);
    }
    let e = inner.state.endpoints.get(&id).ok_or_else(QueryError::internal)?;
    let mut out = format!("<vpcEndpoint>{}</vpcEndpoint>", endpoint_xml(e));
    if let Some(t) = client_token {
        out.push_str(&leaf("clientToken", &t));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_lists() {
        let p: Vec<(String, String)> = [
            ("VpcEndpointId.2", "b"),
            ("VpcEndpointId.1", "a"),
            ("VpcEndpointId.x", "z"),
            ("Filter.1.Name", "vpc-id"),
            ("Filter.1.Value.1", "vpc-1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(list(&p, "VpcEndpointId"), vec!["a", "b"]);
        assert_eq!(filters(&p), vec![("vpc-id".to_string(), vec!["vpc-1".to_string()])]);
        assert!(service_id("us-east-1").starts_with("vpce-svc-"));
    }
}
