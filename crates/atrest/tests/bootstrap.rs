//! First start: an organization and an owner key, printed once, saved 0600, never stored plain.

mod common;

use common::Server;

#[tokio::test]
async fn credentials_are_written_once_and_the_private_key_is_never_stored_plain() {
    let s = Server::start();
    let path = s.dir.join("bootstrap-credentials");
    for key in ["ATREST_URL", "ATREST_ORG_ID", "ATREST_PUBLIC_KEY", "ATREST_PRIVATE_KEY"] {
        assert!(s.creds.contains_key(key), "{key} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(s.dir.join("server-secret")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let private = s.creds["ATREST_PRIVATE_KEY"].clone();
    let public = s.creds["ATREST_PUBLIC_KEY"].clone();
    assert_eq!(s.client().get("/api/atlas/v2/groups").await.status, reqwest::StatusCode::OK);

    // Nothing in the data directory but the credentials file holds the private key.
    for entry in std::fs::read_dir(&s.dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "bootstrap-credentials" {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        assert!(
            !bytes.windows(private.len()).any(|w| w == private.as_bytes()),
            "{:?} holds the private key",
            entry.path()
        );
    }

    // A restart keeps the same key and does not mint another; the URL line is rewritten.
    let s = s.restart();
    assert_eq!(s.creds["ATREST_PUBLIC_KEY"], public);
    assert_eq!(s.creds["ATREST_PRIVATE_KEY"], private);
    assert_eq!(s.creds["ATREST_URL"], s.url);
    let keys = s.client().get(&format!("/api/atlas/v2/orgs/{}/apiKeys", s.org_id())).await.json();
    assert_eq!(keys["totalCount"], 1);
}

#[tokio::test]
async fn readiness_needs_no_credentials() {
    let s = Server::start();
    let r = reqwest::get(format!("{}/readyz", s.url)).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
}
