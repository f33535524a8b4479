//! The key validity reconciler: every interval, each enabled project's key is checked again.
//! A key problem flips `valid` to false; a network problem changes nothing but is recorded and
//! retried with backoff; a key that works again flips `valid` back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::Control;

/// One pass: claim every configuration that is due and check it. Returns how many were checked.
/// The claim keeps the other replicas off a check until it lapses: as long as the check may
/// take, but no longer than the check interval, so that a replica that died mid-check delays its
/// checks by at most one interval.
pub async fn step(control: &Arc<Control>) -> usize {
    let now = time::OffsetDateTime::now_utc();
    let claim = control.settings.key_check_interval.min(control.replica.lease_ttl.max(Duration::from_secs(1)));
    let due = match control.store.claim_due_checks(now, now + claim).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "listing due key checks");
            return 0;
        }
    };
    let count = due.len();
    let limit = Arc::new(Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for stored in due {
        let (control, limit) = (control.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            let outcome = control.check_stored(&stored).await;
            if let Err(e) = control.record_outcome(&stored, &outcome).await {
                tracing::error!(group = %stored.group_id, error = %e, "recording key check");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    count
}

/// Runs until `shutdown` resolves.
pub async fn run(control: Arc<Control>, shutdown: impl std::future::Future<Output = ()>) {
    let tick = control.settings.key_check_tick();
    tokio::pin!(shutdown);
    loop {
        step(&control).await;
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = control.nudge.notified() => {}
            _ = &mut shutdown => return,
        }
    }
}
