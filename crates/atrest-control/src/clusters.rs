//! Clusters: API requests decided by `atrest-core`, and the reconciler that makes each cluster's
//! encrypted storage match its record: create, open when its key is usable, switch provider
//! (re-encryption with progress), delete (crypto-shredding first).

use std::sync::Arc;

use atrest_core::clusters::{self as rules, Cluster, ClusterPatch, NewCluster, ProjectFacts, Provider, State};
use atrest_core::events::Event;
use atrest_core::{time_fmt, Error, ObjectId, Result};
use atrest_dataplane::{DataError, MasterKeyWrapper, Progress};
use serde_json::json;

use crate::Control;

impl Control {
    async fn project_facts(&self, group: &ObjectId) -> Result<ProjectFacts> {
        let cfg = self.aws_kms(group).await?.unwrap_or_default();
        Ok(ProjectFacts {
            cmk_enabled_and_valid: cfg.enabled && cfg.valid,
            endpoints: self.store.all_private_endpoints(group).await?,
            cluster_count: self.store.all_clusters(group).await?.len(),
        })
    }

    pub async fn clusters_using_customer_keys(&self, group: &ObjectId) -> Result<u64> {
        Ok(self
            .store
            .all_clusters(group)
            .await?
            .iter()
            .filter(|c| c.provider == Provider::Aws || c.desired_provider == Provider::Aws)
            .count() as u64)
    }

    pub async fn create_cluster(&self, group: &ObjectId, new: NewCluster) -> Result<Cluster> {
        let facts = self.project_facts(group).await?;
        let cluster = rules::create(*group, new, &facts, time_fmt::now())?;
        let event = Event::new(
            *group,
            "CLUSTER_CREATED",
            json!({"clusterName": cluster.name, "encryptionAtRestProvider": cluster.provider.as_str()}),
        );
        self.store.insert_cluster(&cluster, &[event]).await?;
        self.nudge.notify_waiters();
        Ok(cluster)
    }

    pub async fn cluster(&self, group: &ObjectId, name: &str) -> Result<Cluster> {
        self.store
            .get_cluster(group, name)
            .await?
            .ok_or_else(|| Error::ClusterNotFound { name: name.into(), group: group.to_string() })
    }

    pub async fn update_cluster(&self, group: &ObjectId, name: &str, patch: ClusterPatch) -> Result<Cluster> {
        // Compare-and-set against the record the rules saw: a reconcile step (of any replica)
        // moving the cluster meanwhile makes the rules decide again on what it wrote.
        loop {
            let current = self.cluster(group, name).await?;
            let facts = self.project_facts(group).await?;
            let next = rules::update(&current, patch.clone(), &facts)?;
            if next == current {
                return Ok(next);
            }
            let mut events = vec![];
            if next.desired_provider != current.desired_provider {
                events.push(Event::new(*group, "CLUSTER_ENCRYPTION_AT_REST_PROVIDER_CHANGE_STARTED", json!({"clusterName": name, "from": current.provider.as_str(), "to": next.desired_provider.as_str()})));
            }
            events.push(Event::new(*group, "CLUSTER_UPDATE_SUBMITTED", json!({"clusterName": name})));
            if self.store.transition_cluster(&current, &next, &events).await? {
                self.nudge.notify_waiters();
                return Ok(next);
            }
        }
    }

    pub async fn delete_cluster(&self, group: &ObjectId, name: &str) -> Result<()> {
        loop {
            let current = self.cluster(group, name).await?;
            if current.state == State::Deleting {
                return Ok(());
            }
            let mut next = current.clone();
            next.state = State::Deleting;
            let event = Event::new(*group, "CLUSTER_DELETE_SUBMITTED", json!({"clusterName": name}));
            if self.store.transition_cluster(&current, &next, &[event]).await? {
                self.nudge.notify_waiters();
                return Ok(());
            }
        }
    }

    fn service_wrapper(&self) -> &dyn MasterKeyWrapper {
        self.service_key.as_ref()
    }

    /// Live progress of a running provider switch.
    pub fn switch_progress(&self, cluster: &ObjectId) -> Option<Progress> {
        self.progress.lock().ok()?.get(cluster).copied()
    }

    /// Drops the unwrapped keys of every customer-key cluster of the project: its key is no longer valid.
    pub async fn lock_customer_key_clusters(&self, group: &ObjectId) {
        if let Ok(clusters) = self.store.all_clusters(group).await {
            for c in clusters.iter().filter(|c| c.provider == Provider::Aws) {
                self.lock_for_key(c).await;
            }
        }
    }

    /// Locks a customer-key cluster served here, with its event (once: only the call that found
    /// it open records it).
    async fn lock_for_key(&self, c: &Cluster) {
        if let Ok(true) = self.data.lock_cluster(&c.id.to_string()) {
            tracing::warn!(cluster = %c.name, "customer key invalid: cluster locked");
            let event = Event::new(c.group_id, "CLUSTER_DATA_INACCESSIBLE", json!({"clusterName": c.name}));
            let _ = self.store.append_events(&[event]).await;
        }
    }

    /// Opens an IDLE cluster served here whose keys are not loaded yet (a data request that
    /// arrived before the reconciler, or right after a takeover). Skipped while a reconcile step
    /// is working on it.
    pub async fn ensure_open(&self, c: &Cluster) -> Result<()> {
        if c.state != State::Idle || self.data.is_open(&c.id.to_string()) {
            return Ok(());
        }
        let claimed = self.busy.lock().map(|mut b| b.insert(c.id)).unwrap_or(false);
        if !claimed {
            return Ok(());
        }
        let opened = self.open_cluster(c).await;
        if let Ok(mut b) = self.busy.lock() {
            b.remove(&c.id);
        }
        opened
    }

    /// One reconcile step for one cluster served here. Each state change is written with its event
    /// only if the record is still what this step started from, so of two replicas (or a
    /// replica and the API) racing, one moves it and one event is recorded.
    pub async fn reconcile_cluster(&self, before: Cluster) -> Result<()> {
        let mut c = before.clone();
        let id = c.id.to_string();
        let internal = |e: DataError| Error::internal(e);
        match c.state {
            State::Deleting => {
                // Crypto-shredding: the wrapped keys go first, then the files.
                self.data.destroy_cluster(&id).await.or_else(|e| match e {
                    DataError::ClusterNotFound(_) => Ok(()),
                    e => Err(internal(e)),
                })?;
                let event = Event::new(c.group_id, "CLUSTER_DELETED", json!({"clusterName": c.name}));
                self.store.delete_cluster(&c, &[event]).await?;
                self.release_cluster(&c.id).await;
                Ok(())
            }
            State::Creating => {
                let regions: Vec<&str> = c.regions.iter().map(|r| r.region.as_str()).collect();
                let created = match c.provider {
                    Provider::Aws => match self.kms_wrapper(&c.group_id).await {
                        Ok(w) => self.data.create_cluster(&id, &regions, &w).await,
                        Err(e) => return Err(Error::KeyInaccessible { detail: e.to_string() }),
                    },
                    Provider::None => self.data.create_cluster(&id, &regions, self.service_wrapper()).await,
                };
                match created {
                    // Created by a replica that died before recording it: the keyring is there.
                    Ok(()) | Err(DataError::ClusterExists(_)) => {}
                    Err(e) => return Err(internal(e)),
                }
                c.state = State::Idle;
                let event = Event::new(c.group_id, "CLUSTER_READY", json!({"clusterName": c.name}));
                self.store.transition_cluster(&before, &c, &[event]).await?;
                Ok(())
            }
            State::Updating if c.desired_provider != c.provider => {
                let done = self.switch_provider(&c).await?;
                c.provider = done;
                c.state = State::Idle;
                c.progress = 100;
                let event = Event::new(
                    c.group_id,
                    "CLUSTER_ENCRYPTION_AT_REST_PROVIDER_CHANGED",
                    json!({"clusterName": c.name, "encryptionAtRestProvider": done.as_str()}),
                );
                self.store.transition_cluster(&before, &c, &[event]).await?;
                if let Ok(mut p) = self.progress.lock() {
                    p.remove(&c.id);
                }
                Ok(())
            }
            State::Updating => {
                c.state = State::Idle;
                self.store.transition_cluster(&before, &c, &[]).await?;
                Ok(())
            }
            State::Idle => {
                // A replica that served the PATCH re-wrapped the master keys under a new CMK in the
                // shared directory: re-open from there (the keys themselves did not change).
                if self.replica.shared && self.data.keyring_changed_elsewhere(&id).unwrap_or(false) {
                    let _ = self.data.lock_cluster(&id);
                }
                if c.provider == Provider::Aws && self.data.is_open(&id) {
                    // The key check may have run on another replica: follow the stored verdict.
                    let usable = self.aws_kms(&c.group_id).await?.is_some_and(|k| k.enabled && k.valid);
                    if !usable {
                        self.lock_for_key(&c).await;
                        return Ok(());
                    }
                }
                if !self.data.is_open(&id) {
                    self.open_cluster(&c).await?;
                }
                if self.data.is_open(&id)
                    && rules::rotation_due(
                        &c,
                        self.settings.master_key_rotation_period,
                        time::OffsetDateTime::now_utc(),
                    )
                {
                    self.rotate_master_key(&c).await?;
                }
                Ok(())
            }
        }
    }

    /// Rotates a cluster's master keys: database keys are re-wrapped, data is not rewritten.
    pub async fn rotate_master_key(&self, c: &Cluster) -> Result<u32> {
        let id = c.id.to_string();
        if c.state != State::Idle {
            return Err(Error::ClusterBusy { name: c.name.clone(), state: c.state.as_str().into() });
        }
        if !self.data.is_open(&id) {
            return Err(Error::KeyInaccessible { detail: "the cluster's keys are not loaded".into() });
        }
        let version = match c.provider {
            Provider::None => self.data.rotate_master_key(&id, self.service_wrapper()).await,
            Provider::Aws => {
                let w = self
                    .kms_wrapper(&c.group_id)
                    .await
                    .map_err(|e| Error::KeyInaccessible { detail: e.to_string() })?;
                self.data.rotate_master_key(&id, &w).await
            }
        }
        .map_err(|e| Error::KeyInaccessible { detail: e.to_string() })?;
        let mut next = c.clone();
        next.master_key_rotated = Some(time_fmt::now());
        let event = Event::new(
            c.group_id,
            "CLUSTER_MASTER_KEY_ROTATED",
            json!({"clusterName": c.name, "masterKeyVersion": version}),
        );
        self.store.transition_cluster(c, &next, &[event]).await?;
        Ok(version)
    }

    /// Opens a cluster's keys if its provider's key can be used now.
    pub(crate) async fn open_cluster(&self, c: &Cluster) -> Result<()> {
        let id = c.id.to_string();
        let opened = match c.provider {
            Provider::None => self.data.open_cluster(&id, self.service_wrapper()).await,
            Provider::Aws => {
                let valid = self.aws_kms(&c.group_id).await?.is_some_and(|k| k.enabled && k.valid);
                if !valid {
                    return Ok(());
                }
                match self.kms_wrapper(&c.group_id).await {
                    Ok(w) => self.data.open_cluster(&id, &w).await,
                    Err(e) => return Err(Error::KeyInaccessible { detail: e.to_string() }),
                }
            }
        };
        match opened {
            Ok(()) => {
                let event = Event::new(c.group_id, "CLUSTER_DATA_ACCESSIBLE", json!({"clusterName": c.name}));
                self.store.append_events(&[event]).await
            }
            Err(e) => Err(Error::KeyInaccessible { detail: e.to_string() }),
        }
    }

    /// Re-encrypts a cluster under its desired provider; resumable after a crash.
    async fn switch_provider(&self, c: &Cluster) -> Result<Provider> {
        let id = c.id.to_string();
        let kms = self.kms_wrapper(&c.group_id).await.map_err(|e| Error::KeyInaccessible { detail: e.to_string() })?;
        let (old, new): (&dyn MasterKeyWrapper, &dyn MasterKeyWrapper) = match c.desired_provider {
            Provider::Aws => (self.service_wrapper(), &kms),
            Provider::None => (&kms, self.service_wrapper()),
        };
        let progress = |p: Progress| {
            if let Ok(mut map) = self.progress.lock() {
                map.insert(c.id, p);
            }
        };
        self.data.resume_reencryption(&id, old, new, progress).await.map_err(Error::internal)?;
        Ok(c.desired_provider)
    }
}

/// One pass over the clusters this replica serves; each cluster's step runs in its own task, one
/// at a time per cluster.
pub async fn step(control: &Arc<Control>) {
    let clusters = match control.store.every_cluster().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "listing clusters");
            return;
        }
    };
    let mine = control.claim_clusters(&clusters).await;
    for c in clusters.into_iter().filter(|c| mine.contains(&c.id)) {
        let busy = control.busy.lock().map(|mut b| !b.insert(c.id)).unwrap_or(true);
        if busy {
            continue;
        }
        let control = control.clone();
        tokio::spawn(async move {
            let id = c.id;
            let name = c.name.clone();
            if let Err(e) = control.reconcile_cluster(c).await {
                tracing::debug!(cluster = %name, error = %e, "cluster not reconciled yet");
            }
            if let Ok(mut b) = control.busy.lock() {
                b.remove(&id);
            }
        });
    }
}

pub async fn run(control: Arc<Control>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let tick = control.settings.reconcile_interval.min(std::time::Duration::from_millis(500));
    loop {
        step(&control).await;
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = control.nudge.notified() => {}
            _ = &mut shutdown => return,
        }
    }
}
