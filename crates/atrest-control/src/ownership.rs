//! Several replicas on one database: each cluster's data plane is served by the replica holding
//! the lease `cluster:<id>`. The holder renews it as it reconciles; when it stops (crash, kill,
//! network split) the lease expires and the next replica to look takes the cluster over, opening
//! its keys from the shared data-plane directory. Other replicas forward the cluster's data
//! requests to the holder. With the single-process SQLite store every cluster is served here.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use atrest_core::clusters::Cluster;
use atrest_core::{ObjectId, Result};

use crate::Control;

/// Who this process is among the replicas sharing a database.
#[derive(Clone, Debug)]
pub struct Replica {
    /// Unique among the replicas; a replica restarted with the same id takes its leases back at once.
    pub id: String,
    /// Where the other replicas reach this one (its Admin API).
    pub url: String,
    /// False with the SQLite store: one process, nothing to share.
    pub shared: bool,
    /// How long a lease outlives its holder's last renewal.
    pub lease_ttl: Duration,
}

/// Where a cluster's data plane is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Here,
    /// Another replica, at this URL.
    There(String),
}

fn lease_name(cluster: &ObjectId) -> String {
    format!("cluster:{cluster}")
}

impl Control {
    /// Renewed recently enough that no other replica can have taken it.
    fn holds_fresh(&self, cluster: &ObjectId) -> bool {
        let ttl = self.replica.lease_ttl;
        self.held.lock().ok().and_then(|h| h.get(cluster).copied()).is_some_and(|t| t.elapsed() < ttl / 3)
    }

    async fn take_or_renew(&self, cluster: &ObjectId) -> Result<bool> {
        let r = &self.replica;
        let now = Instant::now();
        let got = self.store.acquire_lease(&lease_name(cluster), &r.id, &r.url, r.lease_ttl).await?;
        if let Ok(mut held) = self.held.lock() {
            if got {
                held.insert(*cluster, now);
            } else {
                held.remove(cluster);
            }
        }
        Ok(got)
    }

    /// The clusters this replica serves now, taking free or expired ones and renewing its own.
    /// Clusters it lost are locked here (their keys dropped) so one replica serves each.
    pub async fn claim_clusters(&self, clusters: &[Cluster]) -> HashSet<ObjectId> {
        if !self.replica.shared {
            return clusters.iter().map(|c| c.id).collect();
        }
        let leases = match self.store.leases("cluster:").await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "reading cluster leases");
                Vec::new()
            }
        };
        let mut mine = HashSet::new();
        for c in clusters {
            let name = lease_name(&c.id);
            let other_live = leases.iter().any(|l| l.name == name && l.live && l.holder != self.replica.id);
            let owned = if self.holds_fresh(&c.id) {
                true
            } else if other_live {
                false
            } else {
                self.take_or_renew(&c.id).await.unwrap_or(false)
            };
            if owned {
                mine.insert(c.id);
            } else {
                self.forget(&c.id);
            }
        }
        mine
    }

    /// Drops what this replica held of a cluster it no longer serves.
    fn forget(&self, cluster: &ObjectId) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(cluster);
        }
        if matches!(self.data.lock_cluster(&cluster.to_string()), Ok(true)) {
            tracing::info!(cluster = %cluster, "another replica serves this cluster now: keys dropped here");
        }
    }

    /// Where the cluster's data is served; takes it over when nobody holds it.
    pub async fn cluster_owner(&self, c: &Cluster) -> Result<Owner> {
        if !self.replica.shared || self.holds_fresh(&c.id) {
            return Ok(Owner::Here);
        }
        let name = lease_name(&c.id);
        let lease = self.store.leases(&name).await?.into_iter().find(|l| l.name == name);
        match lease {
            Some(l) if l.live && l.holder != self.replica.id => Ok(Owner::There(l.holder_url)),
            _ if self.take_or_renew(&c.id).await? => Ok(Owner::Here),
            _ => {
                let lease = self.store.leases(&name).await?.into_iter().find(|l| l.name == name);
                Ok(lease.map(|l| Owner::There(l.holder_url)).unwrap_or(Owner::Here))
            }
        }
    }

    /// A deleted cluster's lease goes with it.
    pub(crate) async fn release_cluster(&self, cluster: &ObjectId) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(cluster);
        }
        if self.replica.shared {
            let _ = self.store.release_lease(&lease_name(cluster), &self.replica.id).await;
        }
    }

    /// On a clean stop: every cluster's lease is given up so others take over at once.
    pub async fn release_all(&self) {
        let held: Vec<ObjectId> = self.held.lock().map(|h| h.keys().copied().collect()).unwrap_or_default();
        for c in held {
            let _ = self.data.lock_cluster(&c.to_string());
            self.release_cluster(&c).await;
        }
    }

    /// A short lease on one piece of reconcile work (e.g. `endpoint:<id>`), so that replicas do
    /// not call AWS for the same step at once; `None` if another replica is at it.
    pub(crate) async fn work_lease(&self, name: String) -> Option<WorkLease<'_>> {
        if !self.replica.shared {
            return Some(WorkLease { control: self, name: None });
        }
        let r = &self.replica;
        match self.store.acquire_lease(&name, &r.id, &r.url, r.lease_ttl).await {
            Ok(true) => Some(WorkLease { control: self, name: Some(name) }),
            _ => None,
        }
    }
}

/// Held until [`WorkLease::release`]; a holder that dies leaves it to expire.
pub(crate) struct WorkLease<'a> {
    control: &'a Control,
    name: Option<String>,
}

impl WorkLease<'_> {
    pub(crate) async fn release(self) {
        if let Some(name) = &self.name {
            let _ = self.control.store.release_lease(name, &self.control.replica.id).await;
        }
    }
}
