//! Filters of the listing endpoints, as query strings.

use switchboard_core::api::DeliveryState;

use crate::urlencode;

/// Filters of `GET /v1/deliveries` and `/v1/dead-letters`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub state: Option<DeliveryState>,
    pub recipient: Option<String>,
    pub since: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl DeliveryQuery {
    pub(crate) fn to_query(&self) -> String {
        let mut q = Vec::new();
        if let Some(s) = self.state {
            q.push(format!("state={}", s.as_str()));
        }
        if let Some(r) = &self.recipient {
            q.push(format!("recipient={}", urlencode(r)));
        }
        if let Some(s) = &self.since {
            q.push(format!("since={}", urlencode(s)));
        }
        if let Some(l) = self.limit {
            q.push(format!("limit={l}"));
        }
        if let Some(c) = &self.cursor {
            q.push(format!("cursor={}", urlencode(c)));
        }
        if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) }
    }
}

/// Filters of `GET /v1/audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// `operator`, `admin`, `agent:<id>` or `user:<id>`.
    pub actor: Option<String>,
    /// An audited action, e.g. `agent.register`.
    pub action: Option<String>,
    /// RFC 3339 time: only entries at or after it.
    pub since: Option<String>,
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl AuditQuery {
    pub(crate) fn to_query(&self) -> String {
        let q: Vec<String> = [
            ("actor", self.actor.clone()),
            ("action", self.action.clone()),
            ("since", self.since.clone()),
            ("limit", self.limit.map(|l| l.to_string())),
            ("cursor", self.cursor.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", urlencode(&v))))
        .collect();
        if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) }
    }
}
