//! Listeners, request routing, authentication and the timers (endpoint readiness, key deletion).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::crypto::KeyBytes;
use crate::faults::{FaultKind, Faults};
use crate::policy::{Caller, CallerKind};
use crate::sigv4::{self, AuthError};
use crate::state::{Account, Inner};
use crate::store::Store;
use crate::wire::{self, Protocol, QueryError, Resp};
use crate::{ids, AccountCredentials, EmulatorConfig};

const MAX_BODY: usize = 1024 * 1024;

/// Where a request arrived: the public listener or one VPC endpoint's listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    Public,
    Endpoint { id: String, vpc_id: String },
}

impl Arrival {
    pub fn label(&self) -> &str {
        match self {
            Arrival::Public => "public",
            Arrival::Endpoint { id, .. } => id,
        }
    }
}

/// What a service handler knows about the request.
#[derive(Debug, Clone)]
pub struct ReqCtx {
    pub request_id: String,
    pub caller: Caller,
    pub region: String,
    pub arrival: Arrival,
    pub source_ip: String,
    /// Emulator clock (real time plus the time-travel offset), unix seconds.
    pub now: f64,
}

pub struct Shared {
    pub cfg: EmulatorConfig,
    pub root_key: KeyBytes,
    pub inner: Mutex<Inner>,
    pub faults: Mutex<Faults>,
    /// (arrival, service, operation) → count
    pub counters: Mutex<BTreeMap<(String, String, String), u64>>,
    listeners: Mutex<HashMap<String, JoinHandle<()>>>,
    pub clock_offset: AtomicI64,
    pub url: String,
    /// SigV4 signing keys derived from account and session secrets.
    signing_keys: sigv4::SigningKeys,
    /// Every secret this emulator handed out or was handed (session tokens and keys, plaintexts
    /// of Encrypt, Decrypt and GenerateDataKey), base64 as on the wire; kept in memory only, and
    /// only when `ATREST_AWS_RECORD_SECRETS=1`, so that tests can look for them where they must
    /// not be (logs, files, API answers).
    secrets_seen: Option<Mutex<Vec<String>>>,
    me: Weak<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Secrets recorded at most (the oldest go first).
const MAX_SECRETS_SEEN: usize = 10_000;

impl Shared {
    pub fn saw_secret(&self, secret: &str) {
        if let Some(seen) = &self.secrets_seen {
            let mut seen = lock(seen);
            if seen.len() >= MAX_SECRETS_SEEN {
                seen.remove(0);
            }
            seen.push(secret.to_owned());
        }
    }

    /// [`Shared::saw_secret`] for bytes, base64-encoded only when recording is on.
    pub fn saw_secret_bytes(&self, secret: &[u8]) {
        if self.secrets_seen.is_some() {
            use base64::Engine;
            self.saw_secret(&crate::state::B64.encode(secret));
        }
    }

    /// The recorded secrets, if recording is on.
    pub fn secrets_seen(&self) -> Option<Vec<String>> {
        self.secrets_seen.as_ref().map(|s| lock(s).clone())
    }

    pub fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    /// The emulator's clock: real time shifted by the time-travel offset (unix seconds).
    pub fn now(&self) -> f64 {
        real_now() + self.clock_offset.load(Ordering::SeqCst) as f64
    }

    pub fn credentials_file(&self) -> PathBuf {
        self.cfg.data_dir.join("aws-credentials")
    }

    pub fn account_credentials(a: &Account) -> AccountCredentials {
        AccountCredentials {
            name: a.name.clone(),
            account_id: a.account_id.clone(),
            access_key_id: a.access_key_id.clone(),
            secret_access_key: a.secret_access_key.clone(),
            arn: format!("arn:aws:iam::{}:root", a.account_id),
        }
    }

    pub fn accounts(&self) -> Vec<AccountCredentials> {
        self.inner().state.accounts.iter().map(Shared::account_credentials).collect()
    }

    /// Rewrite `<data-dir>/aws-credentials` (mode 0600) with one profile per account.
    pub fn write_credentials_file(&self) -> anyhow::Result<()> {
        let mut out = String::new();
        for a in self.accounts() {
            out.push_str(&format!(
                "[{}]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n",
                a.name, a.access_key_id, a.secret_access_key
            ));
        }
        crate::crypto::write_private_file(&self.credentials_file(), out.as_bytes())?;
        Ok(())
    }

    pub fn count(&self, arrival: &str, service: &str, op: &str) {
        let mut counters = lock(&self.counters);
        // The few (arrival, service, operation) triples repeat: find the existing entry without
        // building an owned key, allocate only for a new one.
        let hit = counters.iter_mut().find(|((a, s, o), _)| a == arrival && s == service && o == op);
        match hit {
            Some((_, n)) => *n += 1,
            None => {
                counters.insert((arrival.to_string(), service.to_string(), op.to_string()), 1);
            }
        }
    }

    pub fn endpoint_available(&self, id: &str) -> bool {
        self.inner().state.endpoints.get(id).map(|e| e.state == "available").unwrap_or(false)
    }

    /// Bind (or re-bind) the loopback listener of a VPC endpoint; returns its port.
    pub fn start_endpoint_listener(&self, id: &str, vpc_id: &str, port_hint: u16) -> anyhow::Result<u16> {
        let Some(me) = self.me.upgrade() else {
            anyhow::bail!("emulator is shutting down");
        };
        if port_hint != 0 {
            if let Some(h) = lock(&self.listeners).get(id) {
                if !h.is_finished() {
                    return Ok(port_hint);
                }
            }
        }
        let ip = self.cfg.listen.ip();
        let std_listener = std::net::TcpListener::bind(SocketAddr::new(ip, port_hint))
            .or_else(|_| std::net::TcpListener::bind(SocketAddr::new(ip, 0)))?;
        std_listener.set_nonblocking(true)?;
        let port = std_listener.local_addr()?.port();
        let listener = TcpListener::from_std(std_listener)?;
        let arrival = Arrival::Endpoint { id: id.to_string(), vpc_id: vpc_id.to_string() };
        let task = tokio::spawn(accept_loop(me, listener, arrival, false));
        if let Some(old) = lock(&self.listeners).insert(id.to_string(), task) {
            old.abort();
        }
        Ok(port)
    }

    /// Close an endpoint's listener and every connection it accepted.
    pub fn stop_endpoint_listener(&self, id: &str) {
        if let Some(h) = lock(&self.listeners).remove(id) {
            h.abort();
        }
    }

    /// Run due timers: endpoints leaving `pending`, keys whose deletion date has passed.
    pub fn tick(&self) {
        let now = self.now();
        let real = real_now();
        let mut stop = vec![];
        {
            let mut g = self.inner();
            let inner = &mut *g;
            crate::kms::purge_due_keys(inner, now);
            let due: Vec<String> = inner
                .state
                .endpoints
                .values()
                .filter(|e| e.state == "pending" && e.ready_at.map(|t| t <= real).unwrap_or(true))
                .map(|e| e.id.clone())
                .collect();
            for id in due {
                if let Some(next) = crate::ec2::settle_endpoint(inner, &id, self.cfg.endpoint_acceptance_required) {
                    if next == "failed" {
                        stop.push(id.clone());
                    }
                }
            }
        }
        for id in stop {
            self.stop_endpoint_listener(&id);
        }
    }
}

pub fn real_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A running emulator.
pub struct Emulator {
    shared: Arc<Shared>,
    main: JoinHandle<()>,
    ticker: JoinHandle<()>,
    addr: SocketAddr,
}

impl Emulator {
    pub async fn start(cfg: EmulatorConfig) -> anyhow::Result<Emulator> {
        std::fs::create_dir_all(&cfg.data_dir)?;
        let root_key = crate::crypto::load_or_create_root_key(&cfg.data_dir.join("aws-root-key"))?;
        let db = Store::open(&cfg.data_dir.join("aws-emulator.sqlite3"))?;
        let mut inner = Inner::load(db, &root_key)?;
        if inner.state.accounts.is_empty() {
            let now = real_now();
            for (name, id) in
                [("operator", cfg.operator_account_id.clone()), ("customer", cfg.customer_account_id.clone())]
            {
                let a = Account {
                    name: name.to_string(),
                    account_id: id.unwrap_or_else(ids::account_id),
                    access_key_id: ids::root_access_key_id(),
                    secret_access_key: ids::secret_access_key(),
                    created: now,
                };
                inner.save_account(&a)?;
                inner.state.accounts.push(a);
            }
        }
        let listener = TcpListener::bind(cfg.listen).await?;
        let addr = listener.local_addr()?;
        let offset = inner.state.settings.clock_offset_secs;
        let shared = Arc::new_cyclic(|me| Shared {
            url: format!("http://{addr}"),
            cfg: cfg.clone(),
            root_key,
            inner: Mutex::new(inner),
            faults: Mutex::new(Faults::default()),
            counters: Mutex::new(BTreeMap::new()),
            listeners: Mutex::new(HashMap::new()),
            clock_offset: AtomicI64::new(offset),
            signing_keys: sigv4::SigningKeys::default(),
            secrets_seen: std::env::var("ATREST_AWS_RECORD_SECRETS")
                .is_ok_and(|v| v == "1")
                .then(|| Mutex::new(Vec::new())),
            me: me.clone(),
        });
        shared.write_credentials_file()?;
        // Restore endpoint listeners.
        let endpoints: Vec<(String, String, u16)> = shared
            .inner()
            .state
            .endpoints
            .values()
            .filter(|e| e.listens())
            .map(|e| (e.id.clone(), e.vpc_id.clone(), e.port))
            .collect();
        for (id, vpc, port) in endpoints {
            let actual = shared.start_endpoint_listener(&id, &vpc, port)?;
            if actual != port {
                let mut g = shared.inner();
                if let Some(e) = g.state.endpoints.get_mut(&id) {
                    e.port = actual;
                }
                g.save_endpoint(&id)?;
            }
        }
        let main = tokio::spawn(accept_loop(shared.clone(), listener, Arrival::Public, true));
        let weak = Arc::downgrade(&shared);
        let interval = cfg.tick_interval.max(std::time::Duration::from_millis(10));
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match weak.upgrade() {
                    Some(s) => s.tick(),
                    None => break,
                }
            }
        });
        tracing::info!(url = %shared.url, "aws emulator listening");
        Ok(Emulator { shared, main, ticker, addr })
    }

    /// e.g. `http://127.0.0.1:4566`
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn operator(&self) -> AccountCredentials {
        self.account("operator")
    }

    pub fn customer(&self) -> AccountCredentials {
        self.account("customer")
    }

    /// Root credentials of an account by profile name (`operator`, `customer`, ...).
    pub fn account(&self, name: &str) -> AccountCredentials {
        let accounts = self.shared.accounts();
        accounts.iter().find(|a| a.name == name).or_else(|| accounts.first()).cloned().unwrap_or_else(|| {
            AccountCredentials {
                name: name.to_string(),
                account_id: String::new(),
                access_key_id: String::new(),
                secret_access_key: String::new(),
                arn: String::new(),
            }
        })
    }

    pub fn accounts(&self) -> Vec<AccountCredentials> {
        self.shared.accounts()
    }

    pub fn credentials_file(&self) -> PathBuf {
        self.shared.credentials_file()
    }

    /// Serves one request as the root user of `account` as if it had passed SigV4: the same
    /// routing (`X-Amz-Target` for KMS, else the `Action`/`Version` form of STS, IAM and EC2) and
    /// service code as a signed request, without the network. Fuzz targets feed outside bytes
    /// through it; returns the HTTP status.
    pub fn serve_as(&self, account: &str, region: &str, target: Option<&str>, body: &[u8]) -> u16 {
        let mut req = http::Request::builder().method("POST").uri("/");
        if let Some(t) = target {
            req = req.header("x-amz-target", t);
        }
        let Ok(req) = req.body(()) else { return 400 };
        let (parts, ()) = req.into_parts();
        let Some(route) = route(&parts, body, None) else { return 400 };
        let ctx = ReqCtx {
            request_id: ids::request_id(),
            caller: crate::policy::Caller::root(&self.account(account).account_id),
            region: region.to_string(),
            arrival: Arrival::Public,
            source_ip: "127.0.0.1".into(),
            now: self.shared.now(),
        };
        dispatch(&self.shared, &ctx, route, body).status().as_u16()
    }

    /// Stop every listener and timer. State is already durable.
    pub async fn shutdown(self) {
        self.main.abort();
        self.ticker.abort();
        let handles: Vec<JoinHandle<()>> = lock(&self.shared.listeners).drain().map(|(_, h)| h).collect();
        for h in &handles {
            h.abort();
        }
        let _ = self.main.await;
        let _ = self.ticker.await;
        for h in handles {
            let _ = h.await;
        }
    }
}

async fn accept_loop(sh: Arc<Shared>, listener: TcpListener, arrival: Arrival, admin: bool) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            res = listener.accept() => {
                let (stream, peer) = match res {
                    Ok(x) => x,
                    Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                };
                if let Arrival::Endpoint { id, .. } = &arrival {
                    if !sh.endpoint_available(id) {
                        drop(stream); // not serving: close at once
                        continue;
                    }
                }
                let _ = stream.set_nodelay(true);
                let (sh2, arr2) = (sh.clone(), arrival.clone());
                let svc = hyper::service::service_fn(move |req| {
                    handle(sh2.clone(), arr2.clone(), admin, peer, req)
                });
                conns.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Returned to hyper to drop the connection without a response (fault `drop`, closed endpoint).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped")]
pub struct Dropped;

fn plain(status: u16, request_id: &str, msg: &str) -> Resp {
    wire::json(status, request_id, &serde_json::json!({"message": msg}))
}

enum Route {
    Kms(String),
    Query { proto: Protocol, action: String, params: Vec<(String, String)> },
}

fn parse_form(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn route(parts: &http::request::Parts, body: &[u8], scope_service: Option<&str>) -> Option<Route> {
    if let Some(target) = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.strip_prefix("TrentService.").map(|op| Route::Kms(op.to_string()));
    }
    let mut params = parts.uri.query().map(parse_form).unwrap_or_default();
    if !body.is_empty() {
        params.extend(parse_form(&String::from_utf8_lossy(body)));
    }
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let action = get("Action")?;
    let proto = match get("Version").as_deref() {
        Some("2011-06-15") => Protocol::Sts,
        Some("2010-05-08") => Protocol::Iam,
        Some("2016-11-15") => Protocol::Ec2,
        _ => match scope_service {
            Some("sts") => Protocol::Sts,
            Some("iam") => Protocol::Iam,
            Some("ec2") => Protocol::Ec2,
            _ => return None,
        },
    };
    Some(Route::Query { proto, action, params })
}

async fn handle(
    sh: Arc<Shared>,
    arrival: Arrival,
    admin: bool,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
) -> Result<Resp, Dropped> {
    let request_id = ids::request_id();
    if let Arrival::Endpoint { id, .. } = &arrival {
        if !sh.endpoint_available(id) {
            return Err(Dropped);
        }
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(plain(413, &request_id, "request body too large")),
    };
    if parts.uri.path().starts_with("/_emulator") {
        if !admin {
            return Ok(plain(404, &request_id, "not found"));
        }
        return Ok(crate::admin::handle(&sh, &parts, &body, &request_id).await);
    }
    let auth_header =
        parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(sigv4::parse_authorization);
    let scope = auth_header.as_ref().and_then(|a| a.as_ref().ok());
    let Some(route) = route(&parts, &body, scope.map(|s| s.service.as_str())) else {
        return Ok(wire::kms_error(
            &request_id,
            400,
            "UnknownOperationException",
            "The request does not name a known service operation",
        ));
    };
    let (proto, op) = match &route {
        Route::Kms(op) => (Protocol::Kms, op.clone()),
        Route::Query { proto, action, .. } => (*proto, action.clone()),
    };
    let region = scope.map(|s| s.region.clone()).unwrap_or_else(|| "us-east-1".to_string());
    sh.count(arrival.label(), proto.service(), &op);

    if let Arrival::Endpoint { id, .. } = &arrival {
        let endpoint_region = sh.inner().state.endpoints.get(id).map(|e| e.region.clone()).unwrap_or_default();
        if proto != Protocol::Kms || region != endpoint_region {
            let msg = format!("VPC endpoint {id} serves only com.amazonaws.{endpoint_region}.kms");
            return Ok(error_response(
                proto,
                &request_id,
                ServiceFailure::Query(QueryError::new(403, "AccessDenied", msg.clone())),
                &msg,
            ));
        }
    }

    // Fault injection.
    let fault = sh.faults().take(proto.service(), &op, &region, arrival.label());
    if let Some(f) = fault {
        if f.latency_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(f.latency_ms)).await;
        }
        match f.kind {
            FaultKind::Latency => {}
            FaultKind::Drop => return Err(Dropped),
            kind => return Ok(fault_response(proto, &request_id, kind)),
        }
    }

    // Authentication.
    let caller = match authenticate(&sh, &parts, &body, auth_header, proto, &region) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, service = proto.service(), op = %op, "authentication failed");
            return Ok(wire::auth_error(proto, &request_id, &e));
        }
    };
    let ctx = ReqCtx {
        request_id: request_id.clone(),
        caller,
        region,
        arrival,
        source_ip: peer.ip().to_string(),
        now: sh.now(),
    };
    Ok(dispatch(&sh, &ctx, route, &body))
}

/// The services behind authentication: parse the operation's input and act on it.
fn dispatch(sh: &Shared, ctx: &ReqCtx, route: Route, body: &[u8]) -> Resp {
    let request_id = &ctx.request_id;
    match route {
        Route::Kms(op) => match crate::kms::handle(sh, ctx, &op, body) {
            Ok(v) => wire::kms_ok(request_id, &v),
            Err(e) => {
                tracing::debug!(error = %e, op = %op, "kms error");
                wire::kms_error(request_id, e.status(), e.name(), &e.to_string())
            }
        },
        Route::Query { proto, action, params } => {
            let result = match proto {
                Protocol::Sts => crate::sts::handle(sh, ctx, &action, &params),
                Protocol::Iam => crate::iam::handle(sh, ctx, &action, &params),
                _ => crate::ec2::handle(sh, ctx, &action, &params),
            };
            match result {
                Ok(xml) => wire::xml_ok(request_id, xml),
                Err(e) => wire::query_error(proto, request_id, &e),
            }
        }
    }
}

enum ServiceFailure {
    Query(QueryError),
}

fn error_response(proto: Protocol, request_id: &str, f: ServiceFailure, msg: &str) -> Resp {
    match (proto, f) {
        (Protocol::Kms, _) => wire::kms_error(request_id, 400, "AccessDeniedException", msg),
        (p, ServiceFailure::Query(q)) => wire::query_error(p, request_id, &q),
    }
}

fn fault_response(proto: Protocol, request_id: &str, kind: FaultKind) -> Resp {
    if kind == FaultKind::Skew {
        let now = time::OffsetDateTime::now_utc();
        let msg = format!(
            "Signature expired: {} is now earlier than {} ({} - 5 min.)",
            sigv4::format_amz_date(now - time::Duration::minutes(20)),
            sigv4::format_amz_date(now - time::Duration::minutes(5)),
            sigv4::format_amz_date(now)
        );
        return match proto {
            Protocol::Kms => wire::kms_error(request_id, 400, "InvalidSignatureException", &msg),
            p => wire::query_error(p, request_id, &QueryError::new(403, "SignatureDoesNotMatch", msg)),
        };
    }
    let (status, kms_name, query_code, msg) = match kind {
        FaultKind::Throttle => (400, "ThrottlingException", "Throttling", "Rate exceeded"),
        FaultKind::Error503 => {
            (503, "KMSInternalException", "ServiceUnavailable", "Service is unavailable (injected fault)")
        }
        _ => (
            500,
            "KMSInternalException",
            "InternalFailure",
            "We encountered an internal error. Please try again. (injected fault)",
        ),
    };
    if proto == Protocol::Kms {
        let name = if status == 503 { "ServiceUnavailableException" } else { kms_name };
        wire::kms_error(request_id, status, name, msg)
    } else {
        let code =
            if proto == Protocol::Ec2 && kind == FaultKind::Throttle { "RequestLimitExceeded" } else { query_code };
        wire::query_error(proto, request_id, &QueryError::new(status, code, msg))
    }
}

fn authenticate(
    sh: &Shared,
    parts: &http::request::Parts,
    body: &[u8],
    auth_header: Option<Result<sigv4::AuthHeader, AuthError>>,
    proto: Protocol,
    region: &str,
) -> Result<Caller, AuthError> {
    let auth = match auth_header {
        None => return Err(AuthError::Missing),
        Some(r) => r?,
    };
    let service = proto.service();
    if auth.service != service {
        return Err(AuthError::WrongScope(format!("Credential should be scoped to correct service: '{service}'. ")));
    }
    if !ids::is_region(region) || (proto == Protocol::Iam && region != "us-east-1") {
        return Err(AuthError::WrongScope(format!("Credential should be scoped to a valid region, not '{region}'. ")));
    }
    let (secret, caller, expires) = if auth.access_key_id.starts_with("ASIA") {
        let token = parts
            .headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::UnrecognizedClient)?;
        let claims = crate::sts::open_session_token(&sh.root_key, token).ok_or(AuthError::UnrecognizedClient)?;
        if claims.access_key_id != auth.access_key_id {
            return Err(AuthError::UnrecognizedClient);
        }
        let caller = Caller {
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{}",
                claims.account_id, claims.role_name, claims.session_name
            ),
            account: claims.account_id.clone(),
            kind: CallerKind::AssumedRole { role_arn: claims.role_arn.clone() },
        };
        (claims.secret_access_key.clone(), caller, Some(claims.expiration))
    } else {
        let g = sh.inner();
        let acct = g.state.account_by_key(&auth.access_key_id).ok_or(AuthError::UnrecognizedClient)?;
        (acct.secret_access_key.clone(), Caller::root(&acct.account_id), None)
    };
    if let Some(exp) = expires {
        if sh.now() >= exp {
            return Err(AuthError::ExpiredToken);
        }
    }
    let req = sigv4::SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body,
    };
    sigv4::verify(&req, &auth, &secret, time::OffsetDateTime::now_utc(), sh.cfg.max_clock_skew, &sh.signing_keys)?;
    Ok(caller)
}
