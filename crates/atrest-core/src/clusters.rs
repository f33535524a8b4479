//! Clusters: what atrest supports of `ClusterDescription20240805`, their lifecycle, and the rules
//! for customer key management per cluster.
//!
//! `stateName`: CREATING → IDLE; IDLE → UPDATING (provider switch, resize, regions) → IDLE;
//! any → DELETING → removed.

use serde::{Deserialize, Serialize};

use crate::private_endpoints::{PrivateEndpoint, Status as EndpointStatus};
use crate::{regions, Error, ObjectId, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Creating,
    Idle,
    Updating,
    Deleting,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Creating => "CREATING",
            State::Idle => "IDLE",
            State::Updating => "UPDATING",
            State::Deleting => "DELETING",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Provider {
    None,
    Aws,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::None => "NONE",
            Provider::Aws => "AWS",
        }
    }

    pub fn parse(s: &str) -> Result<Provider> {
        match s {
            "NONE" => Ok(Provider::None),
            "AWS" => Ok(Provider::Aws),
            "AZURE" | "GCP" => Err(Error::ProviderUnsupported { provider: s.into() }),
            other => Err(Error::InvalidEnumValue { field: "encryptionAtRestProvider".into(), value: other.into() }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionConfig {
    pub region: String,
    pub priority: u32,
    pub instance_size: String,
    pub node_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub id: ObjectId,
    pub group_id: ObjectId,
    pub name: String,
    pub regions: Vec<RegionConfig>,
    /// The provider the data is encrypted under now.
    pub provider: Provider,
    /// The provider asked for; differs from `provider` while a switch runs.
    pub desired_provider: Provider,
    pub state: State,
    pub paused: bool,
    pub created: time::OffsetDateTime,
    /// Progress of the running switch, 0..=100.
    pub progress: u8,
    /// When the master keys were last rotated (creation counts).
    #[serde(default)]
    pub master_key_rotated: Option<time::OffsetDateTime>,
}

pub const MAX_CLUSTERS_PER_PROJECT: usize = 25;
const TENANT_SIZES: &[&str] = &["M0", "M2", "M5", "FLEX"];

pub fn is_tenant(size: &str) -> bool {
    TENANT_SIZES.contains(&size)
}

fn valid_size(size: &str) -> bool {
    if is_tenant(size) {
        return true;
    }
    let s = size.strip_suffix("_NVME").unwrap_or(size);
    let s = s.strip_suffix("_GEN_2").unwrap_or(s);
    let (prefix, num) = s.split_at(s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len()));
    matches!(prefix, "M" | "R")
        && !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit())
        && num.parse::<u32>().is_ok_and(|n| n >= 10)
}

/// Atlas's `^[a-zA-Z0-9][a-zA-Z0-9-]*$`, at most 64 characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// What the cluster rules need to know about the project.
#[derive(Debug, Clone, Default)]
pub struct ProjectFacts {
    pub cmk_enabled_and_valid: bool,
    pub endpoints: Vec<PrivateEndpoint>,
    pub cluster_count: usize,
}

fn check_regions(regions: &[RegionConfig], provider: Provider, facts: &ProjectFacts) -> Result<()> {
    if regions.is_empty() {
        return Err(Error::MissingAttribute { name: "replicationSpecs.regionConfigs".into() });
    }
    let mut seen = std::collections::HashSet::new();
    for r in regions {
        if regions::to_aws(&r.region).is_none() {
            return Err(Error::InvalidRegion { region: r.region.clone(), provider: "AWS".into() });
        }
        if !seen.insert(r.region.clone()) {
            return Err(Error::InvalidAttribute {
                name: "replicationSpecs.regionConfigs".into(),
                reason: format!("region {} appears twice", r.region),
            });
        }
        if !valid_size(&r.instance_size) {
            return Err(Error::InvalidEnumValue {
                field: "electableSpecs.instanceSize".into(),
                value: r.instance_size.clone(),
            });
        }
        if provider == Provider::Aws && is_tenant(&r.instance_size) {
            return Err(Error::TenantEncryptionAtRest { instance_size: r.instance_size.clone() });
        }
        if !(1..=50).contains(&r.node_count) || !(0..=7).contains(&r.priority) {
            return Err(Error::InvalidAttribute {
                name: "replicationSpecs.regionConfigs".into(),
                reason: "nodeCount must be 1..50 and priority 0..7".into(),
            });
        }
        // Once a project has private endpoints, nodes go only where one is ACTIVE.
        if !facts.endpoints.is_empty()
            && !facts.endpoints.iter().any(|e| e.region == r.region && e.status == EndpointStatus::Active)
        {
            return Err(Error::PrivateEndpointUnavailable { region: r.region.clone() });
        }
    }
    Ok(())
}

fn check_provider(provider: Provider, facts: &ProjectFacts) -> Result<()> {
    if provider == Provider::Aws && !facts.cmk_enabled_and_valid {
        return Err(Error::EncryptionAtRestNotEnabled);
    }
    Ok(())
}

pub struct NewCluster {
    pub name: String,
    pub regions: Vec<RegionConfig>,
    pub provider: Provider,
}

pub fn create(group_id: ObjectId, new: NewCluster, facts: &ProjectFacts, now: time::OffsetDateTime) -> Result<Cluster> {
    if !valid_name(&new.name) {
        return Err(Error::InvalidAttribute {
            name: "name".into(),
            reason: "cluster names are 1 to 64 letters, digits and hyphens, starting with a letter or digit".into(),
        });
    }
    if facts.cluster_count >= MAX_CLUSTERS_PER_PROJECT {
        return Err(Error::TooManyClusters { max: MAX_CLUSTERS_PER_PROJECT });
    }
    check_regions(&new.regions, new.provider, facts)?;
    check_provider(new.provider, facts)?;
    Ok(Cluster {
        id: ObjectId::new(),
        group_id,
        name: new.name,
        regions: new.regions,
        provider: new.provider,
        desired_provider: new.provider,
        state: State::Creating,
        paused: false,
        created: now,
        progress: 0,
        master_key_rotated: Some(now),
    })
}

/// Whether a cluster's master keys are due for their scheduled rotation.
pub fn rotation_due(c: &Cluster, period: std::time::Duration, now: time::OffsetDateTime) -> bool {
    c.state == State::Idle && c.master_key_rotated.unwrap_or(c.created) + period <= now
}

/// What a PATCH may change.
#[derive(Debug, Clone, Default)]
pub struct ClusterPatch {
    pub regions: Option<Vec<RegionConfig>>,
    pub provider: Option<Provider>,
    pub paused: Option<bool>,
}

pub fn update(current: &Cluster, patch: ClusterPatch, facts: &ProjectFacts) -> Result<Cluster> {
    if current.state == State::Deleting {
        return Err(Error::ClusterBusy { name: current.name.clone(), state: current.state.as_str().into() });
    }
    let changes_data = patch.provider.is_some_and(|p| p != current.desired_provider)
        || patch.regions.as_ref().is_some_and(|r| *r != current.regions);
    if changes_data && current.state != State::Idle {
        return Err(Error::ClusterBusy { name: current.name.clone(), state: current.state.as_str().into() });
    }
    if current.paused && patch.paused != Some(false) && changes_data {
        return Err(Error::ClusterPaused { name: current.name.clone() });
    }
    let mut next = current.clone();
    let provider = patch.provider.unwrap_or(current.desired_provider);
    if let Some(regions) = patch.regions {
        // Only new regions must meet today's private-endpoint rule; existing nodes stay.
        let added: Vec<RegionConfig> =
            regions.iter().filter(|r| !current.regions.iter().any(|c| c.region == r.region)).cloned().collect();
        check_regions(&regions, provider, &ProjectFacts { endpoints: vec![], ..facts.clone() })?;
        if !added.is_empty() {
            check_regions(&added, provider, facts)?;
        }
        next.regions = regions;
    } else {
        check_regions(&current.regions, provider, &ProjectFacts { endpoints: vec![], ..facts.clone() })?;
    }
    if provider != current.desired_provider {
        check_provider(provider, facts)?;
        next.desired_provider = provider;
        next.state = State::Updating;
        next.progress = 0;
    }
    if let Some(p) = patch.paused {
        next.paused = p;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(r: &str, size: &str) -> RegionConfig {
        RegionConfig { region: r.into(), priority: 7, instance_size: size.into(), node_count: 3 }
    }

    fn facts(valid: bool) -> ProjectFacts {
        ProjectFacts { cmk_enabled_and_valid: valid, ..Default::default() }
    }

    #[test]
    fn customer_keys_need_m10_and_a_valid_project_key() {
        let new =
            |size: &str, p| NewCluster { name: "c1".into(), regions: vec![region("US_EAST_1", size)], provider: p };
        let now = crate::time_fmt::now();
        let g = ObjectId::new();
        for tenant in ["M0", "M2", "M5"] {
            assert_eq!(
                create(g, new(tenant, Provider::Aws), &facts(true), now),
                Err(Error::TenantEncryptionAtRest { instance_size: tenant.into() })
            );
            assert!(create(g, new(tenant, Provider::None), &facts(true), now).is_ok());
        }
        assert_eq!(create(g, new("M10", Provider::Aws), &facts(false), now), Err(Error::EncryptionAtRestNotEnabled));
        let c = create(g, new("M10", Provider::Aws), &facts(true), now).unwrap();
        assert_eq!(c.state, State::Creating);
        assert!(create(g, new("M7", Provider::None), &facts(true), now).is_err());
    }

    #[test]
    fn switching_provider_updates_and_needs_idle() {
        let now = crate::time_fmt::now();
        let mut c = create(
            ObjectId::new(),
            NewCluster { name: "c".into(), regions: vec![region("US_EAST_1", "M10")], provider: Provider::None },
            &facts(true),
            now,
        )
        .unwrap();
        c.state = State::Idle;
        let next =
            update(&c, ClusterPatch { provider: Some(Provider::Aws), ..Default::default() }, &facts(true)).unwrap();
        assert_eq!(
            (next.state, next.desired_provider, next.provider),
            (State::Updating, Provider::Aws, Provider::None)
        );
        assert!(matches!(
            update(&next, ClusterPatch { provider: Some(Provider::None), ..Default::default() }, &facts(true)),
            Err(Error::ClusterBusy { .. })
        ));
    }

    #[test]
    fn new_regions_need_an_active_endpoint_once_endpoints_exist() {
        let g = ObjectId::new();
        let mut e = crate::private_endpoints::new_endpoint(g, "US_EAST_1", crate::time_fmt::now());
        e.status = EndpointStatus::Active;
        let f = ProjectFacts { cmk_enabled_and_valid: true, endpoints: vec![e], cluster_count: 0 };
        let mk = |r: &str| NewCluster { name: "c".into(), regions: vec![region(r, "M10")], provider: Provider::Aws };
        assert!(create(g, mk("US_EAST_1"), &f, crate::time_fmt::now()).is_ok());
        assert_eq!(
            create(g, mk("EU_WEST_1"), &f, crate::time_fmt::now()),
            Err(Error::PrivateEndpointUnavailable { region: "EU_WEST_1".into() })
        );
    }
}
