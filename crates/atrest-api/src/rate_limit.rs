//! Admin API rate limits, as Atlas applies them: a token bucket per caller (API key or service
//! account) and one per project, each holding a minute's allowance and refilling continuously.
//! Answers carry `RateLimit-Limit` and `RateLimit-Remaining`; a refusal is 429
//! `RATE_LIMITED_TOKEN_BUCKET` with `Retry-After`. The data API (`/data/v1`) is not limited here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use atrest_core::Error;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::Principal;
use crate::errors::error_response;
use crate::AppState;

/// Requests per minute; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_key: u32,
    pub per_project: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { per_key: 1000, per_project: 500 }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What one bucket says about a request.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Verdict {
    limit: u32,
    remaining: u32,
    /// Seconds until a token is back, when the bucket is empty.
    retry_after: Option<u64>,
}

pub struct Limiter {
    limits: Limits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Buckets kept before full ones are forgotten (a full bucket is the same as none).
const MAX_BUCKETS: usize = 10_000;

impl Limiter {
    pub fn new(limits: Limits) -> Self {
        Limiter { limits, buckets: Mutex::new(HashMap::new()) }
    }

    fn refill(b: &mut Bucket, per_minute: u32, now: Instant) {
        let rate = per_minute as f64 / 60.0;
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(per_minute as f64);
        b.at = now;
    }

    /// Takes one token from every applicable bucket, or from none if any is empty.
    fn take(&self, keys: &[(String, u32)], now: Instant) -> Option<Verdict> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > MAX_BUCKETS {
            let limits: HashMap<&str, u32> = keys.iter().map(|(k, l)| (k.as_str(), *l)).collect();
            buckets.retain(|k, b| {
                let per_minute =
                    limits.get(k.as_str()).copied().unwrap_or(self.limits.per_key.max(self.limits.per_project));
                Self::refill(b, per_minute, now);
                b.tokens < per_minute as f64
            });
        }
        let mut tightest: Option<Verdict> = None;
        let mut refused = false;
        for (key, per_minute) in keys {
            let b = buckets.entry(key.clone()).or_insert(Bucket { tokens: *per_minute as f64, at: now });
            Self::refill(b, *per_minute, now);
            let verdict = if b.tokens >= 1.0 {
                Verdict { limit: *per_minute, remaining: (b.tokens - 1.0).floor() as u32, retry_after: None }
            } else {
                refused = true;
                let wait = (1.0 - b.tokens) * 60.0 / *per_minute as f64;
                Verdict { limit: *per_minute, remaining: 0, retry_after: Some(wait.ceil().max(1.0) as u64) }
            };
            let tighter = match tightest {
                None => true,
                Some(t) => {
                    verdict.retry_after.unwrap_or(0) > t.retry_after.unwrap_or(0) || verdict.remaining < t.remaining
                }
            };
            if tighter {
                tightest = Some(verdict);
            }
        }
        if !refused {
            for (key, _) in keys {
                if let Some(b) = buckets.get_mut(key) {
                    b.tokens -= 1.0;
                }
            }
        }
        tightest
    }
}

/// The project a path is about: the 24-hex id after `/groups/`.
fn project_of(path: &str) -> Option<&str> {
    let mut segs = path.split('/');
    while let Some(s) = segs.next() {
        if s == "groups" {
            return segs.next().filter(|id| id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
    None
}

pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let Some(who) = req.extensions().get::<Principal>().filter(|_| !path.starts_with("/data/")) else {
        return next.run(req).await;
    };
    let limits = state.limiter.limits;
    let mut keys = Vec::with_capacity(2);
    if limits.per_key > 0 {
        keys.push((format!("key:{}", who.key_id), limits.per_key));
    }
    if let Some(group) = project_of(path).filter(|_| limits.per_project > 0) {
        keys.push((format!("project:{group}"), limits.per_project));
    }
    let Some(verdict) = state.limiter.take(&keys, Instant::now()) else {
        return next.run(req).await;
    };
    let mut resp = match verdict.retry_after {
        Some(secs) => {
            tracing::info!(caller = %who.public_key, path, "rate limited");
            let mut r = error_response(&Error::RateLimited { limit: verdict.limit, retry_after_secs: secs });
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
        None => next.run(req).await,
    };
    let h = resp.headers_mut();
    h.insert("ratelimit-limit", HeaderValue::from(verdict.limit));
    h.insert("ratelimit-remaining", HeaderValue::from(verdict.remaining));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_holds_a_minute_and_refills_continuously() {
        let l = Limiter::new(Limits { per_key: 60, per_project: 0 });
        let keys = [("key:a".to_owned(), 60)];
        let t0 = Instant::now();
        for i in 0..60 {
            let v = l.take(&keys, t0).unwrap();
            assert_eq!(v.retry_after, None, "request {i}");
            assert_eq!(v.remaining, 59 - i);
        }
        let v = l.take(&keys, t0).unwrap();
        assert_eq!((v.remaining, v.retry_after), (0, Some(1)));
        // One token per second comes back.
        assert_eq!(l.take(&keys, t0 + Duration::from_millis(1000)).unwrap().retry_after, None);
        assert!(l.take(&keys, t0 + Duration::from_millis(1000)).unwrap().retry_after.is_some());
    }

    #[test]
    fn a_refusal_by_one_bucket_takes_nothing_from_the_other() {
        let l = Limiter::new(Limits { per_key: 100, per_project: 2 });
        let t0 = Instant::now();
        let both = [("key:a".to_owned(), 100), ("project:p".to_owned(), 2)];
        assert!(l.take(&both, t0).unwrap().retry_after.is_none());
        assert!(l.take(&both, t0).unwrap().retry_after.is_none());
        let v = l.take(&both, t0).unwrap();
        assert_eq!((v.limit, v.retry_after), (2, Some(30)));
        let key_only = [("key:a".to_owned(), 100)];
        assert_eq!(l.take(&key_only, t0).unwrap().remaining, 97, "the refused request cost the key nothing");
    }

    #[test]
    fn projects_are_read_from_paths() {
        assert_eq!(
            project_of("/api/atlas/v2/groups/5f0a1b2c3d4e5f6a7b8c9d0e/clusters"),
            Some("5f0a1b2c3d4e5f6a7b8c9d0e")
        );
        assert_eq!(project_of("/api/atlas/v2/groups"), None);
        assert_eq!(project_of("/api/atlas/v2/groups/byName/x"), None);
    }
}
