//! IAM over awsQuery (roles, trust policies and inline role policies).

use crate::policy::{self, ContextKeys, Decision, PolicyKind};
use crate::server::{ReqCtx, Shared};
use crate::state::{Role, TrustVersion};
use crate::wire::{leaf, query_response, QueryError, IAM_NS};

type R<T> = Result<T, QueryError>;

const ENCODE_SET: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// IAM returns policy documents URL-encoded.
fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, ENCODE_SET).to_string()
}

fn param<'a>(params: &'a [(String, String)], k: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn required<'a>(params: &'a [(String, String)], k: &str) -> R<&'a str> {
    param(params, k).ok_or_else(|| {
        QueryError::validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(k)
        ))
    })
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn valid_name(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

fn no_such_role(name: &str) -> QueryError {
    QueryError::new(404, "NoSuchEntity", format!("The role with name {name} cannot be found."))
}

fn malformed(e: policy::PolicyError) -> QueryError {
    QueryError::new(400, "MalformedPolicyDocument", e.0)
}

fn role_xml(r: &Role) -> String {
    let mut s = String::from("<Role>");
    s.push_str(&leaf("Path", &r.path));
    s.push_str(&leaf("RoleName", &r.name));
    s.push_str(&leaf("RoleId", &r.role_id));
    s.push_str(&leaf("Arn", &r.arn));
    s.push_str(&leaf("CreateDate", &r.create_date));
    if let Some(doc) = r.current_trust() {
        s.push_str(&leaf("AssumeRolePolicyDocument", &url_encode(doc)));
    }
    if let Some(d) = &r.description {
        s.push_str(&leaf("Description", d));
    }
    s.push_str(&leaf("MaxSessionDuration", &r.max_session_duration.to_string()));
    s.push_str("</Role>");
    s
}

fn authorize(sh: &Shared, ctx: &ReqCtx, action: &str, resource: &str) -> R<()> {
    let inner = sh.inner();
    let ids = crate::kms::identity_policies(&inner, &ctx.caller);
    let keys = ContextKeys::new();
    let d =
        policy::authorize_identity(&ids, &policy::Request { caller: &ctx.caller, action, resource, context: &keys });
    if d == Decision::Allow {
        Ok(())
    } else {
        Err(QueryError::new(
            403,
            "AccessDenied",
            format!("User: {} is not authorized to perform: {action} on resource: {resource}", ctx.caller.arn),
        ))
    }
}

pub fn handle(sh: &Shared, ctx: &ReqCtx, action: &str, params: &[(String, String)]) -> R<String> {
    let account = ctx.caller.account.clone();
    let role_name = param(params, "RoleName").unwrap_or("").to_string();
    let role_arn_guess = format!("arn:aws:iam::{account}:role/{role_name}");
    let iam_action = format!("iam:{action}");
    let result = match action {
        "CreateRole" => {
            let name = required(params, "RoleName")?;
            if !valid_name(name, 64) {
                return Err(QueryError::validation(format!(
                    "1 validation error detected: Value '{name}' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
                )));
            }
            let path = param(params, "Path").unwrap_or("/");
            if !path.starts_with('/') || !path.ends_with('/') || path.len() > 512 {
                return Err(QueryError::validation(
                    "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.",
                ));
            }
            let doc = required(params, "AssumeRolePolicyDocument")?;
            policy::parse(doc, PolicyKind::Resource).map_err(malformed)?;
            let max = match param(params, "MaxSessionDuration") {
                Some(m) => m
                    .parse::<u32>()
                    .ok()
                    .filter(|m| (3600..=43200).contains(m))
                    .ok_or_else(|| {
                        QueryError::validation(
                            "1 validation error detected: Value at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200",
                        )
                    })?,
                None => 3600,
            };
            let arn = format!("arn:aws:iam::{account}:role{path}{name}");
            authorize(sh, ctx, &iam_action, &arn)?;
            let mut inner = sh.inner();
            let key = (account.clone(), name.to_string());
            if inner.state.roles.contains_key(&key) {
                return Err(QueryError::new(
                    409,
                    "EntityAlreadyExists",
                    format!("Role with name {name} already exists."),
                ));
            }
            let role = Role {
                account_id: account.clone(),
                name: name.to_string(),
                path: path.to_string(),
                role_id: crate::ids::role_id(),
                arn,
                create_date: crate::wire::iso8601(ctx.now),
                description: param(params, "Description").map(str::to_string),
                max_session_duration: max,
                trust: vec![TrustVersion {
                    effective_at: ctx.now + sh.cfg.iam_propagation_delay.as_secs_f64(),
                    document: doc.to_string(),
                }],
                policies: Default::default(),
            };
            let xml = role_xml(&role);
            inner.state.roles.insert(key, role);
            inner.save_role(&account, name).map_err(|_| QueryError::internal())?;
            Some(xml)
        }
        "GetRole" => {
            let name = required(params, "RoleName")?;
            authorize(sh, ctx, &iam_action, &role_arn_guess)?;
            let inner = sh.inner();
            let r = inner.state.roles.get(&(account.clone(), name.to_string())).ok_or_else(|| no_such_role(name))?;
            Some(role_xml(r))
        }
        "ListRoles" => {
            authorize(sh, ctx, &iam_action, "*")?;
            let inner = sh.inner();
            let members: String = inner
                .state
                .roles
                .values()
                .filter(|r| r.account_id == account)
                .map(|r| format!("<member>{}</member>", &role_xml(r)[6..role_xml(r).len() - 7]))
                .collect();
            Some(format!("<Roles>{members}</Roles><IsTruncated>false</IsTruncated>"))
        }
        "DeleteRole" => {
            let name = required(params, "RoleName")?;
            authorize(sh, ctx, &iam_action, &role_arn_guess)?;
            let mut inner = sh.inner();
            let key = (account.clone(), name.to_string());
            let r = inner.state.roles.get(&key).ok_or_else(|| no_such_role(name))?;
            if !r.policies.is_empty() {
                return Err(QueryError::new(
                    409,
                    "DeleteConflict",
                    "Cannot delete entity, must delete policies first.",
                ));
            }
            inner.state.roles.remove(&key);
            inner.save_role(&account, name).map_err(|_| QueryError::internal())?;
            None
        }
        "UpdateAssumeRolePolicy" => {
            let name = required(params, "RoleName")?;
            let doc = required(params, "PolicyDocument")?;
            policy::parse(doc, PolicyKind::Resource).map_err(malformed)?;
            authorize(sh, ctx, &iam_action, &role_arn_guess)?;
            let mut inner = sh.inner();
            let r =
                inner.state.roles.get_mut(&(account.clone(), name.to_string())).ok_or_else(|| no_such_role(name))?;
            // Keep the newest version already visible, then append the new one.
            let now = ctx.now;
            let visible = r.trust.iter().rposition(|t| t.effective_at <= now);
            if let Some(i) = visible {
                r.trust.drain(..i);
            }
            r.trust.push(TrustVersion {
                effective_at: now + sh.cfg.iam_propagation_delay.as_secs_f64(),
                document: doc.to_string(),
            });
            inner.save_role(&account, name).map_err(|_| QueryError::internal())?;
            None
        }
        "PutRolePolicy" => {
            let name = required(params, "RoleName")?;
            let policy_name = required(params, "PolicyName")?;
            if !valid_name(policy_name, 128) {
                return Err(QueryError::validation(format!("Invalid policy name {policy_name}")));
            }
            let doc = required(params, "PolicyDocument")?;
            policy::parse(doc, PolicyKind::Identity).map_err(malformed)?;
            authorize(sh, ctx, &iam_action, &role_arn_guess)?;
            let mut inner = sh.inner();
            let r =
                inner.state.roles.get_mut(&(account.clone(), name.to_string())).ok_or_else(|| no_such_role(name))?;
            r.policies.insert(policy_name.to_string(), doc.to_string());
            inner.save_role(&account, name).map_err(|_| QueryError::internal())?;
            None
        }
        "GetRolePolicy" | "DeleteRolePolicy" => {
            let name = required(params, "RoleName")?;
            let policy_name = required(params, "PolicyName")?;
            authorize(sh, ctx, &iam_action, &role_arn_guess)?;
            let mut inner = sh.inner();
            let r =
                inner.state.roles.get_mut(&(account.clone(), name.to_string())).ok_or_else(|| no_such_role(name))?;
            let missing = || {
                QueryError::new(
                    404,
                    "NoSuchEntity",
                    format!("The role policy with name {policy_name} cannot be found."),
                )
            };
            if action == "GetRolePolicy" {
                let doc = r.policies.get(policy_name).ok_or_else(missing)?;
                Some(format!(
                    "{}{}{}",
                    leaf("RoleName", name),
                    leaf("PolicyName", policy_name),
                    leaf("PolicyDocument", &url_encode(doc))
                ))
            } else {
                r.policies.remove(policy_name).ok_or_else(missing)?;
                inner.save_role(&account, name).map_err(|_| QueryError::internal())?;
                None
            }
        }
        "ListRolePolicies" => {
            let name = required(params, "RoleName")?;
            authorize(sh, ctx, &iam_action, &role_arn_guess)?;
            let inner = sh.inner();
            let r = inner.state.roles.get(&(account.clone(), name.to_string())).ok_or_else(|| no_such_role(name))?;
            let members: String = r.policies.keys().map(|p| leaf("member", p)).collect();
            Some(format!("<PolicyNames>{members}</PolicyNames><IsTruncated>false</IsTruncated>"))
        }
        other => {
            return Err(QueryError::new(
                400,
                "InvalidAction",
                format!("Could not find operation {other} for version 2010-05-08"),
            ))
        }
    };
    Ok(query_response(IAM_NS, action, result.as_deref(), &ctx.request_id))
}
