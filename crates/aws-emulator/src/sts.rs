//! STS over awsQuery: AssumeRole (trust policy, ExternalId, duration) and GetCallerIdentity.
//!
//! Session credentials are self-contained: the session token is the sealed (AES-256-GCM under
//! the root key) description of the session, so sessions survive restarts without a table.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::policy::{self, CallerKind, ContextKeys, Decision, PolicyKind};
use crate::server::{ReqCtx, Shared};
use crate::state::B64;
use crate::wire::{leaf, query_response, QueryError, STS_NS};

const TOKEN_AAD: &[u8] = b"atrest-aws-emulator/sts-session/v1";

#[derive(Clone, Serialize, Deserialize)]
pub struct SessionClaims {
    #[serde(rename = "k")]
    pub access_key_id: String,
    #[serde(rename = "s")]
    pub secret_access_key: String,
    #[serde(rename = "a")]
    pub account_id: String,
    #[serde(rename = "r")]
    pub role_arn: String,
    #[serde(rename = "n")]
    pub role_name: String,
    #[serde(rename = "i")]
    pub role_id: String,
    #[serde(rename = "sn")]
    pub session_name: String,
    /// Unix seconds (emulator clock).
    #[serde(rename = "x")]
    pub expiration: f64,
}

pub fn seal_session_token(root: &[u8; 32], c: &SessionClaims) -> String {
    let json = zeroize::Zeroizing::new(serde_json::to_vec(c).unwrap_or_default());
    B64.encode(crate::crypto::seal(root, TOKEN_AAD, &json))
}

pub fn open_session_token(root: &[u8; 32], token: &str) -> Option<SessionClaims> {
    if token.len() > 8192 {
        return None;
    }
    let sealed = B64.decode(token.trim()).ok()?;
    let plain = crate::crypto::open(root, TOKEN_AAD, &sealed).ok()?;
    serde_json::from_slice(&plain).ok()
}

fn param<'a>(params: &'a [(String, String)], k: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn valid_session_name(s: &str) -> bool {
    (2..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

pub fn handle(sh: &Shared, ctx: &ReqCtx, action: &str, params: &[(String, String)]) -> Result<String, QueryError> {
    match action {
        "GetCallerIdentity" => {
            let user_id = match &ctx.caller.kind {
                CallerKind::Root => ctx.caller.account.clone(),
                CallerKind::AssumedRole { role_arn } => {
                    let session = ctx.caller.arn.rsplit('/').next().unwrap_or("");
                    let role_id = sh
                        .inner()
                        .state
                        .role_by_arn(role_arn)
                        .map(|r| r.role_id.clone())
                        .unwrap_or_else(|| "AROAUNKNOWN".into());
                    format!("{role_id}:{session}")
                }
            };
            let result = format!(
                "{}{}{}",
                leaf("Arn", &ctx.caller.arn),
                leaf("UserId", &user_id),
                leaf("Account", &ctx.caller.account)
            );
            Ok(query_response(STS_NS, "GetCallerIdentity", Some(&result), &ctx.request_id))
        }
        "AssumeRole" => assume_role(sh, ctx, params),
        other => Err(QueryError::new(
            400,
            "InvalidAction",
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}

fn assume_role(sh: &Shared, ctx: &ReqCtx, params: &[(String, String)]) -> Result<String, QueryError> {
    let role_arn = param(params, "RoleArn").ok_or_else(|| QueryError::missing("RoleArn"))?;
    let session = param(params, "RoleSessionName").ok_or_else(|| QueryError::missing("RoleSessionName"))?;
    if !valid_session_name(session) {
        return Err(QueryError::validation(format!(
            "1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    let external_id = param(params, "ExternalId");
    if let Some(e) = external_id {
        if !(2..=1224).contains(&e.len()) {
            return Err(QueryError::validation(
                "1 validation error detected: Value at 'externalId' failed to satisfy constraint: Member must have length between 2 and 1224",
            ));
        }
    }
    let duration = match param(params, "DurationSeconds") {
        Some(d) => d.parse::<u32>().map_err(|_| QueryError::validation("DurationSeconds must be an integer"))?,
        None => 3600,
    };
    if duration < 900 {
        return Err(QueryError::validation(format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
        )));
    }
    let denied = || {
        QueryError::new(
            403,
            "AccessDenied",
            format!("User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}", ctx.caller.arn),
        )
    };
    let inner = sh.inner();
    let role = inner.state.role_by_arn(role_arn).ok_or_else(denied)?;
    let trust_doc = role.effective_trust(ctx.now).ok_or_else(denied)?;
    let trust = policy::parse(trust_doc, PolicyKind::Resource).map_err(|_| denied())?;
    if duration > role.max_session_duration {
        return Err(QueryError::validation(format!(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role. ({duration} > {})",
            role.max_session_duration
        )));
    }
    let mut keys = ContextKeys::new();
    let mut put = |k: &str, v: &str| keys.entry(k.to_ascii_lowercase()).or_default().push(v.to_string());
    if let Some(e) = external_id {
        put("sts:ExternalId", e);
    }
    put("sts:RoleSessionName", session);
    put("aws:PrincipalArn", ctx.caller.principal_arn());
    put("aws:PrincipalAccount", &ctx.caller.account);
    put("aws:SourceIp", &ctx.source_ip);
    put("aws:SecureTransport", "false");
    let ids = crate::kms::identity_policies(&inner, &ctx.caller);
    let decision = policy::authorize(
        &trust,
        &ids,
        &policy::Request { caller: &ctx.caller, action: "sts:AssumeRole", resource: &role.arn, context: &keys },
        &role.account_id,
    );
    if decision != Decision::Allow {
        return Err(denied());
    }
    let claims = SessionClaims {
        access_key_id: crate::ids::session_access_key_id(),
        secret_access_key: crate::ids::secret_access_key(),
        account_id: role.account_id.clone(),
        role_arn: role.arn.clone(),
        role_name: role.name.clone(),
        role_id: role.role_id.clone(),
        session_name: session.to_string(),
        expiration: ctx.now + duration as f64,
    };
    drop(inner);
    let token = seal_session_token(&sh.root_key, &claims);
    sh.saw_secret(&token);
    sh.saw_secret(&claims.secret_access_key);
    let assumed_arn =
        format!("arn:aws:sts::{}:assumed-role/{}/{}", claims.account_id, claims.role_name, claims.session_name);
    let result = format!(
        "<Credentials>{}{}{}{}</Credentials><AssumedRoleUser>{}{}</AssumedRoleUser><PackedPolicySize>0</PackedPolicySize>",
        leaf("AccessKeyId", &claims.access_key_id),
        leaf("SecretAccessKey", &claims.secret_access_key),
        leaf("SessionToken", &token),
        leaf("Expiration", &crate::wire::iso8601_secs(claims.expiration)),
        leaf("Arn", &assumed_arn),
        leaf("AssumedRoleId", &format!("{}:{}", claims.role_id, session)),
    );
    tracing::debug!(role = %claims.role_arn, session = %session, "role assumed");
    Ok(query_response(STS_NS, "AssumeRole", Some(&result), &ctx.request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_tokens_are_sealed() {
        let root = crate::crypto::random_key();
        let c = SessionClaims {
            access_key_id: "ASIAX".into(),
            secret_access_key: "s".into(),
            account_id: "1".into(),
            role_arn: "r".into(),
            role_name: "n".into(),
            role_id: "i".into(),
            session_name: "sn".into(),
            expiration: 1.0,
        };
        let t = seal_session_token(&root, &c);
        assert_eq!(open_session_token(&root, &t).unwrap().access_key_id, "ASIAX");
        assert!(open_session_token(&crate::crypto::random_key(), &t).is_none());
        assert!(open_session_token(&root, "garbage!!").is_none());
        assert!(valid_session_name("atlas-1"));
        assert!(!valid_session_name("a"));
        assert!(!valid_session_name("a b"));
    }
}
