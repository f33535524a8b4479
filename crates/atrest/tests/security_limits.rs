//! Request size and time limits: bodies over 1 MiB to the Admin API get 413 `PAYLOAD_TOO_LARGE`
//! (the data API takes up to 16 MiB), and a client that stalls mid-request is disconnected.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::Server;
use reqwest::StatusCode;
use serde_json::json;

const MIB: usize = 1024 * 1024;

/// A JSON object of about `size` bytes.
fn body_of(size: usize) -> serde_json::Value {
    json!({"name": "big", "padding": "x".repeat(size)})
}

fn assert_too_large(r: &common::Resp, what: &str) {
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{what}: {}", r.text);
    let body = r.json();
    assert_eq!(body["error"], 413, "{what}: {body}");
    assert_eq!(body["errorCode"], "PAYLOAD_TOO_LARGE", "{what}: {body}");
}

#[tokio::test]
async fn admin_bodies_over_one_mib_get_413_and_data_bodies_up_to_16_mib_pass() {
    let s = Server::start();
    let c = s.client();
    let org = s.org_id();
    let g = c.post("/api/atlas/v2/groups", &json!({"name": "limits", "orgId": org})).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Just under the limit passes the size check (and fails on content, not size).
    let r = c.post("/api/atlas/v2/groups", &body_of(MIB - 1024)).await;
    assert_ne!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);

    // Over it: 413 with the Atlas body, for authenticated and unauthenticated callers alike, on
    // routes that take a body and on those that do not.
    for path in [
        "/api/atlas/v2/groups".to_owned(),
        format!("/api/atlas/v2/groups/{g}/encryptionAtRest"),
        format!("/api/atlas/v1.0/groups/{g}/cloudProviderAccess"),
        format!("/api/atrest/v1/groups/{g}/clusters/x/rotateMasterKey"),
    ] {
        let r = c.post(&path, &body_of(MIB + 10)).await;
        assert_too_large(&r, &path);
        let r = c.patch(&path, &body_of(3 * MIB)).await;
        assert_too_large(&r, &path);
    }
    let anonymous = common::Client::new(&s.url, "nobody", "nothing");
    let r = anonymous.post("/api/atlas/v2/groups", &body_of(2 * MIB)).await;
    assert_too_large(&r, "anonymous");

    // Chunked (no Content-Length) bodies are measured too.
    let resp = chunked_post(&s.url, "/api/atlas/v2/groups", 20, 100 * 1024);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("\"PAYLOAD_TOO_LARGE\""), "{resp}");

    // The data API takes bodies up to 16 MiB: a 4 MiB insert is judged on content, not size.
    let data = format!("/data/v1/groups/{g}/clusters/nowhere/action/insertMany");
    let docs: Vec<_> = (0..64).map(|i| json!({"i": i, "blob": "y".repeat(64 * 1024)})).collect();
    let r = c.post(&data, &json!({"database": "d", "collection": "c", "documents": docs})).await;
    assert_ne!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    // Over 16 MiB it is refused the same way.
    let r = c.post(&data, &body_of(16 * MIB + 10)).await;
    assert_too_large(&r, "data API");

    // The server is still healthy afterwards.
    assert_eq!(c.get("/api/atlas/v2/groups").await.status, StatusCode::OK);
}

/// Sends a chunked POST of `n` chunks of `size` spaces on a raw connection; returns the response.
fn chunked_post(base: &str, path: &str, n: usize, size: usize) -> String {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b' '; size];
    for _ in 0..n {
        stream.write_all(format!("{size:x}\r\n").as_bytes()).unwrap();
        stream.write_all(&chunk).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).expect("a response, not a reset connection");
    String::from_utf8_lossy(&resp).into_owned()
}

/// Reads until the server closes the connection; returns how long that took.
fn wait_for_close(stream: &mut TcpStream, bound: Duration) -> Duration {
    let start = Instant::now();
    stream.set_read_timeout(Some(bound)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!("connection still open after {:?}: {e}", start.elapsed()),
        }
    }
}

#[test]
fn a_client_that_stalls_mid_request_is_disconnected() {
    let s = Server::start();
    let addr = s.url.trim_start_matches("http://").trim_end_matches('/').to_owned();

    // Half a request line, then nothing.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /api/atlas/v2/gro").unwrap();
    // Headers started but never finished.
    let mut slow_headers = TcpStream::connect(&addr).unwrap();
    slow_headers.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();

    let bound = atrest_api::HEADER_READ_TIMEOUT + Duration::from_secs(10);
    let took = wait_for_close(&mut slow, bound);
    assert!(took >= Duration::from_secs(2), "closed suspiciously early: {took:?}");
    wait_for_close(&mut slow_headers, bound);

    // Meanwhile and afterwards, complete requests are served.
    let mut ok = TcpStream::connect(&addr).unwrap();
    ok.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    ok.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}
