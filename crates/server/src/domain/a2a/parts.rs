//! Parts between A2A and Switchboard. A Switchboard part is `text`, `data` or `file` (inline
//! base64 `bytes` or a `uri`); an A2A 1.0 part is one of `text`, `data`, `url` or `raw` with
//! `filename` and `mediaType` beside it, and a 0.3 part is tagged by `kind` (`text`, `data`,
//! `file` with `bytes` or `uri`, `name`, `mimeType`). Both generations are read; each is
//! written in its own shape. A part's own `metadata` is not kept.

use serde_json::{Map, Value, json};
use switchboard_core::api::{FilePart, Part};

use super::Dialect;

fn text_field(o: &Map<String, Value>, key: &str) -> Option<String> {
    o.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Reads one part, either generation; the error says what is wrong with it.
pub fn from_a2a(v: &Value) -> Result<Part, String> {
    let Some(o) = v.as_object() else { return Err("must be an object".into()) };
    if let Some(kind) = o.get("kind").and_then(Value::as_str) {
        return from_v03(kind, o);
    }
    if let Some(text) = o.get("text") {
        return text.as_str().map(Part::text).ok_or_else(|| "`text` must be a string".into());
    }
    if let Some(data) = o.get("data") {
        return Ok(Part::Data { data: data.clone() });
    }
    let name = text_field(o, "filename");
    let media_type = text_field(o, "mediaType").or_else(|| text_field(o, "media_type"));
    if let Some(url) = o.get("url") {
        let uri = url.as_str().ok_or("`url` must be a string")?.to_owned();
        return Ok(Part::File { file: FilePart { name, media_type, bytes: None, uri: Some(uri) } });
    }
    if let Some(raw) = o.get("raw") {
        let bytes = raw.as_str().ok_or("`raw` must be base64 text")?.to_owned();
        return Ok(Part::File { file: FilePart { name, media_type, bytes: Some(bytes), uri: None } });
    }
    Err("must carry one of `text`, `data`, `url` or `raw`".into())
}

fn from_v03(kind: &str, o: &Map<String, Value>) -> Result<Part, String> {
    match kind {
        "text" => text_field(o, "text").map(Part::text).ok_or_else(|| "a text part needs `text`, a string".into()),
        "data" => {
            o.get("data").cloned().map(|data| Part::Data { data }).ok_or_else(|| "a data part needs `data`".into())
        }
        "file" => {
            let f = o.get("file").and_then(Value::as_object).ok_or("a file part needs `file`, an object")?;
            Ok(Part::File {
                file: FilePart {
                    name: text_field(f, "name"),
                    media_type: text_field(f, "mimeType"),
                    bytes: text_field(f, "bytes"),
                    uri: text_field(f, "uri"),
                },
            })
        }
        other => Err(format!("`kind` `{other}` is not one of text, data, file")),
    }
}

/// Writes one part in the shape of `dialect`.
pub fn to_a2a(p: &Part, dialect: Dialect) -> Value {
    match (p, dialect) {
        (Part::Text { text }, Dialect::V10) => json!({ "text": text }),
        (Part::Text { text }, Dialect::V03) => json!({ "kind": "text", "text": text }),
        (Part::Data { data }, Dialect::V10) => json!({ "data": data }),
        (Part::Data { data }, Dialect::V03) => json!({ "kind": "data", "data": data }),
        (Part::File { file }, Dialect::V10) => {
            let mut o = Map::new();
            if let Some(uri) = &file.uri {
                o.insert("url".into(), json!(uri));
            } else {
                o.insert("raw".into(), json!(file.bytes.clone().unwrap_or_default()));
            }
            if let Some(n) = &file.name {
                o.insert("filename".into(), json!(n));
            }
            if let Some(m) = &file.media_type {
                o.insert("mediaType".into(), json!(m));
            }
            Value::Object(o)
        }
        (Part::File { file }, Dialect::V03) => {
            let mut f = Map::new();
            if let Some(uri) = &file.uri {
                f.insert("uri".into(), json!(uri));
            }
            if let Some(b) = &file.bytes {
                f.insert("bytes".into(), json!(b));
            }
            if let Some(n) = &file.name {
                f.insert("name".into(), json!(n));
            }
            if let Some(m) = &file.media_type {
                f.insert("mimeType".into(), json!(m));
            }
            json!({ "kind": "file", "file": f })
        }
        // A2A has no sealed part: it travels as data, opened by the client as Switchboard's.
        (Part::Sealed { sealed }, Dialect::V10) => json!({ "data": { "sealed": sealed } }),
        (Part::Sealed { sealed }, Dialect::V03) => json!({ "kind": "data", "data": { "sealed": sealed } }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_generations_read_and_round_trip() {
        for d in [Dialect::V10, Dialect::V03] {
            for p in [
                Part::text("hi"),
                Part::Data { data: json!({"a": 1}) },
                Part::File {
                    file: FilePart {
                        name: Some("a.txt".into()),
                        media_type: Some("text/plain".into()),
                        bytes: Some("aGk=".into()),
                        uri: None,
                    },
                },
                Part::File {
                    file: FilePart { name: None, media_type: None, bytes: None, uri: Some("https://x/y".into()) },
                },
            ] {
                assert_eq!(from_a2a(&to_a2a(&p, d)).unwrap(), p, "{d:?}");
            }
        }
        assert!(from_a2a(&json!({"kind": "video"})).is_err());
        assert!(from_a2a(&json!({"metadata": {}})).is_err());
    }
}
