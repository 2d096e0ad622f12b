//! A tenant's limits (`GET`/`PUT /v1/limits`): per-principal rates and per-tenant quotas.
//! Every limit is off until set, so a hub without limits behaves as before.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::FieldError;

/// A token bucket: `per_second` tokens flow in, at most `burst` are held; each send (or
/// request) takes one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Sustained rate, per second (more than 0, at most 1000000).
    #[schema(exclusive_minimum = 0, maximum = 1000000)]
    pub per_second: f64,
    /// Most taken at once after a quiet spell (1 to 1000000).
    #[schema(minimum = 1, maximum = 1000000)]
    pub burst: u32,
}

/// A tenant's limits. Absent fields are off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    /// Messages each agent or person may send (each message of a batch counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_rate: Option<Rate>,
    /// Authenticated API requests each agent or person may make.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_rate: Option<Rate>,
    /// Most registered agents in the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_agents: Option<u64>,
    /// Most messages stored in the tenant (counted by each node about once a second, plus
    /// what it accepted since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages_stored: Option<u64>,
    /// Most recipients one message may reach (anycast, broadcast, topic fan-out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_recipients: Option<u64>,
    /// Most open streams (WebSocket, SSE, long-poll) per agent or person, per node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_streams: Option<u64>,
}

/// The largest quota: an int64, as the OpenAPI document declares it.
pub const QUOTA_MAX: u64 = i64::MAX as u64;

impl TenantLimits {
    /// Checks the bounds, naming every bad field.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (name, rate) in [("send_rate", &self.send_rate), ("api_rate", &self.api_rate)] {
            if let Some(r) = rate {
                if !(r.per_second > 0.0 && r.per_second <= 1_000_000.0) {
                    errors.push(FieldError {
                        path: format!("{name}.per_second"),
                        message: "must be more than 0 and at most 1000000; leave the rate out to turn it off".into(),
                    });
                }
                if !(1..=1_000_000).contains(&r.burst) {
                    errors.push(FieldError { path: format!("{name}.burst"), message: "must be 1 to 1000000".into() });
                }
            }
        }
        for (name, v) in [
            ("max_agents", self.max_agents),
            ("max_messages_stored", self.max_messages_stored),
            ("max_recipients", self.max_recipients),
            ("max_streams", self.max_streams),
        ] {
            if v == Some(0) {
                errors.push(FieldError {
                    path: name.into(),
                    message: "must be at least 1; leave it out to turn the quota off".into(),
                });
            }
            // The document declares these int64, and the stores keep them as such.
            if v.is_some_and(|v| v > QUOTA_MAX) {
                errors.push(FieldError {
                    path: name.into(),
                    message: format!("must be at most {QUOTA_MAX}; leave it out to turn the quota off"),
                });
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_and_named() {
        assert!(TenantLimits::default().validate().is_ok());
        let bad = TenantLimits {
            send_rate: Some(Rate { per_second: 0.0, burst: 0 }),
            max_streams: Some(0),
            ..Default::default()
        };
        let paths: Vec<String> = bad.validate().unwrap_err().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["send_rate.per_second", "send_rate.burst", "max_streams"]);
        let huge = TenantLimits { max_recipients: Some(QUOTA_MAX + 1), ..Default::default() };
        let paths: Vec<String> = huge.validate().unwrap_err().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["max_recipients"], "schemathesis sent 2^63 and got 200");
        assert!(TenantLimits { max_recipients: Some(QUOTA_MAX), ..Default::default() }.validate().is_ok());
        let nan = TenantLimits { api_rate: Some(Rate { per_second: f64::NAN, burst: 1 }), ..Default::default() };
        assert!(nan.validate().is_err());
    }
}
