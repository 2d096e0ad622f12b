//! Request validation that needs no store: every problem is reported with its JSON path, so a
//! client can fix all of them in one go.

use base64::Engine;

use crate::Address;
use crate::api::{CreateTenant, FieldError, Part, RegisterAgent, SendMessage};

mod strings;

/// The string rule (no NUL), applied to whole requests; see `validate/strings.rs`.
pub use strings::{NUL_REFUSED, strings};

/// Longest TTL a message may ask for (30 days).
pub const MAX_TTL_SECONDS: u64 = 30 * 24 * 3600;
/// Longest idempotency key, correlation id, conversation id.
pub const MAX_KEY_LEN: usize = 256;

fn err(path: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { path: path.into(), message: message.into() }
}

fn check_key(errors: &mut Vec<FieldError>, path: &str, v: &Option<String>) {
    if let Some(v) = v
        && (v.is_empty() || v.len() > MAX_KEY_LEN)
    {
        errors.push(err(path, format!("must be 1 to {MAX_KEY_LEN} characters")));
    }
}

/// Checks a send request and returns the parsed address, or every field that is wrong.
pub fn send_message(m: &SendMessage) -> Result<Address, Vec<FieldError>> {
    let mut errors = Vec::new();
    let addr = match m.to.parse::<Address>() {
        Ok(a) => Some(a),
        Err(e) => {
            errors.push(err("to", e.to_string()));
            None
        }
    };
    errors.extend(strings(m));
    if m.parts.is_empty() {
        errors.push(err("parts", "a message needs at least one part, e.g. {\"kind\":\"text\",\"text\":\"hi\"}"));
    }
    for (i, p) in m.parts.iter().enumerate() {
        if let Part::File { file } = p {
            let path = format!("parts[{i}].file");
            match (&file.bytes, &file.uri) {
                (Some(_), Some(_)) | (None, None) => {
                    errors.push(err(&path, "give exactly one of `bytes` (base64) or `uri`"))
                }
                (Some(b), None) => {
                    if base64::engine::general_purpose::STANDARD.decode(b).is_err() {
                        errors.push(err(format!("{path}.bytes"), "is not valid standard base64"));
                    }
                }
                (None, Some(u)) => {
                    if !u.contains(':') {
                        errors.push(err(format!("{path}.uri"), "must be an absolute URI"));
                    }
                }
            }
        }
    }
    check_key(&mut errors, "conversation_id", &m.conversation_id);
    check_key(&mut errors, "correlation_id", &m.correlation_id);
    check_key(&mut errors, "in_reply_to", &m.in_reply_to);
    check_key(&mut errors, "idempotency_key", &m.idempotency_key);
    if let Some(t) = m.ttl_seconds
        && (t == 0 || t > MAX_TTL_SECONDS)
    {
        errors.push(err("ttl_seconds", format!("must be between 1 and {MAX_TTL_SECONDS}")));
    }
    if let Some(md) = &m.metadata
        && !md.is_object()
    {
        errors.push(err("metadata", "must be a JSON object"));
    }
    match (addr, errors.is_empty()) {
        (Some(a), true) => Ok(a),
        _ => Err(errors),
    }
}

/// Checks an agent registration or update.
pub fn register_agent(r: &RegisterAgent) -> Result<(), Vec<FieldError>> {
    let mut errors = strings(r);
    let name_ok = |s: &str| {
        !s.is_empty() && s.len() <= 200 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !name_ok(&r.name) {
        errors.push(err("name", "must be 1 to 200 letters, digits or `-_.`"));
    }
    if let Some(e) = &r.endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        errors.push(err("endpoint", "must be an http:// or https:// URL"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, c) in r.capabilities.iter().enumerate() {
        if !name_ok(&c.name) {
            errors.push(err(format!("capabilities[{i}].name"), "must be 1 to 200 letters, digits or `-_.`"));
        } else if !seen.insert(c.name.as_str()) {
            errors.push(err(format!("capabilities[{i}].name"), format!("`{}` is listed twice", c.name)));
        }
        for (field, schema) in [("input_schema", &c.input_schema), ("output_schema", &c.output_schema)] {
            if let Some(s) = schema
                && !(s.is_object() || s.is_boolean())
            {
                errors.push(err(format!("capabilities[{i}].{field}"), "must be a JSON Schema (an object)"));
            }
        }
    }
    if let Some(md) = &r.metadata
        && !md.is_object()
    {
        errors.push(err("metadata", "must be a JSON object"));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Checks a new tenant: its name is 1 to 100 letters, digits or `-_.` (the agents' charset).
pub fn create_tenant(t: &CreateTenant) -> Result<(), Vec<FieldError>> {
    let mut errors = strings(t);
    let ok = !t.name.is_empty()
        && t.name.len() <= 100
        && t.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if errors.is_empty() && !ok {
        errors.push(err("name", "must be 1 to 100 letters, digits or `-_.`"));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FilePart;

    #[test]
    fn reports_every_bad_field_with_its_path() {
        let m = SendMessage {
            to: "agnt:x".into(),
            parts: vec![
                Part::text("hi"),
                Part::File { file: FilePart { name: None, media_type: None, bytes: Some("!!".into()), uri: None } },
            ],
            ttl_seconds: Some(0),
            ..Default::default()
        };
        let errs = send_message(&m).unwrap_err();
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["to", "parts[1].file.bytes", "ttl_seconds"]);
    }

    #[test]
    fn refuses_nul_characters_in_any_field() {
        let m = SendMessage::text("agent:a", "a\0b");
        assert_eq!(send_message(&m).unwrap_err()[0].path, "parts[0].text");
        let mut m = SendMessage::text("agent:a", "ok");
        m.metadata = Some(serde_json::json!({"k": "x\u{0}y"}));
        assert_eq!(send_message(&m).unwrap_err()[0].path, "metadata.k");
        let mut m = SendMessage::text("agent:a", "ok");
        m.idempotency_key = Some("k\0".into());
        assert_eq!(send_message(&m).unwrap_err()[0].path, "idempotency_key");
        let card = RegisterAgent { name: "a".into(), version: Some("1\0".into()), ..Default::default() };
        assert_eq!(register_agent(&card).unwrap_err()[0].path, "version");
    }

    #[test]
    fn accepts_a_plain_text_message() {
        assert_eq!(send_message(&SendMessage::text("agent:a", "hi")), Ok(Address::Agent("a".into())));
    }

    #[test]
    fn tenant_names_are_1_to_100_of_the_agent_charset() {
        let t = |name: &str| create_tenant(&CreateTenant { name: name.into() });
        for ok in ["acme", "a", "acme-eu_2.prod", &"x".repeat(100)] {
            assert!(t(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(101)] {
            let e = t(bad).expect_err(bad);
            assert_eq!(e[0].path, "name", "{bad}");
        }
        assert_eq!(t("a\0").expect_err("nul")[0].path, "name");
    }
}
