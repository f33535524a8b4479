//! The emulator's model (accounts, keys, aliases, roles, endpoints) and its persistence.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{self, KeyBytes};
use crate::store::Store;

pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub name: String,
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub created: f64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("account_id", &self.account_id)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Key {
    pub account_id: String,
    pub region: String,
    pub key_id: String,
    pub arn: String,
    pub description: String,
    pub creation_date: f64,
    pub state: KeyState,
    /// State to return to when a scheduled deletion is cancelled (AWS: Disabled).
    pub deletion_date: Option<f64>,
    pub pending_window_days: Option<u32>,
    pub policy: String,
    pub key_usage: String,
    pub key_spec: String,
    pub multi_region: bool,
    /// For multi-region keys: the primary key's region.
    pub primary_region: Option<String>,
    pub rotation_enabled: bool,
    pub rotation_period_days: u32,
    pub last_rotation: Option<f64>,
    /// Key material versions, each sealed under the root key (base64). Never plaintext.
    pub sealed_materials: Vec<String>,
    #[serde(skip)]
    pub materials: Vec<KeyBytes>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("arn", &self.arn)
            .field("state", &self.state)
            .field("versions", &self.materials.len())
            .finish_non_exhaustive()
    }
}

fn material_aad(key_id: &str, version: usize) -> Vec<u8> {
    format!("atrest-aws-emulator/key-material/v1|{key_id}|{version}").into_bytes()
}

impl Key {
    pub fn add_material(&mut self, root: &[u8; 32], material: KeyBytes) {
        let version = self.materials.len();
        let sealed = crypto::seal(root, &material_aad(&self.key_id, version), material.as_ref());
        self.sealed_materials.push(B64.encode(sealed));
        self.materials.push(material);
    }

    pub fn unseal_materials(&mut self, root: &[u8; 32]) -> anyhow::Result<()> {
        let mut out = Vec::with_capacity(self.sealed_materials.len());
        for (i, s) in self.sealed_materials.iter().enumerate() {
            let sealed = B64.decode(s)?;
            let plain = crypto::open(root, &material_aad(&self.key_id, i), &sealed)
                .map_err(|_| anyhow::anyhow!("key material of {} failed to unseal", self.arn))?;
            if plain.len() != 32 {
                anyhow::bail!("key material of {} has a bad length", self.arn);
            }
            let mut k = Zeroizing::new([0u8; 32]);
            k.copy_from_slice(&plain);
            out.push(k);
        }
        self.materials = out;
        Ok(())
    }

    pub fn is_replica(&self) -> bool {
        self.multi_region && self.primary_region.as_deref() != Some(self.region.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alias {
    pub account_id: String,
    pub region: String,
    pub name: String,
    pub target_key_id: String,
    pub creation_date: f64,
    pub last_updated_date: f64,
}

impl Alias {
    pub fn arn(&self) -> String {
        format!("arn:aws:kms:{}:{}:{}", self.region, self.account_id, self.name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustVersion {
    /// When this version becomes visible to STS (IAM propagation delay).
    pub effective_at: f64,
    pub document: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub account_id: String,
    pub name: String,
    pub path: String,
    pub role_id: String,
    pub arn: String,
    pub create_date: String,
    pub description: Option<String>,
    pub max_session_duration: u32,
    pub trust: Vec<TrustVersion>,
    pub policies: BTreeMap<String, String>,
}

impl Role {
    pub fn current_trust(&self) -> Option<&str> {
        self.trust.last().map(|t| t.document.as_str())
    }

    /// The trust policy STS sees at `now`: the newest version that has propagated.
    pub fn effective_trust(&self, now: f64) -> Option<&str> {
        self.trust.iter().rev().find(|t| t.effective_at <= now).map(|t| t.document.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub id: String,
    pub owner_id: String,
    pub region: String,
    pub vpc_id: String,
    pub service_name: String,
    pub endpoint_type: String,
    /// EC2 state name: pending, pendingAcceptance, available, rejected, deleted, failed.
    pub state: String,
    pub client_token: Option<String>,
    pub creation_timestamp: String,
    pub ready_at: Option<f64>,
    pub port: u16,
    pub dns_name: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub private_dns_enabled: bool,
    pub tags: Vec<(String, String)>,
}

impl Endpoint {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn listens(&self) -> bool {
        matches!(self.state.as_str(), "pending" | "pendingAcceptance" | "available")
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub unavailable_regions: BTreeSet<String>,
    /// Regions (or `*`) where new endpoints wait in pendingAcceptance.
    pub acceptance_required: BTreeSet<String>,
    pub clock_offset_secs: i64,
}

#[derive(Default)]
pub struct State {
    /// Operator first, then customers.
    pub accounts: Vec<Account>,
    /// (region, key id)
    pub keys: BTreeMap<(String, String), Key>,
    /// (account, region, alias name)
    pub aliases: BTreeMap<(String, String, String), Alias>,
    /// (account, role name)
    pub roles: BTreeMap<(String, String), Role>,
    pub endpoints: BTreeMap<String, Endpoint>,
    pub settings: Settings,
}

impl State {
    pub fn account_by_key(&self, access_key_id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.access_key_id == access_key_id)
    }

    pub fn role_by_arn(&self, arn: &str) -> Option<&Role> {
        let (account, name) = parse_role_arn(arn)?;
        self.roles.get(&(account, name)).filter(|r| r.arn == arn || arn_without_path_matches(arn, r))
    }
}

fn arn_without_path_matches(arn: &str, role: &Role) -> bool {
    // Sessions record the role ARN with its path; accept the bare form too.
    arn == format!("arn:aws:iam::{}:role/{}", role.account_id, role.name)
}

/// `arn:aws:iam::ACCT:role/PATH/NAME` → (ACCT, NAME).
pub fn parse_role_arn(arn: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "iam" {
        return None;
    }
    if !crate::ids::is_account_id(parts[4]) {
        return None;
    }
    let res = parts[5].strip_prefix("role/")?;
    let name = res.rsplit('/').next()?;
    if name.is_empty() {
        return None;
    }
    Some((parts[4].to_string(), name.to_string()))
}

pub fn key_row(region: &str, id: &str) -> String {
    format!("{region}/{id}")
}

/// The model plus its store: every mutation goes through here under one lock.
pub struct Inner {
    pub state: State,
    pub db: Store,
}

impl Inner {
    pub fn load(db: Store, root: &[u8; 32]) -> anyhow::Result<Inner> {
        let mut state = State { accounts: db.all("accounts")?, ..Default::default() };
        for mut k in db.all::<Key>("keys")? {
            k.unseal_materials(root)?;
            state.keys.insert((k.region.clone(), k.key_id.clone()), k);
        }
        for a in db.all::<Alias>("aliases")? {
            state.aliases.insert((a.account_id.clone(), a.region.clone(), a.name.clone()), a);
        }
        for r in db.all::<Role>("roles")? {
            state.roles.insert((r.account_id.clone(), r.name.clone()), r);
        }
        for e in db.all::<Endpoint>("endpoints")? {
            state.endpoints.insert(e.id.clone(), e);
        }
        state.settings = db.get("meta", "settings")?.unwrap_or_default();
        Ok(Inner { state, db })
    }

    pub fn save_account(&self, a: &Account) -> anyhow::Result<()> {
        self.db.put("accounts", &a.account_id, a)
    }

    pub fn save_key(&self, region: &str, id: &str) -> anyhow::Result<()> {
        match self.state.keys.get(&(region.to_string(), id.to_string())) {
            Some(k) => self.db.put("keys", &key_row(region, id), k),
            None => self.db.delete("keys", &key_row(region, id)),
        }
    }

    pub fn save_alias(&self, account: &str, region: &str, name: &str) -> anyhow::Result<()> {
        let row = format!("{account}/{region}/{name}");
        match self.state.aliases.get(&(account.to_string(), region.to_string(), name.to_string())) {
            Some(a) => self.db.put("aliases", &row, a),
            None => self.db.delete("aliases", &row),
        }
    }

    pub fn save_role(&self, account: &str, name: &str) -> anyhow::Result<()> {
        let row = format!("{account}/{name}");
        match self.state.roles.get(&(account.to_string(), name.to_string())) {
            Some(r) => self.db.put("roles", &row, r),
            None => self.db.delete("roles", &row),
        }
    }

    pub fn save_endpoint(&self, id: &str) -> anyhow::Result<()> {
        match self.state.endpoints.get(id) {
            Some(e) => self.db.put("endpoints", id, e),
            None => self.db.delete("endpoints", id),
        }
    }

    pub fn save_settings(&self) -> anyhow::Result<()> {
        self.db.put("meta", "settings", &self.state.settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arn_parsing() {
        assert_eq!(
            parse_role_arn("arn:aws:iam::123456789012:role/a/b/MyRole"),
            Some(("123456789012".into(), "MyRole".into()))
        );
        assert_eq!(parse_role_arn("arn:aws:iam::123:role/x"), None);
        assert_eq!(parse_role_arn("arn:aws:iam::123456789012:user/x"), None);
        assert_eq!(parse_role_arn("garbage"), None);
    }

    #[test]
    fn material_never_stored_plain() {
        let root = crypto::random_key();
        let mut k = Key {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            key_id: "k".into(),
            arn: "arn".into(),
            description: String::new(),
            creation_date: 0.0,
            state: KeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            policy: String::new(),
            key_usage: "ENCRYPT_DECRYPT".into(),
            key_spec: "SYMMETRIC_DEFAULT".into(),
            multi_region: false,
            primary_region: None,
            rotation_enabled: false,
            rotation_period_days: 365,
            last_rotation: None,
            sealed_materials: vec![],
            materials: vec![],
        };
        let m = Zeroizing::new([42u8; 32]);
        k.add_material(&root, m);
        let json = serde_json::to_string(&k).unwrap();
        assert!(!json.contains(&B64.encode([42u8; 32])));
        let mut back: Key = serde_json::from_str(&json).unwrap();
        back.unseal_materials(&root).unwrap();
        assert_eq!(back.materials[0].as_ref(), &[42u8; 32]);
    }
}
