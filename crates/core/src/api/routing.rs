//! Auto-routing (`to: "auto"`): the tenant's settings (`/v1/routing/settings`), the decision
//! stored with each auto-routed message, and a person's choice from triage
//! (`POST /v1/messages/{id}/route`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FieldError;
use crate::address::check_name;

/// Default lowest BM25 score that routes without a person (tuned on the labelled set in
/// `crates/server/tests/data/autoroute.json`).
pub const DEFAULT_THRESHOLD: f64 = 4.0;
/// Default lowest lead of the best capability over the runner-up, as a share of the best.
pub const DEFAULT_MARGIN: f64 = 0.3;
/// Default group of people that decides what the hub could not.
pub const DEFAULT_TRIAGE_GROUP: &str = "triage";
/// Default time a model has to answer before BM25 decides.
pub const DEFAULT_MODEL_TIMEOUT_MS: u64 = 2000;
/// Default lowest cosine similarity an embeddings model must reach to route.
pub const DEFAULT_MIN_SIMILARITY: f64 = 0.5;

/// How a model is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// `POST {base_url}/chat/completions`: the model names one capability or `none`.
    Chat,
    /// `POST {base_url}/embeddings`: the closest capability by cosine similarity.
    Embeddings,
}

/// An OpenAI-compatible model as written (`PUT /v1/routing/settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    pub kind: ModelKind,
    /// `http://` or `https://`, without `/chat/completions` or `/embeddings`.
    #[schema(max_length = 2000)]
    pub base_url: String,
    #[schema(min_length = 1, max_length = 200)]
    pub model: String,
    /// Sent as a bearer token; stored, never shown again. Left out: the stored key is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4096)]
    pub api_key: Option<String>,
    /// 50 to 60000, default 2000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 50, maximum = 60000)]
    pub timeout_ms: Option<u64>,
    /// Embeddings only: the lowest cosine similarity that routes (0 to 1, default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub min_similarity: Option<f64>,
}

/// `PUT /v1/routing/settings`. Fields left out take their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRoutingSettings {
    /// Lowest BM25 score of the best capability that routes (0 to 1000, default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1000)]
    pub threshold: Option<f64>,
    /// Lowest (best − runner-up) / best that routes (0 to 1, default 0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 1)]
    pub margin: Option<f64>,
    /// The group that gets what the hub cannot route (default `triage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage_group: Option<String>,
    /// A model that decides instead of BM25 (BM25 still decides when it fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSettings>,
}

/// A configured model as shown: everything but its key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelView {
    pub kind: ModelKind,
    pub base_url: String,
    pub model: String,
    pub timeout_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_similarity: Option<f64>,
    /// Whether a key is stored (it is never shown).
    pub api_key_set: bool,
}

/// `GET /v1/routing/settings`: the tenant's auto-routing settings, defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoutingSettings {
    pub threshold: f64,
    pub margin: f64,
    pub triage_group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelView>,
}

/// Who decided where an auto-routed message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouteMethod {
    /// Lexical relevance (BM25) of the message's text to each capability.
    Bm25,
    /// The tenant's model.
    Model,
    /// A person of the triage group.
    Triage,
}

/// One candidate capability and its score under the method that decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CapabilityScore {
    pub capability: String,
    pub score: f64,
}

/// The decision stored with an auto-routed message (`routing` of `GET /v1/messages/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoutingDecision {
    pub method: RouteMethod,
    /// The candidates, best first (at most 5).
    pub scores: Vec<CapabilityScore>,
    /// The capability it went to; absent while it waits in triage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
    /// Why, in words.
    pub reason: String,
    /// The group it was sent to for a person to decide, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage: Option<String>,
    /// Who chose, for method `triage` (`user:<id>` or `admin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
}

/// `POST /v1/messages/{id}/route`: a person's choice for a message waiting in triage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteMessage {
    /// The capability that gets it (one agent with it, as `capability:<name>` would).
    #[schema(min_length = 1, max_length = 200, pattern = "^[A-Za-z0-9._-]{1,200}$")]
    pub capability: String,
}

/// The answer to `POST /v1/messages/{id}/route`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MessageRouted {
    pub id: String,
    /// The new deliveries' recipients.
    pub recipients: Vec<String>,
    pub routing: RoutingDecision,
}

/// Checks `PUT /v1/routing/settings`, naming every bad field.
pub fn check_routing_settings(s: &PutRoutingSettings) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut err = |path: &str, message: String| errors.push(FieldError { path: path.into(), message });
    if let Some(t) = s.threshold
        && !(0.0..=1000.0).contains(&t)
    {
        err("threshold", "use a score from 0 to 1000".into());
    }
    if let Some(m) = s.margin
        && !(0.0..=1.0).contains(&m)
    {
        err("margin", "use a share from 0 to 1 (0.2: the best leads the runner-up by a fifth)".into());
    }
    if let Some(g) = &s.triage_group
        && let Err(e) = check_name("group", g)
    {
        err("triage_group", e.to_string());
    }
    if let Some(m) = &s.model {
        let url_ok = (m.base_url.starts_with("http://") || m.base_url.starts_with("https://"))
            && m.base_url.len() <= 2000
            && !m.base_url.contains(char::is_whitespace);
        if !url_ok {
            err("model.base_url", "use an http:// or https:// URL such as https://api.openai.com/v1".into());
        }
        if m.model.trim().is_empty() || m.model.len() > 200 {
            err("model.model", "name the model (1 to 200 characters)".into());
        }
        if m.api_key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 4096) {
            err("model.api_key", "give 1 to 4096 characters, or leave it out to keep the stored key".into());
        }
        if m.timeout_ms.is_some_and(|t| !(50..=60_000).contains(&t)) {
            err("model.timeout_ms", "use 50 to 60000 milliseconds".into());
        }
        if let Some(v) = m.min_similarity {
            if m.kind != ModelKind::Embeddings {
                err("model.min_similarity", "only an embeddings model takes a similarity; leave it out".into());
            } else if !(0.0..=1.0).contains(&v) {
                err("model.min_similarity", "use a similarity from 0 to 1".into());
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_named_field_by_field() {
        assert!(check_routing_settings(&PutRoutingSettings::default()).is_ok());
        let bad = PutRoutingSettings {
            threshold: Some(-1.0),
            margin: Some(2.0),
            triage_group: Some("a/b".into()),
            model: Some(ModelSettings {
                kind: ModelKind::Chat,
                base_url: "ftp://x".into(),
                model: "".into(),
                api_key: Some(String::new()),
                timeout_ms: Some(10),
                min_similarity: Some(0.5),
            }),
        };
        let paths: Vec<String> = check_routing_settings(&bad).unwrap_err().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "threshold",
                "margin",
                "triage_group",
                "model.base_url",
                "model.model",
                "model.api_key",
                "model.timeout_ms",
                "model.min_similarity"
            ]
        );
    }
}
