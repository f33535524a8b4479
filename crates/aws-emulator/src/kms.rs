//! KMS over awsJson1.1: `POST /`, `X-Amz-Target: TrentService.<Op>`.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use crate::ciphertext;
use crate::crypto;
use crate::policy::{self, Caller, CallerKind, ContextKeys, Decision, PolicyKind};
use crate::server::{Arrival, ReqCtx, Shared};
use crate::state::{Alias, Inner, Key, KeyState, B64};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    InvalidCiphertext(String),
    #[error("{0}")]
    IncorrectKey(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidKeyUsage(String),
    #[error("{0}")]
    MalformedPolicy(String),
    #[error("{0}")]
    InvalidAliasName(String),
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    Internal(String),
}

impl KmsError {
    pub fn name(&self) -> &'static str {
        match self {
            KmsError::NotFound(_) => "NotFoundException",
            KmsError::Disabled(_) => "DisabledException",
            KmsError::InvalidState(_) => "KMSInvalidStateException",
            KmsError::InvalidCiphertext(_) => "InvalidCiphertextException",
            KmsError::IncorrectKey(_) => "IncorrectKeyException",
            KmsError::AccessDenied(_) => "AccessDeniedException",
            KmsError::Validation(_) => "ValidationException",
            KmsError::AlreadyExists(_) => "AlreadyExistsException",
            KmsError::InvalidKeyUsage(_) => "InvalidKeyUsageException",
            KmsError::MalformedPolicy(_) => "MalformedPolicyDocumentException",
            KmsError::InvalidAliasName(_) => "InvalidAliasNameException",
            KmsError::InvalidArn(_) => "InvalidArnException",
            KmsError::UnsupportedOperation(_) => "UnsupportedOperationException",
            KmsError::Serialization(_) => "SerializationException",
            KmsError::UnknownOperation(_) => "UnknownOperationException",
            KmsError::Internal(_) => "KMSInternalException",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            KmsError::Internal(_) => 500,
            _ => 400,
        }
    }
}

fn internal(e: anyhow::Error) -> KmsError {
    tracing::error!(error = %e, "kms internal error");
    KmsError::Internal("An internal error occurred.".into())
}

type R<T> = Result<T, KmsError>;

// ---------------------------------------------------------------------------------------------
// Request parsing helpers
// ---------------------------------------------------------------------------------------------

struct Input(Map<String, Value>);

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

impl Input {
    fn parse(body: &[u8]) -> R<Input> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Input(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Input(m)),
            _ => Err(KmsError::Serialization("Start of structure or map found where not expected.".into())),
        }
    }

    fn opt_str(&self, k: &str) -> R<Option<&str>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(KmsError::Serialization(format!("STRING_VALUE can not be converted to a String for {k}"))),
        }
    }

    fn str(&self, k: &str) -> R<&str> {
        self.opt_str(k)?.ok_or_else(|| {
            KmsError::Validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(k)
            ))
        })
    }

    fn key_id(&self, k: &str) -> R<&str> {
        let s = self.str(k)?;
        if s.is_empty() || s.len() > 2048 {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length between 1 and 2048",
                lower_first(k)
            )));
        }
        Ok(s)
    }

    fn opt_u64(&self, k: &str) -> R<Option<u64>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
                KmsError::Validation(format!("Value at '{}' must be a positive integer", lower_first(k)))
            }),
            Some(_) => Err(KmsError::Serialization(format!("{k} must be a number"))),
        }
    }

    fn opt_bool(&self, k: &str) -> R<Option<bool>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(KmsError::Serialization(format!("{k} must be a boolean"))),
        }
    }

    fn blob(&self, k: &str) -> R<Zeroizing<Vec<u8>>> {
        let s = self.str(k)?;
        B64.decode(s)
            .map(Zeroizing::new)
            .map_err(|_| KmsError::Serialization(format!("Could not decode base64 value of {k}")))
    }

    fn context(&self, k: &str) -> R<BTreeMap<String, String>> {
        match self.0.get(k) {
            None | Some(Value::Null) => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => {
                let mut out = BTreeMap::new();
                for (key, v) in m {
                    match v {
                        Value::String(s) => {
                            out.insert(key.clone(), s.clone());
                        }
                        _ => return Err(KmsError::Serialization(format!("{k} values must be strings"))),
                    }
                }
                Ok(out)
            }
            Some(_) => Err(KmsError::Serialization(format!("{k} must be a map"))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Keys, aliases and access
// ---------------------------------------------------------------------------------------------

fn key_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{id}")
}

fn not_found_key(region: &str, account: &str, id: &str) -> KmsError {
    KmsError::NotFound(format!("Key '{}' does not exist", key_arn(region, account, id)))
}

/// Resolve a KeyId (id, key ARN, alias name, alias ARN) to `(region, key id)`.
fn resolve(inner: &Inner, ctx: &ReqCtx, key_ref: &str) -> R<(String, String)> {
    let region = &ctx.region;
    let caller_acct = &ctx.caller.account;
    let lookup_alias = |account: &str, region: &str, name: &str| -> R<(String, String)> {
        let a =
            inner.state.aliases.get(&(account.to_string(), region.to_string(), name.to_string())).ok_or_else(|| {
                KmsError::NotFound(format!("Alias arn:aws:kms:{region}:{account}:{name} is not found."))
            })?;
        Ok((region.to_string(), a.target_key_id.clone()))
    };
    if let Some(rest) = key_ref.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5 || parts[1] != "kms" || !crate::ids::is_account_id(parts[3]) {
            return Err(KmsError::InvalidArn(format!("Invalid arn {key_ref}")));
        }
        let (arn_region, account, res) = (parts[2], parts[3], parts[4]);
        if arn_region != region {
            return Err(KmsError::NotFound(format!(
                "Invalid arn {key_ref}: the key is in region {arn_region}, the request in {region}"
            )));
        }
        if res.starts_with("alias/") {
            return lookup_alias(account, region, res);
        }
        let id = res.strip_prefix("key/").ok_or_else(|| KmsError::InvalidArn(format!("Invalid arn {key_ref}")))?;
        return match inner.state.keys.get(&(region.clone(), id.to_string())) {
            Some(k) if k.account_id == account => Ok((region.clone(), id.to_string())),
            _ => Err(not_found_key(region, account, id)),
        };
    }
    if key_ref.starts_with("alias/") {
        return lookup_alias(caller_acct, region, key_ref);
    }
    match inner.state.keys.get(&(region.clone(), key_ref.to_string())) {
        Some(k) if &k.account_id == caller_acct => Ok((region.clone(), key_ref.to_string())),
        _ => Err(not_found_key(region, caller_acct, key_ref)),
    }
}

fn key<'a>(inner: &'a Inner, id: &(String, String)) -> R<&'a Key> {
    inner.state.keys.get(id).ok_or_else(|| KmsError::NotFound(format!("Key '{}' does not exist", id.1)))
}

fn context_keys(ctx: &ReqCtx, key: &Key, enc: Option<&BTreeMap<String, String>>) -> ContextKeys {
    let mut m = ContextKeys::new();
    let mut put = |k: &str, v: &str| m.entry(k.to_ascii_lowercase()).or_default().push(v.to_string());
    put("aws:PrincipalArn", ctx.caller.principal_arn());
    put("aws:PrincipalAccount", &ctx.caller.account);
    put(
        "aws:PrincipalType",
        match ctx.caller.kind {
            CallerKind::Root => "Account",
            CallerKind::AssumedRole { .. } => "AssumedRole",
        },
    );
    put("aws:SourceIp", &ctx.source_ip);
    put("aws:SecureTransport", "false");
    put("aws:RequestedRegion", &ctx.region);
    put("kms:CallerAccount", &ctx.caller.account);
    put("kms:KeySpec", &key.key_spec);
    put("kms:KeyUsage", &key.key_usage);
    put("kms:MultiRegion", if key.multi_region { "true" } else { "false" });
    if let Arrival::Endpoint { id, vpc_id } = &ctx.arrival {
        put("aws:SourceVpce", id);
        put("aws:SourceVpc", vpc_id);
    }
    if let Some(enc) = enc {
        for (k, v) in enc {
            put(&format!("kms:EncryptionContext:{k}"), v);
            put("kms:EncryptionContextKeys", k);
        }
    }
    m
}

/// The inline policies of the caller's role (none for a root caller).
pub fn identity_policies(inner: &Inner, caller: &Caller) -> Vec<Arc<policy::Policy>> {
    match &caller.kind {
        CallerKind::Root => vec![],
        CallerKind::AssumedRole { role_arn } => inner
            .state
            .role_by_arn(role_arn)
            .map(|r| r.policies.values().filter_map(|d| policy::parse_cached(d, PolicyKind::Identity).ok()).collect())
            .unwrap_or_default(),
    }
}

fn authorize(inner: &Inner, ctx: &ReqCtx, key: &Key, action: &str, enc: Option<&BTreeMap<String, String>>) -> R<()> {
    let ids = identity_policies(inner, &ctx.caller);
    let decision = match policy::parse_cached(&key.policy, PolicyKind::Resource) {
        Ok(p) => {
            // Only conditions read context keys; policies without any (the default key policy)
            // are decided the same without building them.
            let conditional = p.has_conditions() || ids.iter().any(|i| i.has_conditions());
            let keys = if conditional { context_keys(ctx, key, enc) } else { ContextKeys::new() };
            policy::authorize(
                &p,
                &ids,
                &policy::Request { caller: &ctx.caller, action, resource: &key.arn, context: &keys },
                &key.account_id,
            )
        }
        Err(_) => Decision::ImplicitDeny,
    };
    match decision {
        Decision::Allow => Ok(()),
        Decision::ExplicitDeny => Err(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: {action} on resource: {} with an explicit deny",
            ctx.caller.arn, key.arn
        ))),
        Decision::ImplicitDeny => Err(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: {action} on resource: {} because no resource-based policy allows the {action} action",
            ctx.caller.arn, key.arn
        ))),
    }
}

fn require_usable(key: &Key) -> R<()> {
    match key.state {
        KeyState::Enabled => Ok(()),
        KeyState::Disabled => Err(KmsError::Disabled(format!("{} is disabled.", key.arn))),
        KeyState::PendingDeletion => Err(KmsError::InvalidState(format!("{} is pending deletion.", key.arn))),
    }
}

fn require_not_pending(key: &Key) -> R<()> {
    if key.state == KeyState::PendingDeletion {
        return Err(KmsError::InvalidState(format!("{} is pending deletion.", key.arn)));
    }
    Ok(())
}

fn validate_policy(doc: &str) -> R<()> {
    policy::parse(doc, PolicyKind::Resource).map(|_| ()).map_err(|e| {
        KmsError::MalformedPolicy(format!(
            "The new key policy will not allow you to update the key policy in the future, or is malformed: {e}"
        ))
    })
}

/// Destroy keys whose deletion date has passed (material is gone for good).
pub fn purge_due_keys(inner: &mut Inner, now: f64) {
    let due: Vec<(String, String)> = inner
        .state
        .keys
        .iter()
        .filter(|(_, k)| k.state == KeyState::PendingDeletion && k.deletion_date.map(|d| d <= now).unwrap_or(false))
        .map(|(id, _)| id.clone())
        .collect();
    for id in due {
        inner.state.keys.remove(&id);
        let aliases: Vec<_> = inner
            .state
            .aliases
            .iter()
            .filter(|(_, a)| a.region == id.0 && a.target_key_id == id.1)
            .map(|(k, _)| k.clone())
            .collect();
        for a in aliases {
            inner.state.aliases.remove(&a);
            if let Err(e) = inner.save_alias(&a.0, &a.1, &a.2) {
                tracing::error!(error = %e, "failed to persist alias removal");
            }
        }
        if let Err(e) = inner.save_key(&id.0, &id.1) {
            tracing::error!(error = %e, "failed to persist key deletion");
        }
        tracing::info!(region = %id.0, key = %id.1, "key material destroyed");
    }
}

fn metadata(inner: &Inner, k: &Key) -> Value {
    let mut m = json!({
        "AWSAccountId": k.account_id,
        "KeyId": k.key_id,
        "Arn": k.arn,
        "CreationDate": k.creation_date,
        "Enabled": k.state == KeyState::Enabled,
        "Description": k.description,
        "KeyUsage": k.key_usage,
        "KeyState": k.state.as_str(),
        "Origin": "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": k.key_spec,
        "KeySpec": k.key_spec,
        "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
        "MultiRegion": k.multi_region,
    });
    if let Some(d) = k.deletion_date {
        m["DeletionDate"] = json!(d);
        if let Some(w) = k.pending_window_days {
            m["PendingDeletionWindowInDays"] = json!(w);
        }
    }
    if k.multi_region {
        let primary_region = k.primary_region.clone().unwrap_or_else(|| k.region.clone());
        let replicas: Vec<Value> = inner
            .state
            .keys
            .values()
            .filter(|o| o.key_id == k.key_id && o.region != primary_region)
            .map(|o| json!({"Arn": o.arn, "Region": o.region}))
            .collect();
        m["MultiRegionConfiguration"] = json!({
            "MultiRegionKeyType": if k.is_replica() { "REPLICA" } else { "PRIMARY" },
            "PrimaryKey": {"Arn": key_arn(&primary_region, &k.account_id, &k.key_id), "Region": primary_region},
            "ReplicaKeys": replicas,
        });
    }
    m
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

pub fn handle(sh: &Shared, ctx: &ReqCtx, op: &str, body: &[u8]) -> R<Value> {
    let input = Input::parse(body)?;
    let mut guard = sh.inner();
    let inner = &mut *guard;
    purge_due_keys(inner, ctx.now);
    let root = &sh.root_key;
    match op {
        "CreateKey" => create_key(inner, root, ctx, &input),
        "DescribeKey" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, "kms:DescribeKey", None)?;
            Ok(json!({"KeyMetadata": metadata(inner, k)}))
        }
        "ListKeys" => list_keys(inner, ctx, &input),
        "EnableKey" | "DisableKey" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, &format!("kms:{op}"), None)?;
            require_not_pending(k)?;
            let state = if op == "EnableKey" { KeyState::Enabled } else { KeyState::Disabled };
            if let Some(k) = inner.state.keys.get_mut(&id) {
                k.state = state;
            }
            inner.save_key(&id.0, &id.1).map_err(internal)?;
            Ok(json!({}))
        }
        "ScheduleKeyDeletion" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, "kms:ScheduleKeyDeletion", None)?;
            require_not_pending(k)?;
            let days = input.opt_u64("PendingWindowInDays")?.unwrap_or(30);
            if !(7..=30).contains(&days) {
                return Err(KmsError::Validation(format!(
                    "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to 30 and greater than or equal to 7"
                )));
            }
            let date = ctx.now + days as f64 * sh.cfg.key_deletion_day.as_secs_f64();
            let arn = k.arn.clone();
            if let Some(k) = inner.state.keys.get_mut(&id) {
                k.state = KeyState::PendingDeletion;
                k.deletion_date = Some(date);
                k.pending_window_days = Some(days as u32);
            }
            inner.save_key(&id.0, &id.1).map_err(internal)?;
            Ok(json!({"KeyId": arn, "DeletionDate": date, "KeyState": "PendingDeletion", "PendingWindowInDays": days}))
        }
        "CancelKeyDeletion" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, "kms:CancelKeyDeletion", None)?;
            if k.state != KeyState::PendingDeletion {
                return Err(KmsError::InvalidState(format!("{} is not pending deletion.", k.arn)));
            }
            let arn = k.arn.clone();
            if let Some(k) = inner.state.keys.get_mut(&id) {
                k.state = KeyState::Disabled;
                k.deletion_date = None;
                k.pending_window_days = None;
            }
            inner.save_key(&id.0, &id.1).map_err(internal)?;
            Ok(json!({"KeyId": arn}))
        }
        "Encrypt" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            let plaintext = input.blob("Plaintext")?;
            if plaintext.is_empty() || plaintext.len() > 4096 {
                return Err(KmsError::Validation("1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096 and greater than or equal to 1".into()));
            }
            let enc = input.context("EncryptionContext")?;
            check_algorithm(&input, "EncryptionAlgorithm")?;
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, "kms:Encrypt", Some(&enc))?;
            require_usable(k)?;
            let blob = encrypt_with(k, &enc, &plaintext)?;
            sh.saw_secret_bytes(&plaintext);
            Ok(json!({"CiphertextBlob": B64.encode(blob), "KeyId": k.arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}))
        }
        "Decrypt" => {
            let blob = input.blob("CiphertextBlob")?;
            let enc = input.context("EncryptionContext")?;
            check_algorithm(&input, "EncryptionAlgorithm")?;
            let (k, plain) = decrypt_blob(inner, ctx, &blob, &enc, input.opt_str("KeyId")?, "kms:Decrypt")?;
            sh.saw_secret_bytes(&plain);
            Ok(
                json!({"KeyId": k.arn, "Plaintext": B64.encode(plain.as_slice()), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
            )
        }
        "ReEncrypt" => {
            let blob = input.blob("CiphertextBlob")?;
            let src_enc = input.context("SourceEncryptionContext")?;
            let dst_enc = input.context("DestinationEncryptionContext")?;
            let dst_id = resolve(inner, ctx, input.key_id("DestinationKeyId")?)?;
            let (src, plain) =
                decrypt_blob(inner, ctx, &blob, &src_enc, input.opt_str("SourceKeyId")?, "kms:ReEncryptFrom")?;
            let src_arn = src.arn.clone();
            let dst = key(inner, &dst_id)?;
            authorize(inner, ctx, dst, "kms:ReEncryptTo", Some(&dst_enc))?;
            require_usable(dst)?;
            let out = encrypt_with(dst, &dst_enc, &plain)?;
            Ok(json!({
                "CiphertextBlob": B64.encode(out), "SourceKeyId": src_arn, "KeyId": dst.arn,
                "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT", "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT"
            }))
        }
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            let enc = input.context("EncryptionContext")?;
            let n = match (input.opt_u64("NumberOfBytes")?, input.opt_str("KeySpec")?) {
                (Some(_), Some(_)) => {
                    return Err(KmsError::Validation(
                        "Please specify either number of bytes or key spec.".into(),
                    ))
                }
                (Some(n), None) if (1..=1024).contains(&n) => n as usize,
                (Some(_), None) => {
                    return Err(KmsError::Validation("1 validation error detected: Value at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024 and greater than or equal to 1".into()))
                }
                (None, Some("AES_256")) => 32,
                (None, Some("AES_128")) => 16,
                (None, Some(other)) => {
                    return Err(KmsError::Validation(format!(
                        "1 validation error detected: Value '{other}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
                    )))
                }
                (None, None) => {
                    return Err(KmsError::Validation(
                        "Please specify either number of bytes or key spec.".into(),
                    ))
                }
            };
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, &format!("kms:{op}"), Some(&enc))?;
            require_usable(k)?;
            let plain = crypto::random_bytes(n);
            let blob = encrypt_with(k, &enc, &plain)?;
            let mut out = json!({"CiphertextBlob": B64.encode(blob), "KeyId": k.arn});
            if op == "GenerateDataKey" {
                out["Plaintext"] = json!(B64.encode(plain.as_slice()));
                sh.saw_secret_bytes(&plain);
            }
            Ok(out)
        }
        "GenerateRandom" => {
            let n = input.opt_u64("NumberOfBytes")?.unwrap_or(32);
            if !(1..=1024).contains(&n) {
                return Err(KmsError::Validation("NumberOfBytes must be between 1 and 1024".into()));
            }
            Ok(json!({"Plaintext": B64.encode(crypto::random_bytes(n as usize).as_slice())}))
        }
        "ReplicateKey" => replicate_key(inner, ctx, &input),
        "GetKeyPolicy" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            check_policy_name(&input)?;
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, "kms:GetKeyPolicy", None)?;
            Ok(json!({"Policy": k.policy, "PolicyName": "default"}))
        }
        "PutKeyPolicy" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            check_policy_name(&input)?;
            let doc = input.str("Policy")?.to_string();
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, "kms:PutKeyPolicy", None)?;
            require_not_pending(k)?;
            validate_policy(&doc)?;
            if let Some(k) = inner.state.keys.get_mut(&id) {
                k.policy = doc;
            }
            inner.save_key(&id.0, &id.1).map_err(internal)?;
            Ok(json!({}))
        }
        "ListKeyPolicies" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, "kms:ListKeyPolicies", None)?;
            Ok(json!({"PolicyNames": ["default"], "Truncated": false}))
        }
        "CreateAlias" | "UpdateAlias" => {
            let name = input.str("AliasName")?.to_string();
            check_alias_name(&name)?;
            let id = resolve(inner, ctx, input.key_id("TargetKeyId")?)?;
            let k = key(inner, &id)?;
            if k.account_id != ctx.caller.account {
                return Err(not_found_key(&id.0, &ctx.caller.account, &id.1));
            }
            authorize(inner, ctx, k, &format!("kms:{op}"), None)?;
            require_not_pending(k)?;
            let akey = (ctx.caller.account.clone(), ctx.region.clone(), name.clone());
            let existing = inner.state.aliases.get(&akey).cloned();
            let alias = match (op, existing) {
                ("CreateAlias", Some(a)) => {
                    return Err(KmsError::AlreadyExists(format!("An alias with the name {} already exists", a.arn())))
                }
                ("UpdateAlias", None) => {
                    return Err(KmsError::NotFound(format!(
                        "Alias arn:aws:kms:{}:{}:{name} is not found.",
                        ctx.region, ctx.caller.account
                    )))
                }
                (_, Some(mut a)) => {
                    a.target_key_id = id.1.clone();
                    a.last_updated_date = ctx.now;
                    a
                }
                (_, None) => Alias {
                    account_id: ctx.caller.account.clone(),
                    region: ctx.region.clone(),
                    name: name.clone(),
                    target_key_id: id.1.clone(),
                    creation_date: ctx.now,
                    last_updated_date: ctx.now,
                },
            };
            inner.state.aliases.insert(akey, alias);
            inner.save_alias(&ctx.caller.account, &ctx.region, &name).map_err(internal)?;
            Ok(json!({}))
        }
        "DeleteAlias" => {
            let name = input.str("AliasName")?.to_string();
            let akey = (ctx.caller.account.clone(), ctx.region.clone(), name.clone());
            let a = inner.state.aliases.get(&akey).cloned().ok_or_else(|| {
                KmsError::NotFound(format!(
                    "Alias arn:aws:kms:{}:{}:{name} is not found.",
                    ctx.region, ctx.caller.account
                ))
            })?;
            let kid = (a.region.clone(), a.target_key_id.clone());
            if let Ok(k) = key(inner, &kid) {
                authorize(inner, ctx, k, "kms:DeleteAlias", None)?;
            }
            inner.state.aliases.remove(&akey);
            inner.save_alias(&ctx.caller.account, &ctx.region, &name).map_err(internal)?;
            Ok(json!({}))
        }
        "ListAliases" => {
            let filter = match input.opt_str("KeyId")? {
                Some(k) => Some(resolve(inner, ctx, k)?.1),
                None => None,
            };
            let aliases: Vec<Value> = inner
                .state
                .aliases
                .values()
                .filter(|a| a.account_id == ctx.caller.account && a.region == ctx.region)
                .filter(|a| filter.as_ref().map(|f| &a.target_key_id == f).unwrap_or(true))
                .map(|a| json!({"AliasName": a.name, "AliasArn": a.arn(), "TargetKeyId": a.target_key_id, "CreationDate": a.creation_date, "LastUpdatedDate": a.last_updated_date}))
                .collect();
            page(aliases, &input, "Aliases")
        }
        "EnableKeyRotation" | "DisableKeyRotation" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, &format!("kms:{op}"), None)?;
            require_usable(k)?;
            if k.is_replica() {
                return Err(KmsError::UnsupportedOperation(format!(
                    "{} is a replica key; rotate its primary key",
                    k.arn
                )));
            }
            let period = input.opt_u64("RotationPeriodInDays")?;
            if let Some(p) = period {
                if !(90..=2560).contains(&p) {
                    return Err(KmsError::Validation("RotationPeriodInDays must be between 90 and 2560".into()));
                }
            }
            let enable = op == "EnableKeyRotation";
            let kid = id.1.clone();
            for (rid, k) in inner.state.keys.iter_mut() {
                if rid.1 == kid {
                    k.rotation_enabled = enable;
                    if let Some(p) = period {
                        k.rotation_period_days = p as u32;
                    }
                }
            }
            save_all_regions(inner, &kid)?;
            Ok(json!({}))
        }
        "GetKeyRotationStatus" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, "kms:GetKeyRotationStatus", None)?;
            let mut out = json!({"KeyRotationEnabled": k.rotation_enabled, "KeyId": k.arn});
            if k.rotation_enabled {
                out["RotationPeriodInDays"] = json!(k.rotation_period_days);
                let base = k.last_rotation.unwrap_or(k.creation_date);
                out["NextRotationDate"] = json!(base + k.rotation_period_days as f64 * 86400.0);
            }
            Ok(out)
        }
        "RotateKeyOnDemand" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, "kms:RotateKeyOnDemand", None)?;
            require_usable(k)?;
            if k.is_replica() {
                return Err(KmsError::UnsupportedOperation(format!(
                    "{} is a replica key; rotate its primary key",
                    k.arn
                )));
            }
            let arn = k.arn.clone();
            let kid = id.1.clone();
            let material = crypto::random_key();
            for (rid, k) in inner.state.keys.iter_mut() {
                if rid.1 == kid {
                    k.add_material(root, material.clone());
                    k.last_rotation = Some(ctx.now);
                }
            }
            save_all_regions(inner, &kid)?;
            Ok(json!({"KeyId": arn}))
        }
        "ListKeyRotations" => {
            let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
            let k = key(inner, &id)?;
            authorize(inner, ctx, k, "kms:ListKeyRotations", None)?;
            let rotations: Vec<Value> =
                (1..k.materials.len()).map(|_| json!({"KeyId": k.arn, "RotationType": "ON_DEMAND"})).collect();
            Ok(json!({"Rotations": rotations, "Truncated": false}))
        }
        other => Err(KmsError::UnknownOperation(format!("Operation {other} is not supported by this emulator"))),
    }
}

fn save_all_regions(inner: &Inner, key_id: &str) -> R<()> {
    let regions: Vec<String> = inner.state.keys.keys().filter(|(_, id)| id == key_id).map(|(r, _)| r.clone()).collect();
    for r in regions {
        inner.save_key(&r, key_id).map_err(internal)?;
    }
    Ok(())
}

fn check_algorithm(input: &Input, field: &str) -> R<()> {
    match input.opt_str(field)? {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        Some(other) => Err(KmsError::InvalidKeyUsage(format!(
            "Algorithm {other} is incompatible with key spec SYMMETRIC_DEFAULT."
        ))),
    }
}

fn check_policy_name(input: &Input) -> R<()> {
    match input.opt_str("PolicyName")? {
        None | Some("default") => Ok(()),
        Some(other) => Err(KmsError::NotFound(format!("No such policy exists: {other}"))),
    }
}

fn check_alias_name(name: &str) -> R<()> {
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err(KmsError::Validation(format!("Alias must start with the prefix \"alias/\": {name}")));
    };
    if rest.starts_with("aws/") {
        return Err(KmsError::InvalidAliasName("Alias must not begin with alias/aws/".into()));
    }
    if rest.is_empty() || name.len() > 256 || !rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b)) {
        return Err(KmsError::Validation(format!("Invalid alias name: {name}")));
    }
    Ok(())
}

fn page(items: Vec<Value>, input: &Input, field: &str) -> R<Value> {
    let limit = input.opt_u64("Limit")?.unwrap_or(100).clamp(1, 1000) as usize;
    let start = match input.opt_str("Marker")? {
        Some(m) => m.parse::<usize>().map_err(|_| KmsError::Validation("Invalid marker".into()))?,
        None => 0,
    };
    let total = items.len();
    let slice: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let end = start + slice.len();
    let mut out = json!({field: slice, "Truncated": end < total});
    if end < total {
        out["NextMarker"] = json!(end.to_string());
    }
    Ok(out)
}

fn list_keys(inner: &Inner, ctx: &ReqCtx, input: &Input) -> R<Value> {
    let mut keys: Vec<&Key> =
        inner.state.keys.values().filter(|k| k.account_id == ctx.caller.account && k.region == ctx.region).collect();
    keys.sort_by(|a, b| a.creation_date.total_cmp(&b.creation_date));
    let items = keys.into_iter().map(|k| json!({"KeyId": k.key_id, "KeyArn": k.arn})).collect();
    page(items, input, "Keys")
}

fn encrypt_with(k: &Key, enc: &BTreeMap<String, String>, plaintext: &[u8]) -> R<Vec<u8>> {
    let version = k.materials.len().checked_sub(1).ok_or_else(|| KmsError::Internal("key has no material".into()))?;
    Ok(ciphertext::encrypt(&k.materials[version], &k.key_id, version as u32, enc, plaintext))
}

fn decrypt_blob<'a>(
    inner: &'a Inner,
    ctx: &ReqCtx,
    blob: &[u8],
    enc: &BTreeMap<String, String>,
    key_ref: Option<&str>,
    action: &str,
) -> R<(&'a Key, Zeroizing<Vec<u8>>)> {
    let invalid = || KmsError::InvalidCiphertext(String::new());
    let parsed = ciphertext::parse(blob).map_err(|_| invalid())?;
    let id = (ctx.region.clone(), parsed.key_id.to_string());
    if let Some(r) = key_ref {
        let wanted = resolve(inner, ctx, r)?;
        if wanted != id {
            return Err(KmsError::IncorrectKey(
                "The key ID in the request does not identify a KMS key that can perform this operation.".into(),
            ));
        }
    }
    let k = inner
        .state
        .keys
        .get(&id)
        .ok_or_else(|| KmsError::NotFound(format!("Key '{}' does not exist", parsed.key_id)))?;
    authorize(inner, ctx, k, action, Some(enc))?;
    require_usable(k)?;
    let material = k.materials.get(parsed.material_version as usize).ok_or_else(invalid)?;
    let plain = ciphertext::decrypt(material, &parsed, enc).map_err(|_| invalid())?;
    Ok((k, plain))
}

fn create_key(inner: &mut Inner, root: &[u8; 32], ctx: &ReqCtx, input: &Input) -> R<Value> {
    let usage = input.opt_str("KeyUsage")?.unwrap_or("ENCRYPT_DECRYPT");
    if usage != "ENCRYPT_DECRYPT" {
        return Err(KmsError::UnsupportedOperation(format!("KeyUsage {usage} is not supported by this emulator")));
    }
    let spec = input.opt_str("KeySpec")?.or(input.opt_str("CustomerMasterKeySpec")?).unwrap_or("SYMMETRIC_DEFAULT");
    if spec != "SYMMETRIC_DEFAULT" {
        return Err(KmsError::UnsupportedOperation(format!("KeySpec {spec} is not supported by this emulator")));
    }
    match input.opt_str("Origin")? {
        None | Some("AWS_KMS") => {}
        Some(o) => return Err(KmsError::UnsupportedOperation(format!("Origin {o} is not supported by this emulator"))),
    }
    let description = input.opt_str("Description")?.unwrap_or("").to_string();
    if description.len() > 8192 {
        return Err(KmsError::Validation("Description is too long".into()));
    }
    let policy = match input.opt_str("Policy")? {
        Some(p) => {
            validate_policy(p)?;
            p.to_string()
        }
        None => policy::default_key_policy(&ctx.caller.account),
    };
    // Creating a key is an identity-policy permission (kms:CreateKey on "*").
    if let CallerKind::AssumedRole { .. } = ctx.caller.kind {
        let ids = identity_policies(inner, &ctx.caller);
        let keys = ContextKeys::new();
        let d = policy::authorize_identity(
            &ids,
            &policy::Request { caller: &ctx.caller, action: "kms:CreateKey", resource: "*", context: &keys },
        );
        if d != Decision::Allow {
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: kms:CreateKey",
                ctx.caller.arn
            )));
        }
    }
    let multi_region = input.opt_bool("MultiRegion")?.unwrap_or(false);
    let key_id = if multi_region { crate::ids::mrk_id() } else { crate::ids::key_id() };
    let mut k = Key {
        account_id: ctx.caller.account.clone(),
        region: ctx.region.clone(),
        arn: key_arn(&ctx.region, &ctx.caller.account, &key_id),
        key_id: key_id.clone(),
        description,
        creation_date: ctx.now,
        state: KeyState::Enabled,
        deletion_date: None,
        pending_window_days: None,
        policy,
        key_usage: usage.to_string(),
        key_spec: spec.to_string(),
        multi_region,
        primary_region: multi_region.then(|| ctx.region.clone()),
        rotation_enabled: false,
        rotation_period_days: 365,
        last_rotation: None,
        sealed_materials: vec![],
        materials: vec![],
    };
    k.add_material(root, crypto::random_key());
    let id = (ctx.region.clone(), key_id);
    inner.state.keys.insert(id.clone(), k);
    inner.save_key(&id.0, &id.1).map_err(internal)?;
    let k = key(inner, &id)?;
    Ok(json!({"KeyMetadata": metadata(inner, k)}))
}

fn replicate_key(inner: &mut Inner, ctx: &ReqCtx, input: &Input) -> R<Value> {
    let id = resolve(inner, ctx, input.key_id("KeyId")?)?;
    let target = input.str("ReplicaRegion")?.to_string();
    if !crate::ids::is_region(&target) {
        return Err(KmsError::Validation(format!("Invalid region {target}")));
    }
    let k = key(inner, &id)?;
    authorize(inner, ctx, k, "kms:ReplicateKey", None)?;
    if !k.multi_region || k.is_replica() {
        return Err(KmsError::UnsupportedOperation(format!("{} is not a multi-Region primary key", k.arn)));
    }
    require_not_pending(k)?;
    if target == k.region {
        return Err(KmsError::Validation(format!("The replica region {target} is the primary key's region")));
    }
    let rid = (target.clone(), k.key_id.clone());
    if inner.state.keys.contains_key(&rid) {
        return Err(KmsError::AlreadyExists(format!(
            "Replica key {} already exists",
            key_arn(&target, &k.account_id, &k.key_id)
        )));
    }
    let policy = match input.opt_str("Policy")? {
        Some(p) => {
            validate_policy(p)?;
            p.to_string()
        }
        None => k.policy.clone(),
    };
    let mut replica = k.clone();
    replica.region = target.clone();
    replica.arn = key_arn(&target, &k.account_id, &k.key_id);
    replica.policy = policy.clone();
    replica.creation_date = ctx.now;
    if let Some(d) = input.opt_str("Description")? {
        replica.description = d.to_string();
    }
    inner.state.keys.insert(rid.clone(), replica);
    inner.save_key(&rid.0, &rid.1).map_err(internal)?;
    let r = key(inner, &rid)?;
    Ok(json!({"ReplicaKeyMetadata": metadata(inner, r), "ReplicaPolicy": policy, "ReplicaTags": []}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names() {
        assert!(check_alias_name("alias/app-key").is_ok());
        assert!(check_alias_name("app").is_err());
        assert!(matches!(check_alias_name("alias/aws/x"), Err(KmsError::InvalidAliasName(_))));
        assert!(check_alias_name("alias/").is_err());
    }

    #[test]
    fn input_parsing_never_panics() {
        for b in [&b""[..], b"[]", b"{", b"null", b"{\"KeyId\": 5}"] {
            if let Ok(i) = Input::parse(b) {
                let _ = i.str("KeyId");
                let _ = i.blob("Plaintext");
                let _ = i.context("EncryptionContext");
            }
        }
        assert!(matches!(Input::parse(b"[]"), Err(KmsError::Serialization(_))));
    }
}
