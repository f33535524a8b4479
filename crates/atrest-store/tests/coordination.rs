//! What replicas sharing one database rely on, on each backend: leases, compare-and-set reconcile
//! steps that record their events only when they move the record, claimed key checks.
//! SQLite always; PostgreSQL too when `ATREST_TEST_DATABASE_URL` names a server.

use std::time::Duration;

use atrest_core::api_keys::ApiKey;
use atrest_core::encryption_at_rest::AwsKms;
use atrest_core::events::Event;
use atrest_core::orgs::Org;
use atrest_core::paging::Page;
use atrest_core::private_endpoints::{self as pe, Status};
use atrest_core::projects::{self, NewProject};
use atrest_core::roles::{Grants, OrgRole};
use atrest_core::{time_fmt, ObjectId};
use atrest_store::{PgStore, SqliteStore, Store};
use serde_json::json;

/// Every backend to test, each on a fresh database.
async fn backends(dir: &std::path::Path) -> Vec<(&'static str, Box<dyn Store>)> {
    let mut out: Vec<(&'static str, Box<dyn Store>)> =
        vec![("sqlite", Box::new(SqliteStore::open(&dir.join("s.sqlite3")).unwrap()))];
    if let Some(server) = std::env::var("ATREST_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        let name = format!("atrest_store_{}", ObjectId::new());
        let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let url = format!("{}/{name}", server.rsplit_once('/').unwrap().0);
        out.push(("postgres", Box::new(PgStore::connect(&url).await.unwrap())));
        // Migrating a second time (another replica starting) changes nothing.
        PgStore::connect(&url).await.unwrap();
    }
    out
}

/// An organization, its key and one project; returns the project's id.
async fn project(store: &dyn Store) -> ObjectId {
    let org = Org { id: ObjectId::new(), name: "o".into(), created: time_fmt::now() };
    let key = ApiKey {
        id: ObjectId::new(),
        org_id: org.id,
        public_key: format!("k{}", &ObjectId::new().to_string()[16..]),
        description: "d".into(),
        grants: Grants { org_roles: vec![OrgRole::OrgOwner], ..Default::default() },
        created: time_fmt::now(),
    };
    store.bootstrap(&org, &key, b"sealed").await.unwrap();
    let p = projects::create(
        NewProject { name: "p".into(), org_id: org.id, tags: vec![], with_default_alerts_settings: true },
        time_fmt::now(),
    )
    .unwrap();
    store.insert_project(&p, Some(&key.id)).await.unwrap();
    p.id
}

async fn event_count(store: &dyn Store, group: &ObjectId) -> u64 {
    store.list_events(group, &Page::default()).await.unwrap().1
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in backends(dir.path()).await {
        let long = Duration::from_secs(30);
        assert!(store.acquire_lease("cluster:a", "r1", "http://r1", long).await.unwrap(), "{backend}");
        assert!(!store.acquire_lease("cluster:a", "r2", "http://r2", long).await.unwrap(), "{backend}: held");
        assert!(store.acquire_lease("cluster:a", "r1", "http://r1", long).await.unwrap(), "{backend}: renewed");
        let leases = store.leases("cluster:").await.unwrap();
        assert_eq!(leases.len(), 1, "{backend}");
        assert_eq!(
            (leases[0].holder.as_str(), leases[0].holder_url.as_str(), leases[0].live),
            ("r1", "http://r1", true)
        );
        store.release_lease("cluster:a", "r2").await.unwrap();
        assert!(!store.acquire_lease("cluster:a", "r2", "http://r2", long).await.unwrap(), "{backend}: not r2's");
        store.release_lease("cluster:a", "r1").await.unwrap();
        assert!(store.acquire_lease("cluster:a", "r2", "http://r2", long).await.unwrap(), "{backend}: released");

        assert!(store.acquire_lease("cluster:b", "r1", "http://r1", Duration::from_millis(50)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!store.leases("cluster:b").await.unwrap()[0].live, "{backend}: expired");
        assert!(store.acquire_lease("cluster:b", "r3", "http://r3", long).await.unwrap(), "{backend}: taken over");
        assert_eq!(store.leases("endpoint:").await.unwrap(), vec![], "{backend}: by prefix");
    }
}

#[tokio::test]
async fn a_reconcile_step_moves_a_record_once() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in backends(dir.path()).await {
        let g = project(store.as_ref()).await;
        let e = pe::new_endpoint(g, "US_EAST_1", time_fmt::now());
        store.insert_private_endpoint(&e, &[]).await.unwrap();
        let mut active = e.clone();
        active.status = Status::Active;
        active.aws_endpoint_id = Some("vpce-1".into());
        let event = || [Event::new(g, "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_STATUS_CHANGED", json!({}))];
        // Two replicas saw the same record and both try the same step: one moves it.
        assert!(store.transition_private_endpoint(&e, &active, &event()).await.unwrap(), "{backend}");
        assert!(!store.transition_private_endpoint(&e, &active, &event()).await.unwrap(), "{backend}");
        assert_eq!(event_count(store.as_ref(), &g).await, 1, "{backend}: one event");
        assert_eq!(store.get_private_endpoint(&g, &e.id).await.unwrap(), Some(active.clone()));

        // A removal records its event only if the record was still there.
        let gone = || [Event::new(g, "ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_DELETED", json!({}))];
        store.delete_private_endpoint(&active, &gone()).await.unwrap();
        store.delete_private_endpoint(&active, &gone()).await.unwrap();
        assert_eq!(event_count(store.as_ref(), &g).await, 2, "{backend}: one deletion event");
    }
}

#[tokio::test]
async fn a_due_key_check_is_claimed_and_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, store) in backends(dir.path()).await {
        let g = project(store.as_ref()).await;
        let cfg = AwsKms { enabled: true, valid: true, ..Default::default() };
        let past = time::OffsetDateTime::now_utc() - Duration::from_secs(1);
        store.save_encryption_at_rest(&g, &cfg, None, past, &[]).await.unwrap();
        let now = time::OffsetDateTime::now_utc();
        let claimed = store.claim_due_checks(now, now + Duration::from_secs(30)).await.unwrap();
        assert_eq!(claimed.len(), 1, "{backend}");
        assert!(store.claim_due_checks(now, now + Duration::from_secs(30)).await.unwrap().is_empty(), "{backend}");
        let c = &claimed[0];
        let invalid = || [Event::new(g, "ENCRYPTION_AT_REST_CONFIG_NO_LONGER_VALID", json!({}))];
        let later = now + Duration::from_secs(60);
        assert!(store.record_check(&g, c.version, false, None, later, 0, &invalid()).await.unwrap(), "{backend}");
        assert!(!store.record_check(&g, c.version, false, None, later, 0, &invalid()).await.unwrap(), "{backend}");
        assert_eq!(event_count(store.as_ref(), &g).await, 1, "{backend}: one event");
        assert!(!store.get_encryption_at_rest(&g).await.unwrap().unwrap().aws_kms.valid, "{backend}");
    }
}
