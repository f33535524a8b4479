//! HTTPS with rustls (`--tls-cert`, `--tls-key`), checked with real third-party tools: a
//! certificate made by `openssl` and requests made by `curl` (Digest over TLS, TLS 1.2 and 1.3,
//! older versions and plain HTTP refused, `Secure` console cookies).

mod common;

use std::path::Path;
use std::process::Command;

use common::Server;

fn make_cert(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert.to_str().unwrap().to_owned(), key.to_str().unwrap().to_owned())
}

fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl").args(["-sS", "--max-time", "10"]).args(args).output().expect("curl is installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_api_and_the_console_are_served_over_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(tmp.path());
    let s = Server::start_with(&["--tls-cert", &cert, "--tls-key", &key]);
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    assert_eq!(common::read_credentials(&s.dir.join("bootstrap-credentials"))["ATREST_URL"], s.url);
    let user = format!("{}:{}", s.creds["ATREST_PUBLIC_KEY"], s.creds["ATREST_PRIVATE_KEY"]);
    let groups = format!("{}/api/atlas/v2/groups", s.url);

    for version in ["--tlsv1.2", "--tlsv1.3"] {
        let (ok, body, err) = curl(&[
            "--cacert",
            &cert,
            version,
            "--digest",
            "-u",
            &user,
            "-H",
            "Accept: application/vnd.atlas.2023-01-01+json",
            &groups,
        ]);
        assert!(ok, "{version}: {err}");
        assert!(body.contains("\"totalCount\":0"), "{body}");
    }
    // An untrusted certificate, an old protocol and plain HTTP all fail.
    let (ok, _, err) = curl(&[&groups]);
    assert!(!ok && err.to_lowercase().contains("certificate"), "{err}");
    let (ok, _, _) = curl(&["--cacert", &cert, "--tls-max", "1.1", &groups]);
    assert!(!ok, "TLS 1.1 must be refused");
    let (ok, _, _) = curl(&[&groups.replace("https://", "http://")]);
    assert!(!ok, "plain HTTP on the TLS port must fail");

    // The console's session cookie is Secure under TLS.
    let login = format!(
        r#"{{"publicKey":"{}","privateKey":"{}"}}"#,
        s.creds["ATREST_PUBLIC_KEY"], s.creds["ATREST_PRIVATE_KEY"]
    );
    let (ok, head, err) = curl(&[
        "--cacert",
        &cert,
        "-i",
        "-H",
        "Content-Type: application/json",
        "-d",
        &login,
        &format!("{}/console/session", s.url),
    ]);
    assert!(ok, "{err}");
    let cookie = head.lines().find(|l| l.to_lowercase().starts_with("set-cookie:")).unwrap_or_else(|| panic!("{head}"));
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
}

#[test]
fn a_bad_certificate_setup_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, other_key) = make_cert(tmp.path());
    let bin = env!("CARGO_BIN_EXE_atrest");
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(["serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--aws-listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--tls-cert", &cert]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"), "{}", String::from_utf8_lossy(&out.stderr));
    let missing = tmp.path().join("nope.pem");
    let out = run(&["--tls-cert", missing.to_str().unwrap(), "--tls-key", &other_key]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.pem"), "{}", String::from_utf8_lossy(&out.stderr));
    // A key that is not the certificate's.
    let tmp2 = tempfile::tempdir().unwrap();
    let (_, wrong_key) = make_cert(tmp2.path());
    let out = run(&["--tls-cert", &cert, "--tls-key", &wrong_key]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("do not go together"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
