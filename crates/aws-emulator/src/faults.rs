//! Fault injection rules, switched on at run time through the admin API.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// KMS `ThrottlingException` (400); query APIs `Throttling` / EC2 `RequestLimitExceeded`.
    Throttle,
    /// KMS `KMSInternalException` (500); query APIs `InternalFailure`.
    Error500,
    /// 503 `ServiceUnavailableException` / `ServiceUnavailable`.
    Error503,
    /// Delay by `latencyMs`, then serve normally.
    Latency,
    /// Close the connection without a response.
    Drop,
    /// Answer as AWS does when the caller's clock is more than 5 minutes off: `Signature expired`
    /// (KMS `InvalidSignatureException`, query APIs `SignatureDoesNotMatch`, 400/403).
    Skew,
}

/// A rule as posted to `POST /_emulator/faults`. Unset filters match everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// `public` or a `vpce-…` id.
    #[serde(default)]
    pub address: Option<String>,
    pub kind: FaultKind,
    #[serde(default)]
    pub latency_ms: u64,
    /// How many requests to affect; unlimited when absent.
    #[serde(default)]
    pub count: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub latency_ms: u64,
}

#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<FaultRule>,
    next_id: u64,
}

fn matches(filter: &Option<String>, value: &str) -> bool {
    filter.as_deref().map(|f| f == "*" || f.eq_ignore_ascii_case(value)).unwrap_or(true)
}

impl Faults {
    pub fn add(&mut self, mut rule: FaultRule) -> FaultRule {
        self.next_id += 1;
        rule.id = self.next_id;
        self.rules.push(rule.clone());
        rule
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.id != id);
        before != self.rules.len()
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.clone()
    }

    /// The first rule matching this request, consuming one of its `count`.
    pub fn take(&mut self, service: &str, operation: &str, region: &str, address: &str) -> Option<Fault> {
        let idx = self.rules.iter().position(|r| {
            matches(&r.service, service)
                && matches(&r.operation, operation)
                && matches(&r.region, region)
                && matches(&r.address, address)
                && r.count.map(|c| c > 0).unwrap_or(true)
        })?;
        let rule = &mut self.rules[idx];
        let fault = Fault { kind: rule.kind, latency_ms: rule.latency_ms };
        if let Some(c) = rule.count.as_mut() {
            *c -= 1;
            if *c == 0 {
                self.rules.remove(idx);
            }
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_expire() {
        let mut f = Faults::default();
        let rule: FaultRule =
            serde_json::from_str(r#"{"service":"kms","operation":"Decrypt","kind":"throttle","count":2}"#).unwrap();
        f.add(rule);
        assert!(f.take("kms", "Encrypt", "us-east-1", "public").is_none());
        assert_eq!(f.take("kms", "Decrypt", "us-east-1", "public").map(|x| x.kind), Some(FaultKind::Throttle));
        assert!(f.take("kms", "Decrypt", "eu-west-1", "vpce-1").is_some());
        assert!(f.take("kms", "Decrypt", "us-east-1", "public").is_none());
        assert!(serde_json::from_str::<FaultRule>(r#"{"kind":"explode"}"#).is_err());
    }
}
