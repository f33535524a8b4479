//! KMS private endpoints: the API's create/delete requests and the reconciler that drives each
//! endpoint through EC2, plus the routing rule that keeps a project's KMS traffic on its endpoint.

use std::sync::Arc;

use atrest_core::encryption_at_rest::{AwsKms, KeyProblem};
use atrest_core::events::Event;
use atrest_core::private_endpoints::{self as pe, Observed, PrivateEndpoint, Status, Step};
use atrest_core::{time_fmt, Error, ObjectId, Result};
use serde_json::json;

use crate::Control;

fn status_event(e: &PrivateEndpoint, from: Status) -> Event {
    Event::new(
        e.group_id,
        "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_STATUS_CHANGED",
        json!({"endpointId": e.id, "regionName": e.region, "from": from.as_str(), "to": e.status.as_str(), "errorMessage": e.error_message}),
    )
}

impl Control {
    pub async fn create_private_endpoint(&self, group: &ObjectId, region: &str) -> Result<PrivateEndpoint> {
        let cfg = self.aws_kms(group).await?.unwrap_or_default();
        let existing = self.store.all_private_endpoints(group).await?;
        pe::check_create(region, cfg.enabled && cfg.require_private_networking, &existing)?;
        let e = pe::new_endpoint(*group, region, time_fmt::now());
        let event = Event::new(
            *group,
            "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_CREATED",
            json!({"endpointId": e.id, "regionName": region}),
        );
        self.store.insert_private_endpoint(&e, &[event]).await?;
        self.nudge.notify_waiters();
        Ok(e)
    }

    pub async fn private_endpoint(&self, group: &ObjectId, id: &ObjectId) -> Result<PrivateEndpoint> {
        self.store
            .get_private_endpoint(group, id)
            .await?
            .ok_or_else(|| Error::PrivateEndpointNotFound { id: id.to_string() })
    }

    pub async fn delete_private_endpoint(&self, group: &ObjectId, id: &ObjectId) -> Result<()> {
        let mut e = self.private_endpoint(group, id).await?;
        let from = e.status;
        e.status = pe::check_delete(&e)?;
        if from != e.status {
            let events = [status_event(&e, from)];
            self.store.update_private_endpoint(&e, &events).await?;
        }
        self.nudge.notify_waiters();
        Ok(())
    }

    /// Where a project's KMS calls for its configured region must go: `None` for the public
    /// endpoint, the ACTIVE private endpoint when private networking is required, or why no call
    /// may be made.
    pub async fn kms_route(&self, group: &ObjectId, cfg: &AwsKms) -> std::result::Result<Option<String>, KeyProblem> {
        if !cfg.require_private_networking {
            return Ok(None);
        }
        let region = cfg.region.clone().unwrap_or_default();
        let endpoints =
            self.store.all_private_endpoints(group).await.map_err(|e| KeyProblem::KeyUnavailable(e.to_string()))?;
        endpoints
            .into_iter()
            .find(|e| e.region == region && e.status == Status::Active)
            .and_then(|e| e.endpoint_url)
            .map(Some)
            .ok_or(KeyProblem::PrivateEndpointMissing(region))
    }

    /// One reconcile step for one endpoint: at most one EC2 change, then what it observes. Each
    /// state change is written with its events only if the record is still what the step read,
    /// so a step that raced another replica's records nothing.
    pub async fn reconcile_private_endpoint(&self, mut e: PrivateEndpoint) -> Result<()> {
        let mut before = e.clone();
        let region = e.aws_region();
        if e.status == Status::Initiating && e.aws_endpoint_id.is_none() {
            // Crash-safe: the client token makes a repeated create return the same endpoint.
            match self.ec2.create_endpoint(&region, &e.client_token()).await {
                Ok(id) => {
                    e.aws_endpoint_id = Some(id);
                    if !self.store.transition_private_endpoint(&before, &e, &[]).await? {
                        return Ok(());
                    }
                    before = e.clone();
                }
                Err(err) if err.is_transient() => return Ok(()),
                Err(err) => {
                    e.status = Status::Failed;
                    e.error_message = Some(format!("creating the VPC endpoint failed: {err}"));
                    let events = [status_event(&e, Status::Initiating)];
                    self.store.transition_private_endpoint(&before, &e, &events).await?;
                    return Ok(());
                }
            }
        }
        let Some(aws_id) = e.aws_endpoint_id.clone() else {
            if e.status == Status::Deleting {
                let event =
                    Event::new(e.group_id, "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_DELETED", json!({"endpointId": e.id}));
                return self.store.delete_private_endpoint(&e, &[event]).await;
            }
            return Ok(());
        };
        if e.status == Status::Deleting {
            if let Err(err) = self.ec2.delete_endpoint(&region, &aws_id).await {
                tracing::warn!(endpoint = %e.id, error = %err, "deleting VPC endpoint");
                return Ok(());
            }
        }
        let observed = match self.ec2.observe(&region, &aws_id).await {
            Ok(o) => o,
            Err(err) => {
                tracing::warn!(endpoint = %e.id, error = %err, "observing VPC endpoint");
                return Ok(());
            }
        };
        let from = e.status;
        match pe::next(e.status, &observed) {
            Step::Stay => {
                // An ACTIVE endpoint's address can move (an emulator restart); follow it.
                if let Observed::Available { url } = &observed {
                    if e.status == Status::Active && e.endpoint_url.as_deref() != Some(url.as_str()) {
                        e.endpoint_url = Some(url.clone());
                        self.store.transition_private_endpoint(&before, &e, &[]).await?;
                    }
                }
                Ok(())
            }
            Step::Become { status, error_message, endpoint_url } => {
                e.status = status;
                e.error_message = error_message;
                if endpoint_url.is_some() {
                    e.endpoint_url = endpoint_url;
                }
                let events = [status_event(&e, from)];
                if self.store.transition_private_endpoint(&before, &e, &events).await? && status == Status::Active {
                    self.retire_replaced(&e).await?;
                }
                Ok(())
            }
            Step::Recreate => {
                let mut old = e.clone();
                old.status = Status::PendingRecreation;
                old.endpoint_url = None;
                let new = pe::new_endpoint(e.group_id, &e.region, time_fmt::now());
                let events = [
                    status_event(&old, from),
                    Event::new(
                        e.group_id,
                        "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_CREATED",
                        json!({"endpointId": new.id, "regionName": new.region, "replaces": old.id}),
                    ),
                ];
                if !self.store.recreate_private_endpoint_if(&before, &old, &new, &events).await? {
                    return Ok(());
                }
                if !matches!(observed, Observed::Gone)
                    || self.ec2.observe(&region, &aws_id).await.ok() != Some(Observed::Gone)
                {
                    let _ = self.ec2.delete_endpoint(&region, &aws_id).await;
                }
                Ok(())
            }
            Step::Remove => {
                let event =
                    Event::new(e.group_id, "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_DELETED", json!({"endpointId": e.id}));
                self.store.delete_private_endpoint(&e, &[event]).await
            }
        }
    }

    /// Once a replacement is ACTIVE, the records it replaced are removed (their AWS endpoints too).
    async fn retire_replaced(&self, active: &PrivateEndpoint) -> Result<()> {
        for old in self.store.all_private_endpoints(&active.group_id).await? {
            if old.region == active.region && old.status == Status::PendingRecreation {
                if let Some(id) = &old.aws_endpoint_id {
                    if self.ec2.delete_endpoint(&old.aws_region(), id).await.is_err() {
                        continue;
                    }
                }
                let event = Event::new(
                    old.group_id,
                    "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_DELETED",
                    json!({"endpointId": old.id, "replacedBy": active.id}),
                );
                self.store.delete_private_endpoint(&old, &[event]).await?;
            }
        }
        Ok(())
    }
}

/// One pass over every endpoint that is not settled for good.
pub async fn step(control: &Arc<Control>) {
    let endpoints = match control.store.unsettled_private_endpoints().await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "listing private endpoints");
            return;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for e in endpoints {
        let control = control.clone();
        tasks.spawn(async move {
            let id = e.id;
            // Replicas sharing the database take turns on an endpoint instead of calling EC2 together.
            let Some(lease) = control.work_lease(format!("endpoint:{id}")).await else { return };
            if let Err(err) = control.reconcile_private_endpoint(e).await {
                tracing::error!(endpoint = %id, error = %err, "reconciling private endpoint");
            }
            lease.release().await;
        });
    }
    while tasks.join_next().await.is_some() {}
}

pub async fn run(control: Arc<Control>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        step(&control).await;
        tokio::select! {
            _ = tokio::time::sleep(control.settings.reconcile_interval) => {}
            _ = control.nudge.notified() => {}
            _ = &mut shutdown => return,
        }
    }
}
