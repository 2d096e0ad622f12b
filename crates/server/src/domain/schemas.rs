//! Capability schemas: a capability's `input_schema` and `output_schema` are checked when
//! the card is registered or updated (a valid JSON Schema, 2020-12 unless its `$schema` says
//! otherwise, with no reference the hub would have to fetch), and every `data` part sent to
//! the capability is validated against the input schema, every failing location named.
//! Replies are validated against the output schema when the capability's
//! `output_schema_mode` asks (see `Acceptor::check_output`).
//!
//! Which schema: the one of each agent that receives the message. For anycast that is the
//! agent anycast picked; for `?all`, every recipient's (a message one of them would refuse is
//! refused). For `agent:<id>` with `metadata.capability` naming one of that agent's
//! capabilities, that capability's. A `metadata.capability` the agent does not offer is not
//! checked (metadata is free-form).
//!
//! Validators are compiled once per capability version: cached by (tenant, agent, capability)
//! with the schema they were compiled from, so an update (seen on the record read by routing,
//! on every node) recompiles and the hot path only compares the schema. Entries
//! of deleted agents stay until the cache is full (10,000 entries), then all are dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonschema::{Uri, Validator};
use serde_json::Value;
use switchboard_core::api::{FieldError, Part, RegisterAgent};
use switchboard_store::AgentRecord;

use crate::error::ApiError;

/// Longest message of one failing location (a message may quote the value at fault).
const MAX_MESSAGE: usize = 300;
/// Most failing locations reported for one message.
const MAX_ERRORS: usize = 100;

/// Refuses every reference that is not inside the schema itself: the hub fetches nothing.
struct NoFetch;

impl jsonschema::Retrieve for NoFetch {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "refers to `{uri}`, which the hub does not fetch; put that schema under `$defs` and refer to it as `#/$defs/<name>`"
        )
        .into())
    }
}

fn compile(schema: &Value) -> Result<Validator, String> {
    jsonschema::options().with_retriever(NoFetch).build(schema).map_err(|e| clip(e.to_string()))
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Every capability schema of a card that is not a valid JSON Schema, by path
/// (`capabilities[2].input_schema`) with the reason.
pub fn check_card(card: &RegisterAgent) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (i, c) in card.capabilities.iter().enumerate() {
        for (field, schema) in [("input_schema", &c.input_schema), ("output_schema", &c.output_schema)] {
            if let Some(s) = schema
                && let Err(why) = compile(s)
            {
                errors.push(FieldError {
                    path: format!("capabilities[{i}].{field}"),
                    message: format!("is not a valid JSON Schema: {why}"),
                });
            }
        }
    }
    errors
}

/// Whether a message has a `data` part (only those pay for a schema check).
pub fn has_data(parts: &[Part]) -> bool {
    parts.iter().any(|p| matches!(p, Part::Data { .. }))
}

/// Which of a capability's schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `input_schema`: what is sent to the capability.
    Input,
    /// `output_schema`: the replies of an agent with it.
    Output,
}

impl Direction {
    fn word(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

type Key = (String, String, String, Direction);
/// A compiled schema and the schema it was compiled from (`None`: it does not compile).
type Compiled = (Value, Option<Arc<Validator>>);

/// The compiled input schemas of this node, per capability version. A schema that does not
/// compile (stored before schemas were checked) is cached as `None` and not enforced.
#[derive(Default)]
pub struct Schemas {
    compiled: Mutex<HashMap<Key, Compiled>>,
}

impl Schemas {
    /// The compiled `input_schema` (or `output_schema`) of `capability` on `agent`, if it
    /// has one.
    fn validator(&self, agent: &AgentRecord, capability: &str, dir: Direction) -> Option<Arc<Validator>> {
        let cap = agent.capabilities.iter().find(|c| c.name == capability)?;
        let schema = match dir {
            Direction::Input => cap.input_schema.as_ref()?,
            Direction::Output => cap.output_schema.as_ref()?,
        };
        let key = (agent.tenant.clone(), agent.id.clone(), capability.to_owned(), dir);
        if let Some((compiled_from, v)) = self.compiled.lock().expect("schema cache poisoned").get(&key)
            && compiled_from == schema
        {
            return v.clone();
        }
        let v = match compile(schema) {
            Ok(v) => Some(Arc::new(v)),
            Err(why) => {
                tracing::warn!(agent = %agent.id, capability, direction = dir.word(), %why,
                    "stored capability schema does not compile; not enforced");
                None
            }
        };
        let mut map = self.compiled.lock().expect("schema cache poisoned");
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(key, (schema.clone(), v.clone()));
        v
    }

    /// Checks every `data` part against the `input_schema` of `capability` on each agent:
    /// 422 `schema_violation` naming every failing location (`parts[0].data.amount`).
    pub fn check(&self, agents: &[AgentRecord], capability: &str, parts: &[Part]) -> Result<(), ApiError> {
        self.check_as(agents, capability, parts, Direction::Input)
    }

    /// Every location of a `data` part that fails the schema `dir` of `capability` on any
    /// of `agents` (empty: it conforms, or there is no schema), at most 100.
    pub fn failures(
        &self,
        agents: &[AgentRecord],
        capability: &str,
        parts: &[Part],
        dir: Direction,
    ) -> Vec<FieldError> {
        let mut errors: Vec<FieldError> = Vec::new();
        let mut seen_schemas: Vec<Arc<Validator>> = Vec::new();
        for agent in agents {
            let Some(v) = self.validator(agent, capability, dir) else { continue };
            // Agents that share one compiled validator need one pass.
            if seen_schemas.iter().any(|s| Arc::ptr_eq(s, &v)) {
                continue;
            }
            seen_schemas.push(v.clone());
            for (i, p) in parts.iter().enumerate() {
                let Part::Data { data } = p else { continue };
                for e in v.iter_errors(data) {
                    let path = data_path(i, e.instance_path());
                    let message = clip(e.to_string());
                    if errors.len() < MAX_ERRORS && !errors.iter().any(|x| x.path == path && x.message == message) {
                        errors.push(FieldError { path, message });
                    }
                }
            }
        }
        errors
    }

    /// [`Schemas::failures`] as 422 `schema_violation` naming every failing location.
    pub fn check_as(
        &self,
        agents: &[AgentRecord],
        capability: &str,
        parts: &[Part],
        dir: Direction,
    ) -> Result<(), ApiError> {
        let errors = self.failures(agents, capability, parts, dir);
        if errors.is_empty() {
            return Ok(());
        }
        let word = dir.word();
        let detail = match errors.as_slice() {
            [one] => {
                format!("`{}` does not match the {word} schema of capability `{capability}`: {}", one.path, one.message)
            }
            many => format!(
                "{} locations do not match the {word} schema of capability `{capability}`; see `errors`",
                many.len()
            ),
        };
        Err(ApiError::SchemaViolation { detail, errors })
    }
}

/// Whether `schema` is a JSON Schema the hub can use (as capability schemas are checked):
/// the compiler's complaint if not.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    compile(schema).map(|_| ())
}

/// Every location of `value` that fails `schema`, at most 100, named from `root`
/// (`form.amount`). A schema that does not compile is one failure at `root`.
pub fn value_failures(schema: &Value, value: &Value, root: &str) -> Vec<FieldError> {
    let v = match compile(schema) {
        Ok(v) => v,
        Err(e) => return vec![FieldError { path: root.into(), message: e }],
    };
    v.iter_errors(value)
        .take(MAX_ERRORS)
        .map(|e| FieldError { path: located(root.to_owned(), e.instance_path()), message: clip(e.to_string()) })
        .collect()
}

fn located(mut out: String, at: &jsonschema::paths::Location) -> String {
    for seg in at.segments() {
        match seg {
            jsonschema::paths::LocationSegment::Property(p) => {
                out.push('.');
                out.push_str(&p);
            }
            jsonschema::paths::LocationSegment::Index(n) => out.push_str(&format!("[{n}]")),
        }
    }
    out
}

/// `parts[i].data` followed by the instance location in the style of every other path
/// (`.name` for a property, `[n]` for an array index).
fn data_path(part: usize, at: &jsonschema::paths::Location) -> String {
    let mut out = format!("parts[{part}].data");
    for seg in at.segments() {
        match seg {
            jsonschema::paths::LocationSegment::Property(p) => {
                out.push('.');
                out.push_str(&p);
            }
            jsonschema::paths::LocationSegment::Index(n) => out.push_str(&format!("[{n}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_core::api::Capability;

    fn agent(schema: Value) -> AgentRecord {
        AgentRecord {
            tenant: "t".into(),
            id: "a".into(),
            name: "a".into(),
            description: None,
            version: None,
            endpoint: None,
            capabilities: vec![Capability { input_schema: Some(schema), ..Capability::named("pay") }],
            metadata: None,
            created_at: 1,
            updated_at: 1,
            last_seen_at: None,
        }
    }

    #[test]
    fn names_every_failing_location_in_the_paths_style() {
        let schema = json!({"type": "object", "required": ["amount"], "properties": {
            "amount": {"type": "number"}, "items": {"type": "array", "items": {"type": "string"}}}});
        let parts = vec![Part::text("hi"), Part::Data { data: json!({"amount": "x", "items": ["a", 2]}) }];
        let Err(ApiError::SchemaViolation { errors, .. }) = Schemas::default().check(&[agent(schema)], "pay", &parts)
        else {
            panic!("expected a schema violation")
        };
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["parts[1].data.amount", "parts[1].data.items[1]"]);
    }

    #[test]
    fn refuses_remote_references_and_invalid_schemas() {
        let card = |s: Value| RegisterAgent {
            name: "a".into(),
            capabilities: vec![agent(s).capabilities.remove(0)],
            ..Default::default()
        };
        let e = check_card(&card(json!({"$ref": "https://example.com/s.json"})));
        assert_eq!(e[0].path, "capabilities[0].input_schema");
        assert!(e[0].message.contains("does not fetch"), "{}", e[0].message);
        assert_eq!(check_card(&card(json!({"type": "nope"})))[0].path, "capabilities[0].input_schema");
        assert!(check_card(&card(json!({"$defs": {"x": {"type": "string"}}, "$ref": "#/$defs/x"}))).is_empty());
    }
}
