//! A project's Encryption at Rest: PATCH proves the key before saving, GET re-checks it.

use std::time::Duration;

use atrest_core::encryption_at_rest::{
    self as ear, AwsKms, AwsKmsPatch, CheckOutcome, Facts, KeyCredentials, KeyProblem, KeyTarget, Plan,
};
use atrest_core::events::Event;
use atrest_core::projects::{Project, ProjectState};
use atrest_core::{regions, Error, ObjectId, Result};
use atrest_keys::key_check::{self, CheckRequest};
use atrest_store::StoredEncryptionAtRest;
use serde_json::json;
use zeroize::Zeroizing;

use crate::Control;

fn secret_context(group: &ObjectId) -> Vec<u8> {
    format!("encryption-at-rest/{group}/secretAccessKey").into_bytes()
}

pub(crate) fn later(d: Duration) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + d
}

fn config_details(cfg: &AwsKms) -> serde_json::Value {
    json!({
        "enabled": cfg.enabled,
        "customerMasterKeyID": cfg.customer_master_key_id,
        "region": cfg.region,
        "roleId": cfg.role_id,
        "requirePrivateNetworking": cfg.require_private_networking,
    })
}

impl Control {
    /// The check a stored configuration implies, or why none can be made.
    pub(crate) async fn target_of(&self, group: &ObjectId, cfg: &AwsKms) -> std::result::Result<KeyTarget, KeyProblem> {
        let key_id = cfg.customer_master_key_id.clone().unwrap_or_default();
        let region = cfg.region.clone().unwrap_or_default();
        let aws_region = regions::to_aws(&region).ok_or(KeyProblem::RegionNotSupported(region))?;
        let credentials = match (&cfg.role_id, &cfg.access_key_id) {
            (Some(role_id), _) => {
                let role = self.store.get_role(group, role_id).await.ok().flatten();
                match role.and_then(|r| r.iam_assumed_role_arn.clone().map(|arn| (arn, r.external_id))) {
                    Some((role_arn, external_id)) => KeyCredentials::Role { role_arn, external_id },
                    None => return Err(KeyProblem::CannotAssumeRole(format!("role {role_id} is not authorized"))),
                }
            }
            (None, Some(id)) => KeyCredentials::AccessKeys { access_key_id: id.clone() },
            (None, None) => return Err(KeyProblem::InvalidCredentials("no role or access keys configured".into())),
        };
        Ok(KeyTarget { credentials, key_id, aws_region })
    }

    pub(crate) fn open_secret(&self, group: &ObjectId, sealed: Option<&[u8]>) -> Option<Zeroizing<String>> {
        let plain = self.sealer.open(sealed?, &secret_context(group)).ok()?;
        String::from_utf8(plain.to_vec()).ok().map(Zeroizing::new)
    }

    /// Runs the key check for `target` on behalf of `group`.
    pub async fn check_key(
        &self,
        group: &ObjectId,
        target: &KeyTarget,
        secret: Option<Zeroizing<String>>,
        kms_endpoint: Option<String>,
    ) -> CheckOutcome {
        key_check::check(
            &self.aws,
            CheckRequest { target, secret_access_key: secret, group_id: group.to_string(), kms_endpoint },
        )
        .await
    }

    /// Checks a stored configuration as it is.
    pub(crate) async fn check_stored(&self, stored: &StoredEncryptionAtRest) -> CheckOutcome {
        match self.target_of(&stored.group_id, &stored.aws_kms).await {
            Ok(target) => {
                // With private networking required and no ACTIVE endpoint, no call is made: that
                // is a network matter, not the key's.
                let route = match self.kms_route(&stored.group_id, &stored.aws_kms).await {
                    Ok(route) => route,
                    Err(problem) => return CheckOutcome::Unreachable(ear::problem_error(&problem, "").to_string()),
                };
                let secret = self.open_secret(&stored.group_id, stored.sealed_secret.as_deref());
                self.check_key(&stored.group_id, &target, secret, route).await
            }
            Err(problem) => CheckOutcome::Invalid(problem),
        }
    }

    /// Records a check's outcome: `valid`, the next check time (with backoff while KMS is
    /// unreachable) and an event when something changed or KMS could not be reached.
    pub(crate) async fn record_outcome(
        &self,
        stored: &StoredEncryptionAtRest,
        outcome: &CheckOutcome,
    ) -> Result<AwsKms> {
        let (valid, event_type) = ear::after_check(stored.aws_kms.valid, outcome);
        let interval = self.settings.key_check_interval;
        let (failures, next) = match outcome {
            CheckOutcome::Unreachable(_) => {
                let failures = stored.failures.saturating_add(1);
                let backoff = Duration::from_millis(500).saturating_mul(1 << failures.min(16)).min(interval);
                (failures, later(backoff))
            }
            _ => (0, later(self.settings.next_key_check_after())),
        };
        let key_arn = match outcome {
            CheckOutcome::Valid { key_arn } => Some(key_arn.clone()),
            _ => None,
        };
        let detail = match outcome {
            CheckOutcome::Valid { .. } => json!(null),
            CheckOutcome::Invalid(p) => json!(format!("{p:?}")),
            CheckOutcome::Unreachable(m) => json!(m),
        };
        let events: Vec<Event> = event_type
            .map(|t| Event::new(stored.group_id, t, json!({"detail": detail, "valid": valid})))
            .into_iter()
            .collect();
        if let Some(t) = event_type {
            tracing::info!(group = %stored.group_id, event = t, valid, "key check");
        }
        self.store
            .record_check(&stored.group_id, stored.version, valid, key_arn.clone(), next, failures, &events)
            .await?;
        if let Ok(mut problems) = self.key_problems.lock() {
            match outcome {
                CheckOutcome::Invalid(p) => {
                    problems.insert(stored.group_id, p.clone());
                }
                CheckOutcome::Valid { .. } => {
                    problems.remove(&stored.group_id);
                }
                CheckOutcome::Unreachable(_) => {}
            }
        }
        if !valid {
            self.lock_customer_key_clusters(&stored.group_id).await;
        } else if !stored.aws_kms.valid {
            self.nudge.notify_waiters();
        }
        let mut cfg = stored.aws_kms.clone();
        cfg.valid = valid;
        if key_arn.is_some() {
            cfg.key_arn = key_arn;
        }
        Ok(cfg)
    }

    /// A CMK change: every customer-key cluster's master keys are re-wrapped under the new key
    /// (no data is rewritten) before the new configuration is saved; on failure the clusters
    /// already re-wrapped go back to the old key and nothing changes.
    async fn rewrap_customer_key_clusters(
        &self,
        group: &ObjectId,
        stored: Option<&StoredEncryptionAtRest>,
        next: &AwsKms,
        next_sealed: Option<&[u8]>,
    ) -> Result<()> {
        let clusters: Vec<_> = self
            .store
            .all_clusters(group)
            .await?
            .into_iter()
            .filter(|c| c.provider == atrest_core::clusters::Provider::Aws)
            .collect();
        if clusters.is_empty() {
            return Ok(());
        }
        let Some(stored) = stored else { return Ok(()) };
        let inaccessible = |e: atrest_dataplane::WrapError| Error::KeyInaccessible { detail: e.to_string() };
        let old = self
            .kms_wrapper_for(group, &stored.aws_kms, stored.sealed_secret.as_deref())
            .await
            .map_err(inaccessible)?;
        let new = self.kms_wrapper_for(group, next, next_sealed).await.map_err(inaccessible)?;
        let mut done: Vec<String> = vec![];
        for c in &clusters {
            let id = c.id.to_string();
            if let Err(e) = self.data.rewrap_master_key(&id, &old, &new).await {
                for undo in &done {
                    let _ = self.data.rewrap_master_key(undo, &new, &old).await;
                }
                return Err(Error::KeyInaccessible { detail: format!("re-wrapping cluster {}: {e}", c.name) });
            }
            done.push(id);
        }
        Ok(())
    }

    /// GET: the configuration, re-checked on demand when enabled.
    pub async fn encryption_at_rest(&self, group: &ObjectId) -> Result<AwsKms> {
        let Some(stored) = self.store.get_encryption_at_rest(group).await? else { return Ok(AwsKms::default()) };
        if !stored.aws_kms.enabled {
            return Ok(stored.aws_kms);
        }
        let outcome = self.check_stored(&stored).await;
        self.record_outcome(&stored, &outcome).await
    }

    /// PATCH: decide with the rules, prove the key, then save with its events.
    pub async fn update_encryption_at_rest(&self, project: &Project, patch: AwsKmsPatch) -> Result<AwsKms> {
        let group = project.id;
        let stored = self.store.get_encryption_at_rest(&group).await?;
        let current = stored.as_ref().map(|s| s.aws_kms.clone()).unwrap_or_default();
        let role_id = patch.role_id.as_deref().and_then(ObjectId::parse).or(current.role_id);
        let role = match role_id {
            Some(id) => self.store.get_role(&group, &id).await?,
            None => None,
        };
        let facts = Facts {
            project_active: project.state == ProjectState::Active,
            clusters_using_customer_keys: self.clusters_using_customer_keys(&group).await?,
            private_endpoints: self.store.all_private_endpoints(&group).await?.len() as u64,
            role,
            multi_region_clusters: self
                .store
                .all_clusters(&group)
                .await?
                .into_iter()
                .filter(|c| c.regions.len() > 1)
                .map(|c| c.name)
                .collect(),
        };
        let new_secret = patch.secret_access_key.clone().map(Zeroizing::new);
        let plan = ear::plan(&current, patch, &facts)?;
        match plan {
            Plan::Save { next } => {
                if next != current {
                    let event = Event::new(group, "ENCRYPTION_AT_REST_CONFIGURATION_UPDATED", config_details(&next));
                    self.store
                        .save_encryption_at_rest(
                            &group,
                            &next,
                            Some(None),
                            later(self.settings.next_key_check_after()),
                            &[event],
                        )
                        .await?;
                }
                Ok(next)
            }
            Plan::Validate { mut next, target } => {
                let secret = match (&target.credentials, &new_secret) {
                    (KeyCredentials::AccessKeys { .. }, Some(s)) => Some(s.clone()),
                    (KeyCredentials::AccessKeys { .. }, None) => {
                        self.open_secret(&group, stored.as_ref().and_then(|s| s.sealed_secret.as_deref()))
                    }
                    _ => None,
                };
                let route = self
                    .kms_route(&group, &next)
                    .await
                    .map_err(|problem| ear::problem_error(&problem, &target.key_id))?;
                match self.check_key(&group, &target, secret, route).await {
                    CheckOutcome::Valid { key_arn } => next.key_arn = Some(key_arn),
                    CheckOutcome::Invalid(problem) => {
                        let e = ear::problem_error(&problem, &target.key_id);
                        let event = Event::new(
                            group,
                            "ENCRYPTION_AT_REST_CONFIGURATION_VALIDATION_FAILED",
                            json!({"detail": e.to_string()}),
                        );
                        self.store.append_events(&[event]).await?;
                        return Err(e);
                    }
                    CheckOutcome::Unreachable(detail) => return Err(Error::KmsUnreachable { detail }),
                }
                let sealed = match (&target.credentials, &new_secret) {
                    (KeyCredentials::AccessKeys { .. }, Some(s)) => {
                        Some(Some(self.sealer.seal(s.as_bytes(), &secret_context(&group))))
                    }
                    (KeyCredentials::Role { .. }, _) => Some(None),
                    _ => None,
                };
                if current.enabled && current.key_arn.is_some() && current.key_arn != next.key_arn {
                    let sealed_next = match &sealed {
                        Some(s) => s.clone(),
                        None => stored.as_ref().and_then(|s| s.sealed_secret.clone()),
                    };
                    self.rewrap_customer_key_clusters(&group, stored.as_ref(), &next, sealed_next.as_deref()).await?;
                }
                let mut events = vec![
                    Event::new(
                        group,
                        "ENCRYPTION_AT_REST_CONFIGURATION_VALIDATION_SUCCEEDED",
                        json!({"keyArn": next.key_arn}),
                    ),
                    Event::new(group, "ENCRYPTION_AT_REST_CONFIGURATION_UPDATED", config_details(&next)),
                ];
                if current.enabled && current.customer_master_key_id != next.customer_master_key_id {
                    events.push(Event::new(
                        group,
                        "ENCRYPTION_AT_REST_KEY_ROTATION_STARTED",
                        json!({"from": current.customer_master_key_id, "to": next.customer_master_key_id}),
                    ));
                }
                self.store
                    .save_encryption_at_rest(
                        &group,
                        &next,
                        sealed,
                        later(self.settings.next_key_check_after()),
                        &events,
                    )
                    .await?;
                self.nudge.notify_waiters();
                Ok(next)
            }
        }
    }
}
