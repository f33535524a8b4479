//! The HTTP side: requests as plain values (so they can be unit-tested without a server), and a
//! client that sends them with HTTP Digest the way Atlas's clients do: every request first goes
//! out unauthenticated, the 401 challenge is answered, and a `stale=true` answer is retried once.
//! Service account credentials (`mdb_sa_id_...` and its secret) get an OAuth access token from
//! `/api/oauth/token` instead, sent as `Authorization: Bearer`.

use std::time::Duration;

use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
pub use reqwest::Method;
use serde_json::Value;

use crate::error::{CliError, Result};

/// Atlas Admin API v2, the version every atrest resource exists at.
pub const V2_2023: &str = "application/vnd.atlas.2023-01-01+json";
/// The service account resource version.
pub const V2_SERVICE_ACCOUNTS: &str = "application/vnd.atlas.2024-08-05+json";
/// The cluster resource version the CLI speaks (`replicationSpecs[].regionConfigs[]`).
pub const V2_CLUSTERS: &str = "application/vnd.atlas.2024-10-23+json";
/// The data API is plain JSON.
pub const PLAIN_JSON: &str = "application/json";

/// One API call: method, path (with query) below the server URL, JSON body, Accept header.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub accept: &'static str,
}

impl Request {
    pub fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Request {
        Request { method, path: path.into(), body, accept: V2_2023 }
    }
    pub fn get(path: impl Into<String>) -> Request {
        Request::new(Method::GET, path, None)
    }
    pub fn delete(path: impl Into<String>) -> Request {
        Request::new(Method::DELETE, path, None)
    }
    pub fn post(path: impl Into<String>, body: Value) -> Request {
        Request::new(Method::POST, path, Some(body))
    }
    pub fn patch(path: impl Into<String>, body: Value) -> Request {
        Request::new(Method::PATCH, path, Some(body))
    }
    pub fn accept(mut self, accept: &'static str) -> Request {
        self.accept = accept;
        self
    }
}

/// A response as read: status and the body text, unchanged.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Result<Value> {
        if self.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.body).map_err(|e| {
            CliError::other(format!(
                "the server's answer is not JSON ({e}): {}",
                self.body.chars().take(200).collect::<String>()
            ))
        })
    }
}

/// Where to connect and as whom.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub url: String,
    pub public_key: String,
    pub private_key: String,
}

pub struct Api {
    http: reqwest::Client,
    base: String,
    creds: Credentials,
    /// The current access token, for service account credentials.
    token: tokio::sync::Mutex<Option<String>>,
}

/// Client ids of service accounts start with this; their "private key" is the client secret.
const SERVICE_ACCOUNT_PREFIX: &str = "mdb_sa_id_";

impl Api {
    pub fn new(creds: Credentials) -> Result<Api> {
        let base = creds.url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base)
            .map_err(|e| CliError::usage(format!("invalid server URL {:?}: {e}", creds.url)))?;
        match parsed.scheme() {
            "http" => {}
            "https" if cfg!(feature = "tls") => {}
            "https" => {
                return Err(CliError::usage(
                    "this atrest was built without HTTPS support (cargo feature `tls` of atrest-cli)",
                ))
            }
            other => {
                return Err(CliError::usage(format!("invalid server URL {:?}: unsupported scheme {other}", creds.url)))
            }
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("atrest-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::other(format!("cannot build the HTTP client: {e}")))?;
        Ok(Api { http, base, creds, token: tokio::sync::Mutex::new(None) })
    }

    /// Sends the request; any status other than 2xx becomes [`CliError::Api`].
    pub async fn send(&self, req: &Request) -> Result<Response> {
        let resp = self.execute(req).await?;
        if (200..300).contains(&resp.status) {
            Ok(resp)
        } else {
            Err(CliError::from_response(resp.status, &resp.body))
        }
    }

    /// Sends the request and returns whatever status came back, except a refused login
    /// ([`CliError::Auth`]) and network failures ([`CliError::Network`]).
    pub async fn execute(&self, req: &Request) -> Result<Response> {
        let full = format!("{}{}", self.base, req.path);
        let url = reqwest::Url::parse(&full).map_err(|e| CliError::usage(format!("invalid URL {full:?}: {e}")))?;
        let uri = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let body = req.body.as_ref().map(|b| b.to_string());

        if self.creds.public_key.starts_with(SERVICE_ACCOUNT_PREFIX) {
            return self.execute_with_token(req, &url, body.as_deref()).await;
        }
        let first = self.once(req, &url, body.as_deref(), None).await?;
        if first.status != 401 {
            return Ok(first.into_response());
        }
        let mut challenge = first;
        for attempt in 0..2 {
            let header = challenge.www_authenticate.as_deref().ok_or_else(|| {
                CliError::Auth(format!(
                    "the server asked for credentials without a Digest challenge: {}",
                    detail_of(&challenge.body)
                ))
            })?;
            let authorization = self.authorization(header, req.method.as_str(), &uri)?;
            let answer = self.once(req, &url, body.as_deref(), Some(authorization)).await?;
            if answer.status != 401 {
                return Ok(answer.into_response());
            }
            let stale = answer
                .www_authenticate
                .as_deref()
                .and_then(|h| WwwAuthenticateHeader::parse(h).ok())
                .is_some_and(|c| c.stale);
            if !(stale && attempt == 0) {
                return Err(CliError::Auth(format!(
                    "{} (check the public and private API keys for {})",
                    detail_of(&answer.body),
                    self.base
                )));
            }
            challenge = answer;
        }
        unreachable!("the loop returns")
    }

    /// Sends with the cached access token; a 401 fetches a new token once.
    async fn execute_with_token(&self, req: &Request, url: &reqwest::Url, body: Option<&str>) -> Result<Response> {
        let mut cached = self.token.lock().await;
        for fresh in [false, true] {
            if fresh || cached.is_none() {
                *cached = Some(self.fetch_token().await?);
            }
            let bearer = format!("Bearer {}", cached.as_deref().unwrap_or_default());
            let answer = self.once(req, url, body, Some(bearer)).await?;
            if answer.status != 401 {
                return Ok(answer.into_response());
            }
            if fresh {
                return Err(CliError::Auth(format!("{} (the access token was refused)", detail_of(&answer.body))));
            }
        }
        unreachable!("the loop returns")
    }

    /// The client-credentials grant (RFC 6749 §4.4) with the client id and secret.
    async fn fetch_token(&self) -> Result<String> {
        let url = format!("{}/api/oauth/token", self.base);
        let resp = self
            .http
            .post(&url)
            .basic_auth(&self.creds.public_key, Some(&self.creds.private_key))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| self.network(e))?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| self.network(e))?;
        match body["access_token"].as_str() {
            Some(t) if status.is_success() => Ok(t.to_owned()),
            _ => Err(CliError::Auth(format!(
                "{} (check the service account's client id and secret for {})",
                body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("no access token"),
                self.base
            ))),
        }
    }

    fn authorization(&self, challenge: &str, method: &str, uri: &str) -> Result<String> {
        let mut prompt = WwwAuthenticateHeader::parse(challenge)
            .map_err(|e| CliError::Auth(format!("cannot parse the Digest challenge {challenge:?}: {e}")))?;
        let ctx = AuthContext::new_with_method(
            self.creds.public_key.as_str(),
            self.creds.private_key.as_str(),
            uri,
            Option::<&[u8]>::None,
            HttpMethod::from(method.to_owned()),
        );
        let answer =
            prompt.respond(&ctx).map_err(|e| CliError::Auth(format!("cannot answer the Digest challenge: {e}")))?;
        Ok(answer.to_header_string())
    }

    async fn once(
        &self,
        req: &Request,
        url: &reqwest::Url,
        body: Option<&str>,
        authorization: Option<String>,
    ) -> Result<RawResponse> {
        let mut r = self.http.request(req.method.clone(), url.clone()).header(ACCEPT, req.accept);
        if let Some(a) = authorization {
            r = r.header(AUTHORIZATION, a);
        }
        if let Some(b) = body {
            r = r.header(CONTENT_TYPE, "application/json").body(b.to_owned());
        }
        let resp = r.send().await.map_err(|e| self.network(e))?;
        let status = resp.status().as_u16();
        let www_authenticate = resp.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = resp.text().await.map_err(|e| self.network(e))?;
        Ok(RawResponse { status, www_authenticate, body })
    }

    fn network(&self, e: reqwest::Error) -> CliError {
        // The innermost cause says what happened ("Connection refused (os error 111)").
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg = s.to_string();
            src = s.source();
        }
        if e.is_connect() {
            CliError::Network(format!("cannot connect to {}: {msg}", self.base))
        } else if e.is_timeout() {
            CliError::Network(format!("request to {} timed out: {msg}", self.base))
        } else {
            CliError::Network(format!("network error talking to {}: {msg}", self.base))
        }
    }
}

struct RawResponse {
    status: u16,
    www_authenticate: Option<String>,
    body: String,
}

impl RawResponse {
    fn into_response(self) -> Response {
        Response { status: self.status, body: self.body }
    }
}

fn detail_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "the server refused the credentials".to_owned())
}

/// Percent-encodes one path segment (names may hold characters that are special in URLs).
pub fn seg(s: &str) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    utf8_percent_encode(s, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(seg("Prod-EU_1"), "Prod-EU_1");
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn answers_atrests_challenge_with_md5_and_qop_auth() {
        let api = Api::new(Credentials {
            url: "http://127.0.0.1:1".into(),
            public_key: "pub".into(),
            private_key: "secret".into(),
        })
        .unwrap();
        let h = api
            .authorization(
                r#"Digest realm="MMS Public API", domain="", nonce="abc", algorithm=MD5, qop="auth", stale=false"#,
                "GET",
                "/api/atlas/v2/orgs",
            )
            .unwrap();
        assert!(h.starts_with("Digest username=\"pub\""), "{h}");
        for part in [
            "realm=\"MMS Public API\"",
            "nonce=\"abc\"",
            "uri=\"/api/atlas/v2/orgs\"",
            "qop=auth",
            "nc=00000001",
            "algorithm=MD5",
        ] {
            assert!(h.contains(part), "{part} missing in {h}");
        }
        // Recompute the response with md-5 (through digest_auth's own parser of our header).
        let parsed = digest_auth::AuthorizationHeader::parse(&h).unwrap();
        let mut check = parsed.clone();
        check.digest(&AuthContext::new("pub", "secret", "/api/atlas/v2/orgs"));
        assert_eq!(check.response, parsed.response);
    }

    /// A one-thread HTTP server answering each connection with the next canned response and
    /// recording each request's Authorization header.
    fn fake_server(responses: Vec<String>) -> (String, std::thread::JoinHandle<Vec<Option<String>>>) {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for resp in responses {
                let (mut s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut auth = None;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("authorization: ") {
                        auth = Some(v.trim().to_owned());
                    }
                }
                seen.push(auth);
                s.write_all(resp.as_bytes()).unwrap();
            }
            seen
        });
        (url, h)
    }

    fn challenge(nonce: &str, stale: bool) -> String {
        let body = r#"{"detail":"nope","error":401,"errorCode":"NOT_ORG_GROUP_CREATOR","parameters":[],"reason":"Unauthorized"}"#;
        format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"MMS Public API\", domain=\"\", \
             nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\", stale={stale}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn api(url: &str) -> Api {
        Api::new(Credentials { url: url.into(), public_key: "pub".into(), private_key: "secret".into() }).unwrap()
    }

    #[tokio::test]
    async fn stale_nonce_is_retried_once_with_the_new_nonce() {
        let ok =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                .to_owned();
        let (url, h) = fake_server(vec![challenge("n1", false), challenge("n2", true), ok]);
        let r = api(&url).send(&Request::get("/api/atlas/v2/orgs")).await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        let seen = h.join().unwrap();
        assert!(seen[0].is_none(), "first request goes out unauthenticated");
        assert!(seen[1].as_deref().unwrap().contains("nonce=\"n1\""));
        assert!(seen[2].as_deref().unwrap().contains("nonce=\"n2\""));
    }

    #[tokio::test]
    async fn refused_credentials_are_an_auth_error_not_retried_forever() {
        let (url, h) = fake_server(vec![challenge("n1", false), challenge("n2", true), challenge("n3", true)]);
        let e = api(&url).send(&Request::get("/api/atlas/v2/orgs")).await.unwrap_err();
        assert_eq!(e.exit_code(), 4, "{e}");
        assert_eq!(h.join().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn unreachable_server_is_a_network_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = api(&format!("http://127.0.0.1:{port}")).send(&Request::get("/api/atlas/v2/orgs")).await.unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
    }

    #[test]
    fn https_needs_the_tls_feature() {
        let r = Api::new(Credentials {
            url: "https://example.invalid".into(),
            public_key: String::new(),
            private_key: String::new(),
        });
        assert_eq!(r.is_ok(), cfg!(feature = "tls"));
        assert!(Api::new(Credentials {
            url: "not a url".into(),
            public_key: String::new(),
            private_key: String::new(),
        })
        .is_err());
    }
}
