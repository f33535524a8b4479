//! The `--client raw` driver: the same KMS calls as the SDK driver, without the SDK's
//! orchestrator. Each task owns one HTTP/1.1 keep-alive connection (hyper's low-level client) and
//! keeps exactly one request in flight on it (no pipelining). Every request is built and signed
//! afresh with the official `aws-sigv4` crate (the crate aws-sdk-kms signs with) at the current
//! time, carries the body and headers the SDK sends (`X-Amz-Target: TrentService.<Op>`,
//! `Content-Type: application/x-amz-json-1.1`), and its answer must be HTTP 200 with a JSON body
//! holding the operation's output fields; anything else counts as an error. Nothing is cached or
//! replayed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::Error;

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::STANDARD;

/// What a raw caller needs: endpoint, signing identity, region and the operation's inputs.
pub struct Target {
    pub authority: String,
    pub url: String,
    pub identity: Identity,
    pub region: String,
    pub key_id: String,
}

impl Target {
    pub fn new(
        endpoint: &str,
        access_key: &str,
        secret_key: &str,
        region: &str,
        key_id: &str,
    ) -> Result<Target, Error> {
        let uri: http::Uri = endpoint.parse()?;
        if uri.scheme_str() != Some("http") {
            return Err("the raw client speaks plain HTTP only".into());
        }
        let authority = uri.authority().ok_or("endpoint has no host")?.to_string();
        let creds = aws_credential_types::Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "kms-loadgen",
        );
        Ok(Target {
            url: format!("http://{authority}/"),
            authority,
            identity: creds.into(),
            region: region.to_string(),
            key_id: key_id.to_string(),
        })
    }
}

/// TCP connections opened, over all tasks (a server that closes every connection after its
/// answer, as moto_server does, costs a connection per request).
pub static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// One keep-alive connection with at most one request in flight.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    /// The server said it closes the connection after its answer.
    closing: bool,
}

impl Conn {
    pub async fn open(t: &Target) -> Result<Conn, Error> {
        let stream = tokio::net::TcpStream::connect(&t.authority).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        Ok(Conn {
            sender,
            closing: false,
        })
    }

    /// Sign and send one KMS call, check the answer; returns the parsed output document.
    /// Like any HTTP client, opens a new connection when the server closed the previous one.
    pub async fn call(&mut self, t: &Target, op: &str, input: &Value) -> Result<Value, Error> {
        if self.closing || self.sender.is_closed() {
            *self = Conn::open(t).await?;
        }
        let body = serde_json::to_vec(input)?;
        let target = format!("TrentService.{op}");
        let content_type = "application/x-amz-json-1.1";
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&t.identity)
            .region(&t.region)
            .name("kms")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let headers = [
            ("content-type", content_type),
            ("host", t.authority.as_str()),
            ("x-amz-target", &target),
        ];
        let signable = SignableRequest::new(
            "POST",
            &t.url,
            headers.into_iter(),
            SignableBody::Bytes(&body),
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        let mut req = http::Request::builder()
            .method("POST")
            .uri("/")
            .header("host", &t.authority)
            .header("content-type", content_type)
            .header("x-amz-target", &target)
            .header("content-length", body.len())
            .body(Full::new(Bytes::from(body)))?;
        instructions.apply_to_request_http1x(&mut req);
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let close = resp
            .headers()
            .get(http::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        self.closing = close || resp.version() == http::Version::HTTP_10;
        let bytes = resp.into_body().collect().await?.to_bytes();
        if status != http::StatusCode::OK {
            return Err(format!("{op}: HTTP {status}: {}", String::from_utf8_lossy(&bytes)).into());
        }
        let out: Value = serde_json::from_slice(&bytes)?;
        let wanted: &[&str] = match op {
            "Encrypt" => &["CiphertextBlob", "KeyId"],
            "Decrypt" => &["Plaintext", "KeyId"],
            _ => &["CiphertextBlob", "Plaintext", "KeyId"],
        };
        for field in wanted {
            if !out.get(field).is_some_and(Value::is_string) {
                return Err(format!("{op}: answer without {field}: {out}").into());
            }
        }
        Ok(out)
    }
}

/// The input document the SDK sends for `op` (32-byte plaintext or AES_256 data key, context
/// `{"bench":"1"}`); `ciphertext` is the base64 blob Decrypt decrypts.
pub fn input(t: &Target, op: &str, ciphertext: &str) -> Value {
    let ctx = json!({"bench": "1"});
    match op {
        "Encrypt" => {
            json!({"KeyId": t.key_id, "Plaintext": B64.encode([7u8; 32]), "EncryptionContext": ctx})
        }
        "Decrypt" => json!({"CiphertextBlob": ciphertext, "EncryptionContext": ctx}),
        _ => json!({"KeyId": t.key_id, "KeySpec": "AES_256", "EncryptionContext": ctx}),
    }
}
