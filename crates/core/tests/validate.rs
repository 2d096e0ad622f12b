//! The validation rules the published OpenAPI document states (`crates/core/src/api.rs`:
//! `min_length`/`max_length`, `minimum`/`maximum`, patterns), each pinned at its boundary:
//! the last value accepted and the first refused, with the field's JSON path. Found missing by
//! `cargo mutants` (docs/testing.md): the unit tests checked the paths of a few bad fields,
//! not where each limit lies.

use serde_json::json;
use switchboard_core::Address;
use switchboard_core::api::{FilePart, Part, RegisterAgent, SendMessage};
use switchboard_core::validate::{MAX_KEY_LEN, MAX_TTL_SECONDS, register_agent, send_message};

/// The paths of the fields `send_message` refuses (empty when it accepts).
fn send_errors(m: &SendMessage) -> Vec<String> {
    match send_message(m) {
        Ok(_) => vec![],
        Err(errors) => {
            for e in &errors {
                assert!(!e.message.is_empty(), "{}: a refusal says what to do", e.path);
            }
            errors.into_iter().map(|e| e.path).collect()
        }
    }
}

fn card(value: serde_json::Value) -> RegisterAgent {
    serde_json::from_value(value).expect("a card")
}

fn card_errors(value: serde_json::Value) -> Vec<String> {
    match register_agent(&card(value)) {
        Ok(()) => vec![],
        Err(errors) => {
            for e in &errors {
                assert!(!e.message.is_empty(), "{}: a refusal says what to do", e.path);
            }
            errors.into_iter().map(|e| e.path).collect()
        }
    }
}

fn file(bytes: Option<&str>, uri: Option<&str>) -> Part {
    Part::File {
        file: FilePart { name: None, media_type: None, bytes: bytes.map(Into::into), uri: uri.map(Into::into) },
    }
}

#[test]
fn the_documented_limits_are_the_constants() {
    // OpenAPI: `ttl_seconds` minimum 1, maximum 2592000; keys and ids 1 to 256 characters.
    assert_eq!(MAX_TTL_SECONDS, 2_592_000);
    assert_eq!(MAX_KEY_LEN, 256);
}

#[test]
fn a_valid_message_gives_its_parsed_address() {
    let m = SendMessage::text("capability:translate", "hi");
    assert_eq!(send_message(&m), Ok(Address::Capability { name: "translate".into(), all: false }));
    let m = SendMessage::text("agent:a", "hi");
    assert_eq!(send_message(&m), Ok(Address::Agent("a".into())));
}

#[test]
fn keys_and_ids_are_1_to_256_characters() {
    type Setter = fn(&mut SendMessage, Option<String>);
    let fields: [(&str, Setter); 4] = [
        ("conversation_id", |m, v| m.conversation_id = v),
        ("correlation_id", |m, v| m.correlation_id = v),
        ("in_reply_to", |m, v| m.in_reply_to = v),
        ("idempotency_key", |m, v| m.idempotency_key = v),
    ];
    for (path, set) in fields {
        for (value, refused) in
            [("".to_owned(), true), ("k".into(), false), ("k".repeat(256), false), ("k".repeat(257), true)]
        {
            let mut m = SendMessage::text("agent:a", "hi");
            let len = value.len();
            set(&mut m, Some(value));
            let want: Vec<String> = if refused { vec![path.into()] } else { vec![] };
            assert_eq!(send_errors(&m), want, "{path} of {len} characters");
        }
    }
}

#[test]
fn ttl_is_1_second_to_30_days() {
    for (ttl, refused) in [(0, true), (1, false), (MAX_TTL_SECONDS, false), (MAX_TTL_SECONDS + 1, true)] {
        let mut m = SendMessage::text("agent:a", "hi");
        m.ttl_seconds = Some(ttl);
        let want: Vec<&str> = if refused { vec!["ttl_seconds"] } else { vec![] };
        assert_eq!(send_errors(&m), want, "ttl_seconds {ttl}");
    }
}

#[test]
fn a_message_needs_a_part_and_an_object_for_metadata() {
    let mut m = SendMessage::text("agent:a", "hi");
    m.parts.clear();
    assert_eq!(send_errors(&m), ["parts"]);
    let mut m = SendMessage::text("agent:a", "hi");
    m.metadata = Some(json!(["not", "an", "object"]));
    assert_eq!(send_errors(&m), ["metadata"]);
    m.metadata = Some(json!({"k": "v"}));
    assert_eq!(send_errors(&m), Vec::<String>::new());
}

#[test]
fn a_file_part_has_exactly_one_of_base64_bytes_or_an_absolute_uri() {
    let cases = [
        (file(Some("aGk="), None), vec![]),
        (file(Some("not base64!"), None), vec!["parts[0].file.bytes"]),
        (file(None, Some("https://example.com/f.pdf")), vec![]),
        (file(None, Some("f.pdf")), vec!["parts[0].file.uri"]),
        (file(Some("aGk="), Some("https://example.com/f.pdf")), vec!["parts[0].file"]),
        (file(None, None), vec!["parts[0].file"]),
    ];
    for (part, want) in cases {
        let m = SendMessage { to: "agent:a".into(), parts: vec![part.clone()], ..Default::default() };
        assert_eq!(send_errors(&m), want, "{part:?}");
    }
}

#[test]
fn a_bad_address_alone_is_refused_with_its_path() {
    let m = SendMessage::text("nowhere", "hi");
    assert_eq!(send_errors(&m), ["to"]);
}

#[test]
fn agent_and_capability_names_are_1_to_200_letters_digits_or_dashes_dots_underscores() {
    let ok = |name: &str| card_errors(json!({"name": name})).is_empty();
    assert!(ok("a"));
    assert!(ok("Agent-1_v2.0"));
    assert!(ok(&"n".repeat(200)));
    assert!(!ok(""));
    assert!(!ok(&"n".repeat(201)));
    for bad in ["a b", "a/b", "a@b", "é"] {
        assert!(!ok(bad), "{bad:?}");
    }
    assert_eq!(card_errors(json!({"name": "a", "capabilities": [{"name": "sum.v1"}]})), Vec::<String>::new());
    assert_eq!(card_errors(json!({"name": "a", "capabilities": [{"name": "a b"}]})), ["capabilities[0].name"]);
    assert_eq!(
        card_errors(json!({"name": "a", "capabilities": [{"name": "x"}, {"name": "y"}, {"name": "x"}]})),
        ["capabilities[2].name"],
        "a capability listed twice is named where it repeats"
    );
}

#[test]
fn an_endpoint_is_an_http_or_https_url() {
    for (endpoint, refused) in [
        ("http://example.com/hook", false),
        ("https://example.com/hook", false),
        ("ftp://example.com", true),
        ("example.com", true),
    ] {
        let want: Vec<&str> = if refused { vec!["endpoint"] } else { vec![] };
        assert_eq!(card_errors(json!({"name": "a", "endpoint": endpoint})), want, "{endpoint}");
    }
}

#[test]
fn capability_schemas_are_json_schemas_and_metadata_an_object() {
    for (schema, refused) in
        [(json!({"type": "object"}), false), (json!(true), false), (json!("string"), true), (json!(3), true)]
    {
        for field in ["input_schema", "output_schema"] {
            let errors = card_errors(json!({"name": "a", "capabilities": [{"name": "c", field: schema}]}));
            let want: Vec<String> = if refused { vec![format!("capabilities[0].{field}")] } else { vec![] };
            assert_eq!(errors, want, "{field}: {schema}");
        }
    }
    assert_eq!(card_errors(json!({"name": "a", "metadata": [1]})), ["metadata"]);
    assert_eq!(card_errors(json!({"name": "a", "metadata": {"team": "x"}})), Vec::<String>::new());
}

/// The string rule (no NUL anywhere in a request) walks a type through `Serialize`, so that
/// it covers "fields added later". The request types of today use only structs, options,
/// sequences, maps and internally tagged enums; a field added later may be a typed id (a
/// newtype), a char, a tuple or an externally tagged enum. Each shape is walked here, and a
/// field after each one still gets its own path (the walk takes the variant's name off
/// again).
#[test]
fn the_string_rule_reaches_every_serde_shape() {
    use serde::Serialize;
    use switchboard_core::validate::strings;

    #[derive(Serialize)]
    struct Id(String);
    #[derive(Serialize)]
    struct Pair(String, String);
    #[derive(Serialize)]
    enum Shape {
        Newtype(String),
        Tuple(String, String),
        Struct { inner: String },
    }
    #[derive(Serialize)]
    struct Request {
        id: Id,
        letter: char,
        tuple: (String, String),
        pair: Pair,
        newtype: Shape,
        after_newtype: String,
        tuple_variant: Shape,
        after_tuple_variant: String,
        struct_variant: Shape,
        after_struct_variant: String,
    }
    let r = Request {
        id: Id("i\0".into()),
        letter: '\0',
        tuple: ("ok".into(), "t\0".into()),
        pair: Pair("p\0".into(), "ok".into()),
        newtype: Shape::Newtype("n\0".into()),
        after_newtype: "\0".into(),
        tuple_variant: Shape::Tuple("ok".into(), "v\0".into()),
        after_tuple_variant: "\0".into(),
        struct_variant: Shape::Struct { inner: "s\0".into() },
        after_struct_variant: "\0".into(),
    };
    let paths: Vec<String> = strings(&r).into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        [
            "id",
            "letter",
            "tuple[1]",
            "pair[0]",
            "newtype.Newtype",
            "after_newtype",
            "tuple_variant.Tuple[1]",
            "after_tuple_variant",
            "struct_variant.Struct.inner",
            "after_struct_variant",
        ]
    );
}
