//! IAM policy language: parsing (with validation) and evaluation, as pure functions.
//!
//! Evaluation follows AWS: an explicit `Deny` wins over any `Allow`, and without an `Allow` the
//! request is implicitly denied. A resource policy (KMS key policy, IAM role trust policy) and the
//! caller's identity policies (the inline policies of the caller's role) are combined by
//! [`authorize`]:
//!
//! * a resource-policy statement that names the caller (its role ARN, its session ARN, or `*`)
//!   grants access on its own inside the resource's account; across accounts the caller's
//!   identity policies must allow it too;
//! * a statement that names the caller's *account* (`arn:aws:iam::ACCT:root` or `ACCT`) delegates
//!   to the account: the caller's identity policies must allow the request (the account root
//!   itself needs nothing more).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(msg.into()))
}

/// What a policy document is attached to; decides whether `Principal` is required or forbidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// KMS key policy or IAM trust policy: every statement names a principal.
    Resource,
    /// Identity (role inline) policy: no principal, a resource is required.
    Identity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principals {
    pub any: bool,
    pub aws: Vec<String>,
    pub service: Vec<String>,
    pub federated: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// `(principals, negated)`: `NotPrincipal` when negated.
    pub principal: Option<(Principals, bool)>,
    /// `(patterns, negated)`: `NotAction` when negated.
    pub action: (Vec<String>, bool),
    /// `(patterns, negated)`: `NotResource` when negated; `None` means any resource.
    pub resource: Option<(Vec<String>, bool)>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Whether any statement has a condition, i.e. whether evaluating it reads context keys.
    pub fn has_conditions(&self) -> bool {
        self.statements.iter().any(|s| !s.conditions.is_empty())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    Bool,
    IpAddress,
    NotIpAddress,
    Null,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
}

impl Operator {
    fn parse(name: &str) -> Option<Operator> {
        use Operator::*;
        Some(match name {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "ArnEquals" => ArnEquals,
            "ArnNotEquals" => ArnNotEquals,
            "ArnLike" => ArnLike,
            "ArnNotLike" => ArnNotLike,
            "Bool" => Bool,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "Null" => Null,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            _ => return None,
        })
    }

    fn negated(self) -> bool {
        use Operator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | ArnNotEquals
                | ArnNotLike
                | NotIpAddress
                | NumericNotEquals
        )
    }

    /// The positive test of one context value against one policy value.
    fn test(self, policy_value: &str, ctx_value: &str) -> bool {
        use Operator::*;
        match self {
            StringEquals | StringNotEquals | ArnEquals | ArnNotEquals => policy_value == ctx_value,
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => policy_value.eq_ignore_ascii_case(ctx_value),
            StringLike | StringNotLike => glob(policy_value, ctx_value, false),
            ArnLike | ArnNotLike => arn_like(policy_value, ctx_value),
            Bool => policy_value.eq_ignore_ascii_case(ctx_value),
            IpAddress | NotIpAddress => ip_in(policy_value, ctx_value),
            Null => false, // handled separately
            NumericEquals | NumericNotEquals => num(ctx_value, policy_value, |a, b| a == b),
            NumericLessThan => num(ctx_value, policy_value, |a, b| a < b),
            NumericLessThanEquals => num(ctx_value, policy_value, |a, b| a <= b),
            NumericGreaterThan => num(ctx_value, policy_value, |a, b| a > b),
            NumericGreaterThanEquals => num(ctx_value, policy_value, |a, b| a >= b),
        }
    }
}

fn num(a: &str, b: &str, f: impl Fn(f64, f64) -> bool) -> bool {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(a), Ok(b)) => f(a, b),
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperator {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: Operator,
    pub set: SetOperator,
    pub if_exists: bool,
    /// Condition key, lower-cased (keys are case-insensitive).
    pub key: String,
    pub values: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for i in items {
                match i {
                    Value::String(s) => out.push(s.clone()),
                    _ => return err(format!("{what} must be a string or an array of strings")),
                }
            }
            if out.is_empty() {
                return err(format!("{what} must not be empty"));
            }
            Ok(out)
        }
        _ => err(format!("{what} must be a string or an array of strings")),
    }
}

fn condition_values(v: &Value) -> Result<Vec<String>, PolicyError> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    match v {
        Value::Array(items) => {
            items.iter().map(|i| scalar(i).ok_or_else(|| PolicyError("invalid condition value".into()))).collect()
        }
        other => scalar(other).map(|s| vec![s]).ok_or_else(|| PolicyError("invalid condition value".into())),
    }
}

fn valid_aws_principal(p: &str) -> bool {
    if p == "*" || crate::ids::is_account_id(p) {
        return true;
    }
    let parts: Vec<&str> = p.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && (parts[2] == "iam" || parts[2] == "sts")
        && crate::ids::is_account_id(parts[4])
        && !parts[5].is_empty()
}

fn parse_principal(v: &Value) -> Result<Principals, PolicyError> {
    let mut p = Principals { any: false, aws: vec![], service: vec![], federated: vec![] };
    match v {
        Value::String(s) if s == "*" => p.any = true,
        Value::Object(map) => {
            if map.is_empty() {
                return err("Principal must not be empty");
            }
            for (k, val) in map {
                let list = strings(val, "Principal")?;
                match k.as_str() {
                    "AWS" => {
                        for a in &list {
                            if !valid_aws_principal(a) {
                                return err(format!("Invalid principal in policy: \"AWS\":\"{a}\""));
                            }
                        }
                        p.aws.extend(list)
                    }
                    "Service" => p.service.extend(list),
                    "Federated" => p.federated.extend(list),
                    "CanonicalUser" => {}
                    other => return err(format!("Invalid principal type {other}")),
                }
            }
        }
        _ => return err("Principal must be \"*\" or an object"),
    }
    Ok(p)
}

fn parse_conditions(v: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(ops) = v else {
        return err("Condition must be an object");
    };
    let mut out = vec![];
    for (op_name, block) in ops {
        let (set, rest) = if let Some(r) = op_name.strip_prefix("ForAnyValue:") {
            (SetOperator::ForAnyValue, r)
        } else if let Some(r) = op_name.strip_prefix("ForAllValues:") {
            (SetOperator::ForAllValues, r)
        } else {
            (SetOperator::Single, op_name.as_str())
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let operator =
            Operator::parse(base).ok_or_else(|| PolicyError(format!("Unsupported condition operator: {op_name}")))?;
        if operator == Operator::Null && (if_exists || set != SetOperator::Single) {
            return err(format!("Unsupported condition operator: {op_name}"));
        }
        let Value::Object(keys) = block else {
            return err(format!("Condition operator {op_name} must map keys to values"));
        };
        if keys.is_empty() {
            return err(format!("Condition operator {op_name} has no keys"));
        }
        for (key, vals) in keys {
            if key.is_empty() || !key.contains(':') {
                return err(format!("Invalid condition key: {key}"));
            }
            out.push(Condition {
                operator,
                set,
                if_exists,
                key: key.to_ascii_lowercase(),
                values: condition_values(vals)?,
            });
        }
    }
    Ok(out)
}

fn parse_statement(v: &Value, kind: PolicyKind) -> Result<Statement, PolicyError> {
    let Value::Object(m) = v else {
        return err("Statement must be an object");
    };
    for k in m.keys() {
        if !matches!(
            k.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return err(format!("Unknown field {k}"));
        }
    }
    let sid = match m.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return err("Sid must be a string"),
    };
    let effect = match m.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return err("Effect must be \"Allow\" or \"Deny\""),
    };
    let principal = match (m.get("Principal"), m.get("NotPrincipal")) {
        (Some(_), Some(_)) => return err("Principal and NotPrincipal are exclusive"),
        (Some(p), None) => Some((parse_principal(p)?, false)),
        (None, Some(p)) => Some((parse_principal(p)?, true)),
        (None, None) => None,
    };
    match kind {
        PolicyKind::Resource if principal.is_none() => return err("Policy statement must contain a principal"),
        PolicyKind::Identity if principal.is_some() => return err("Policy document should not specify a principal"),
        _ => {}
    }
    let action = match (m.get("Action"), m.get("NotAction")) {
        (Some(a), None) => (strings(a, "Action")?, false),
        (None, Some(a)) => (strings(a, "NotAction")?, true),
        _ => return err("Statement must contain exactly one of Action and NotAction"),
    };
    for a in &action.0 {
        if a != "*" && !a.contains(':') {
            return err(format!("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc. ({a})"));
        }
    }
    let resource = match (m.get("Resource"), m.get("NotResource")) {
        (Some(r), None) => Some((strings(r, "Resource")?, false)),
        (None, Some(r)) => Some((strings(r, "NotResource")?, true)),
        (None, None) => None,
        _ => return err("Resource and NotResource are exclusive"),
    };
    if kind == PolicyKind::Identity && resource.is_none() {
        return err("Policy statement must contain resources.");
    }
    let conditions = match m.get("Condition") {
        Some(c) => parse_conditions(c)?,
        None => vec![],
    };
    Ok(Statement { sid, effect, principal, action, resource, conditions })
}

/// Parse and validate a policy document. Unsupported condition operators are refused.
pub fn parse(document: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
    if document.len() > 32 * 1024 {
        return err("Policy document is too large");
    }
    let v: Value = serde_json::from_str(document).map_err(|e| PolicyError(format!("Syntax errors in policy: {e}")))?;
    let Value::Object(m) = &v else {
        return err("Policy must be a JSON object");
    };
    for k in m.keys() {
        if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
            return err(format!("Unknown field {k}"));
        }
    }
    if let Some(ver) = m.get("Version") {
        if !ver.is_string() {
            return err("Version must be a string");
        }
    }
    let statements = match m.get("Statement") {
        Some(Value::Array(items)) => items.iter().map(|s| parse_statement(s, kind)).collect::<Result<Vec<_>, _>>()?,
        Some(s @ Value::Object(_)) => vec![parse_statement(s, kind)?],
        _ => return err("Policy must contain a Statement"),
    };
    if statements.is_empty() {
        return err("Policy must contain at least one statement");
    }
    Ok(Policy { statements })
}

/// Parsed documents (and parse errors) by kind and text, at most this many per kind.
const MAX_CACHED_POLICIES: usize = 1024;

type ParseCache = HashMap<String, Result<Arc<Policy>, PolicyError>>;

/// [`parse`], remembered: parsing is a pure function of the text and the kind, and every KMS
/// request evaluates the key's policy and the caller's role policies, which rarely change. A
/// changed document is a different text, so it is parsed afresh.
pub fn parse_cached(document: &str, kind: PolicyKind) -> Result<Arc<Policy>, PolicyError> {
    static CACHE: OnceLock<Mutex<[ParseCache; 2]>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let slot = match kind {
        PolicyKind::Resource => 0,
        PolicyKind::Identity => 1,
    };
    if let Some(hit) = cache.lock().unwrap_or_else(|p| p.into_inner())[slot].get(document) {
        return hit.clone();
    }
    let parsed = parse(document, kind).map(Arc::new);
    let mut maps = cache.lock().unwrap_or_else(|p| p.into_inner());
    let map = &mut maps[slot];
    if map.len() >= MAX_CACHED_POLICIES {
        map.clear();
    }
    map.insert(document.to_string(), parsed.clone());
    parsed
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKind {
    /// The account's root user (`arn:aws:iam::ACCT:root`).
    Root,
    /// A session of an assumed role; `role_arn` is `arn:aws:iam::ACCT:role/PATH/NAME`.
    AssumedRole { role_arn: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub arn: String,
    pub account: String,
    pub kind: CallerKind,
}

impl Caller {
    pub fn root(account: &str) -> Caller {
        Caller { arn: format!("arn:aws:iam::{account}:root"), account: account.to_string(), kind: CallerKind::Root }
    }

    /// `aws:PrincipalArn`: the role ARN for a role session, the caller's ARN otherwise.
    pub fn principal_arn(&self) -> &str {
        match &self.kind {
            CallerKind::Root => &self.arn,
            CallerKind::AssumedRole { role_arn } => role_arn,
        }
    }
}

/// Condition context: lower-cased key → values.
pub type ContextKeys = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub caller: &'a Caller,
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a ContextKeys,
}

/// How a matching `Allow` statement designated the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grant {
    /// The statement named the caller's account: identity policies must agree.
    Account,
    /// The statement named the caller itself, `*`, or is an identity-policy statement.
    Direct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Deny,
    Allow(Grant),
    NoMatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// `*` and `?` wildcards; `ignore_case` for actions.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    // Every request matches actions, resources and principals: ASCII text (the usual case) is
    // matched on its bytes, without collecting characters; `?` is one character either way.
    if pattern.is_ascii() && text.is_ascii() {
        let eq = |a: &u8, b: &u8| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
        return glob_units(pattern.as_bytes(), text.as_bytes(), b'*', b'?', eq);
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: &char, b: &char| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
    glob_units(&p, &t, '*', '?', eq)
}

fn glob_units<T: Copy + PartialEq>(p: &[T], t: &[T], any: T, one: T, eq: impl Fn(&T, &T) -> bool) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == one || (p[pi] != any && eq(&p[pi], &t[ti]))) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == any {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == any {
        pi += 1;
    }
    pi == p.len()
}

/// ArnLike: each of the six colon-separated parts is matched with wildcards.
fn arn_like(pattern: &str, arn: &str) -> bool {
    let pp: Vec<&str> = pattern.splitn(6, ':').collect();
    let ap: Vec<&str> = arn.splitn(6, ':').collect();
    if pp.len() != 6 || ap.len() != 6 {
        return pattern == "*" || glob(pattern, arn, false);
    }
    pp.iter().zip(ap.iter()).all(|(p, a)| glob(p, a, false))
}

fn ip_in(cidr: &str, ip: &str) -> bool {
    let Ok(ip) = ip.trim().parse::<IpAddr>() else {
        return false;
    };
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => match (n.parse::<IpAddr>(), b.parse::<u32>()) {
            (Ok(n), Ok(b)) => (n, b),
            _ => return false,
        },
        None => match cidr.parse::<IpAddr>() {
            Ok(n) => (n, if n.is_ipv4() { 32 } else { 128 }),
            Err(_) => return false,
        },
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            (u32::from(n) & mask) == (u32::from(i) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            (u128::from(n) & mask) == (u128::from(i) & mask)
        }
        _ => false,
    }
}

fn condition_holds(c: &Condition, ctx: &ContextKeys) -> bool {
    let values = ctx.get(&c.key).filter(|v| !v.is_empty());
    if c.operator == Operator::Null {
        let absent = values.is_none();
        return c.values.iter().any(|v| v.eq_ignore_ascii_case("true") == absent);
    }
    let Some(values) = values else {
        return match c.set {
            SetOperator::ForAllValues => true,
            SetOperator::ForAnyValue => c.if_exists,
            SetOperator::Single => c.if_exists || c.operator.negated(),
        };
    };
    let one = |cv: &String| {
        let any = c.values.iter().any(|pv| c.operator.test(pv, cv));
        if c.operator.negated() {
            !any
        } else {
            any
        }
    };
    match c.set {
        SetOperator::Single | SetOperator::ForAnyValue => values.iter().any(one),
        SetOperator::ForAllValues => values.iter().all(one),
    }
}

fn principal_grant(p: &Principals, caller: &Caller) -> Option<Grant> {
    if p.any {
        return Some(Grant::Direct);
    }
    let mut best = None;
    for a in &p.aws {
        let g = if a == "*" {
            Some(Grant::Direct)
        } else if crate::ids::is_account_id(a) || a.ends_with(":root") {
            let acct = if crate::ids::is_account_id(a) { a.as_str() } else { a.split(':').nth(4).unwrap_or("") };
            (acct == caller.account).then_some(if caller.kind == CallerKind::Root {
                Grant::Direct
            } else {
                Grant::Account
            })
        } else if a == &caller.arn {
            Some(Grant::Direct)
        } else {
            match &caller.kind {
                CallerKind::AssumedRole { role_arn } if a == role_arn => Some(Grant::Direct),
                _ => None,
            }
        };
        best = best.max(g);
    }
    best
}

fn statement_applies(s: &Statement, req: &Request<'_>) -> Option<Grant> {
    let grant = match &s.principal {
        None => Grant::Direct,
        Some((p, negated)) => match (principal_grant(p, req.caller), negated) {
            (Some(g), false) => g,
            (None, true) => Grant::Direct,
            _ => return None,
        },
    };
    let (actions, not_action) = &s.action;
    let action_hit = actions.iter().any(|a| glob(a, req.action, true));
    if action_hit == *not_action {
        return None;
    }
    if let Some((resources, not_resource)) = &s.resource {
        let hit = resources.iter().any(|r| glob(r, req.resource, false));
        if hit == *not_resource {
            return None;
        }
    }
    if !s.conditions.iter().all(|c| condition_holds(c, req.context)) {
        return None;
    }
    Some(grant)
}

/// Evaluate one policy: `Deny` if any matching statement denies, else the strongest `Allow`.
pub fn evaluate(policy: &Policy, req: &Request<'_>) -> Outcome {
    let mut allow: Option<Grant> = None;
    for s in &policy.statements {
        if let Some(g) = statement_applies(s, req) {
            match s.effect {
                Effect::Deny => return Outcome::Deny,
                Effect::Allow => allow = allow.max(Some(g)),
            }
        }
    }
    match allow {
        Some(g) => Outcome::Allow(g),
        None => Outcome::NoMatch,
    }
}

fn evaluate_identity<P: Borrow<Policy>>(policies: &[P], req: &Request<'_>) -> Outcome {
    let mut allowed = false;
    for p in policies {
        match evaluate(p.borrow(), req) {
            Outcome::Deny => return Outcome::Deny,
            Outcome::Allow(_) => allowed = true,
            Outcome::NoMatch => {}
        }
    }
    if allowed {
        Outcome::Allow(Grant::Direct)
    } else {
        Outcome::NoMatch
    }
}

/// Access to a resource that has its own policy (KMS key, role trust): the resource policy must
/// allow, and identity policies must agree when the grant is to the account or cross-account.
pub fn authorize<P: Borrow<Policy>>(
    resource_policy: &Policy,
    identity_policies: &[P],
    req: &Request<'_>,
    resource_account: &str,
) -> Decision {
    let r = evaluate(resource_policy, req);
    let id = evaluate_identity(identity_policies, req);
    if r == Outcome::Deny || id == Outcome::Deny {
        return Decision::ExplicitDeny;
    }
    let is_root = req.caller.kind == CallerKind::Root;
    let identity_allows = is_root || id == Outcome::Allow(Grant::Direct);
    let same_account = req.caller.account == resource_account;
    match r {
        Outcome::Allow(Grant::Direct) if same_account || identity_allows => Decision::Allow,
        Outcome::Allow(Grant::Account) if identity_allows => Decision::Allow,
        _ => Decision::ImplicitDeny,
    }
}

/// Access to an API without a resource policy (IAM, EC2): the root is allowed unless an identity
/// policy denies; any other principal needs an identity policy that allows.
pub fn authorize_identity<P: Borrow<Policy>>(identity_policies: &[P], req: &Request<'_>) -> Decision {
    match evaluate_identity(identity_policies, req) {
        Outcome::Deny => Decision::ExplicitDeny,
        Outcome::Allow(_) => Decision::Allow,
        Outcome::NoMatch if req.caller.kind == CallerKind::Root => Decision::Allow,
        Outcome::NoMatch => Decision::ImplicitDeny,
    }
}

/// The default key policy: the key's account root gets `kms:*` (enables IAM policies).
pub fn default_key_policy(account: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
            "Action": "kms:*",
            "Resource": "*"
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "111111111111";
    const B: &str = "222222222222";
    const KEY: &str = "arn:aws:kms:us-east-1:111111111111:key/k1";

    fn role_caller(acct: &str, role: &str) -> Caller {
        Caller {
            arn: format!("arn:aws:sts::{acct}:assumed-role/{role}/s1"),
            account: acct.into(),
            kind: CallerKind::AssumedRole { role_arn: format!("arn:aws:iam::{acct}:role/{role}") },
        }
    }

    fn res(v: serde_json::Value) -> Policy {
        parse(&v.to_string(), PolicyKind::Resource).unwrap()
    }
    fn ident(v: serde_json::Value) -> Policy {
        parse(&v.to_string(), PolicyKind::Identity).unwrap()
    }

    fn ctx(pairs: &[(&str, &str)]) -> ContextKeys {
        let mut m = ContextKeys::new();
        for (k, v) in pairs {
            m.entry(k.to_ascii_lowercase()).or_default().push(v.to_string());
        }
        m
    }

    fn decide(key_policy: &Policy, ids: &[Policy], caller: &Caller, action: &str, c: &ContextKeys) -> Decision {
        let req = Request { caller, action, resource: KEY, context: c };
        authorize(key_policy, ids, &req, A)
    }

    #[test]
    fn glob_matches() {
        assert!(glob("kms:*", "kms:Encrypt", true));
        assert!(glob("kms:Encrypt*", "KMS:encryptx", true));
        assert!(!glob("kms:Encrypt*", "kms:Decrypt", true));
        assert!(glob("a?c", "abc", false));
        assert!(glob("a?c", "aéc", false), "? is one character, not one byte");
        assert!(glob("KMS:Encrypt", "kms:encrypt", true));
        assert!(!glob("kms:Encrypt", "kms:encrypt", false));
        assert!(glob("*", "", false));
        assert!(!glob("abc", "abcd", false));
        assert!(glob("arn:aws:kms:*:111111111111:key/*", KEY, false));
    }

    #[test]
    fn default_policy_root_and_delegation() {
        let kp = parse(&default_key_policy(A), PolicyKind::Resource).unwrap();
        let empty = ContextKeys::new();
        // root of the key account: allowed by the key policy alone
        assert_eq!(decide(&kp, &[], &Caller::root(A), "kms:Encrypt", &empty), Decision::Allow);
        // role of the same account without identity policy: implicit deny
        let r = role_caller(A, "app");
        assert_eq!(decide(&kp, &[], &r, "kms:Encrypt", &empty), Decision::ImplicitDeny);
        // with an identity policy allowing encrypt: allowed; decrypt still denied
        let ip = ident(json!({"Statement":[{"Effect":"Allow","Action":["kms:Encrypt*"],"Resource":KEY}]}));
        assert_eq!(decide(&kp, std::slice::from_ref(&ip), &r, "kms:Encrypt", &empty), Decision::Allow);
        assert_eq!(decide(&kp, std::slice::from_ref(&ip), &r, "kms:Decrypt", &empty), Decision::ImplicitDeny);
        // another account's root: not allowed by this key policy
        assert_eq!(decide(&kp, &[], &Caller::root(B), "kms:Encrypt", &empty), Decision::ImplicitDeny);
    }

    #[test]
    fn cross_account_needs_both() {
        let kp = res(json!({"Statement":[
            {"Effect":"Allow","Principal":{"AWS":format!("arn:aws:iam::{A}:root")},"Action":"kms:*","Resource":"*"},
            {"Effect":"Allow","Principal":{"AWS":format!("arn:aws:iam::{B}:role/atlas")},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}
        ]}));
        let r = role_caller(B, "atlas");
        let empty = ContextKeys::new();
        assert_eq!(decide(&kp, &[], &r, "kms:Encrypt", &empty), Decision::ImplicitDeny);
        let ip = ident(json!({"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}));
        assert_eq!(decide(&kp, std::slice::from_ref(&ip), &r, "kms:Encrypt", &empty), Decision::Allow);
        assert_eq!(decide(&kp, std::slice::from_ref(&ip), &r, "kms:DescribeKey", &empty), Decision::ImplicitDeny);
        // a different role of account B is not named
        let other = role_caller(B, "other");
        assert_eq!(decide(&kp, std::slice::from_ref(&ip), &other, "kms:Encrypt", &empty), Decision::ImplicitDeny);
    }

    #[test]
    fn explicit_deny_wins_and_source_vpce() {
        let kp = res(json!({"Statement":[
            {"Effect":"Allow","Principal":{"AWS":A},"Action":"kms:*","Resource":"*"},
            {"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*",
             "Condition":{"StringNotEquals":{"aws:SourceVpce":"vpce-1"}}}
        ]}));
        let root = Caller::root(A);
        assert_eq!(decide(&kp, &[], &root, "kms:Encrypt", &ContextKeys::new()), Decision::ExplicitDeny);
        assert_eq!(
            decide(&kp, &[], &root, "kms:Encrypt", &ctx(&[("aws:SourceVpce", "vpce-2")])),
            Decision::ExplicitDeny
        );
        assert_eq!(decide(&kp, &[], &root, "kms:Encrypt", &ctx(&[("aws:SourceVpce", "vpce-1")])), Decision::Allow);
        // identity deny wins over key policy allow
        let deny = ident(json!({"Statement":{"Effect":"Deny","NotAction":"kms:Describe*","Resource":"*"}}));
        let r = role_caller(A, "x");
        let kp2 = res(json!({"Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}}));
        assert_eq!(
            decide(&kp2, std::slice::from_ref(&deny), &r, "kms:Encrypt", &ContextKeys::new()),
            Decision::ExplicitDeny
        );
        assert_eq!(
            decide(&kp2, std::slice::from_ref(&deny), &r, "kms:DescribeKey", &ContextKeys::new()),
            Decision::Allow
        );
    }

    #[test]
    fn trust_policy_external_id() {
        let trust = res(json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"AWS":format!("arn:aws:iam::{B}:root")},"Action":"sts:AssumeRole",
            "Condition":{"StringEquals":{"sts:ExternalId":"ext-1"}}}]}));
        let caller = Caller::root(B);
        let role = "arn:aws:iam::111111111111:role/r";
        let go = |c: &ContextKeys| {
            authorize::<Policy>(
                &trust,
                &[],
                &Request { caller: &caller, action: "sts:AssumeRole", resource: role, context: c },
                A,
            )
        };
        assert_eq!(go(&ctx(&[("sts:ExternalId", "ext-1")])), Decision::Allow);
        assert_eq!(go(&ctx(&[("sts:ExternalId", "wrong")])), Decision::ImplicitDeny);
        assert_eq!(go(&ContextKeys::new()), Decision::ImplicitDeny);
    }

    #[test]
    fn condition_operators() {
        let c = |op: &str, key: &str, vals: serde_json::Value, context: &ContextKeys| {
            let p = ident(json!({"Statement":{"Effect":"Allow","Action":"*","Resource":"*",
                "Condition":{op:{key:vals}}}}));
            let caller = Caller::root(A);
            evaluate(&p, &Request { caller: &caller, action: "kms:Encrypt", resource: KEY, context })
                == Outcome::Allow(Grant::Direct)
        };
        let k = ctx(&[
            ("aws:SourceIp", "10.1.2.3"),
            ("kms:EncryptionContext:project", "p1"),
            ("aws:PrincipalArn", "arn:aws:iam::111111111111:role/app"),
            ("aws:SecureTransport", "false"),
        ]);
        assert!(c("IpAddress", "aws:SourceIp", json!("10.0.0.0/8"), &k));
        assert!(!c("IpAddress", "aws:SourceIp", json!("192.168.0.0/16"), &k));
        assert!(c("NotIpAddress", "aws:SourceIp", json!(["192.168.0.0/16"]), &k));
        assert!(c("StringLike", "kms:EncryptionContext:project", json!("p*"), &k));
        assert!(!c("StringNotLike", "kms:EncryptionContext:project", json!("p*"), &k));
        assert!(c("ArnLike", "aws:PrincipalArn", json!("arn:aws:iam::*:role/app"), &k));
        assert!(!c("ArnNotLike", "aws:PrincipalArn", json!("arn:aws:iam::*:role/*"), &k));
        assert!(c("ArnEquals", "aws:PrincipalArn", json!("arn:aws:iam::111111111111:role/app"), &k));
        assert!(c("ArnNotEquals", "aws:PrincipalArn", json!("arn:aws:iam::111111111111:role/b"), &k));
        assert!(c("Bool", "aws:SecureTransport", json!(false), &k));
        assert!(c("StringEqualsIfExists", "aws:SourceVpce", json!("vpce-1"), &k));
        assert!(!c("StringEquals", "aws:SourceVpce", json!("vpce-1"), &k));
        assert!(c("StringNotEquals", "aws:SourceVpce", json!("vpce-1"), &k));
        assert!(c("Null", "aws:SourceVpce", json!("true"), &k));
        assert!(c("ForAnyValue:StringEquals", "kms:EncryptionContext:project", json!(["x", "p1"]), &k));
        assert!(c("ForAllValues:StringEquals", "kms:EncryptionContextKeys", json!(["project"]), &k));
    }

    #[test]
    fn malformed_documents_are_refused() {
        let bad = [
            "not json",
            "{}",
            r#"{"Statement":[]}"#,
            r#"{"Statement":{"Effect":"Maybe","Principal":"*","Action":"kms:*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"kms:*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Condition":{"StringWeird":{"a:b":"c"}}}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"bogus"},"Action":"kms:*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"Encrypt"}}"#,
        ];
        for b in bad {
            assert!(parse(b, PolicyKind::Resource).is_err(), "{b}");
        }
        assert!(parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}"#,
            PolicyKind::Identity
        )
        .is_err());
        assert!(parse(r#"{"Statement":{"Effect":"Allow","Action":"kms:*"}}"#, PolicyKind::Identity).is_err());
    }
}
