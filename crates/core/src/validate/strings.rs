//! The one rule for every string a request carries, whatever its field: no NUL character.
//!
//! PostgreSQL `text` cannot hold NUL, and no agent protocol needs it, so it is refused on
//! every backend alike rather than stored by one and failed on by the other. The rule walks
//! a request through its `Serialize` implementation, so it reaches every string field, map
//! key and nested JSON value of the type, including fields added later, and names each
//! offender by its JSON path (`parts[0].text`, `metadata.trace`, `capabilities[1].tags[0]`).

use std::fmt;

use serde::Serialize;
use serde::ser;

use crate::api::FieldError;

/// What is said about a string that holds a NUL character.
pub const NUL_REFUSED: &str = "contains a NUL character (\\u0000), which is not allowed (the store cannot keep it); \
                               remove it, or send binary content base64-encoded in a `file` part";

/// Every string and map key in `value` that breaks the string rule, by JSON path; empty when
/// all are fine. Costs one pass over the strings and allocates only for map keys and errors.
pub fn strings<T: Serialize + ?Sized>(value: &T) -> Vec<FieldError> {
    let mut walk = Walk::default();
    // A value whose own `Serialize` fails has no strings we can see; the type's parser or
    // validator reports what is wrong with it.
    let _ = value.serialize(&mut walk);
    walk.errors
}

/// One step of a JSON path.
enum Seg {
    Field(&'static str),
    Index(usize),
    Key(String),
}

#[derive(Default)]
struct Walk {
    path: Vec<Seg>,
    errors: Vec<FieldError>,
    /// The key of the map entry being visited, set by `serialize_key`.
    key: Option<String>,
}

impl Walk {
    fn path(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
                Seg::Field(name) => push_name(&mut out, name),
                Seg::Key(key) => push_name(&mut out, key),
            }
        }
        out
    }

    fn check(&mut self, s: &str) {
        if s.contains('\0') {
            self.errors.push(FieldError { path: self.path(), message: NUL_REFUSED.to_owned() });
        }
    }

    fn nested<T: Serialize + ?Sized>(&mut self, seg: Seg, value: &T) -> Result<(), Never> {
        self.path.push(seg);
        let done = value.serialize(&mut *self);
        self.path.pop();
        done
    }
}

/// Appends `.name` (no dot at the start of the path), the NUL itself shown escaped.
fn push_name(out: &mut String, name: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(&name.replace('\0', "\\u0000"));
}

/// The walk never fails on its own; this carries a failing `Serialize` impl's error out.
#[derive(Debug)]
struct Never(String);

impl fmt::Display for Never {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Never(msg.to_string())
    }
}

impl<'a> ser::Serializer for &'a mut Walk {
    type Ok = ();
    type Error = Never;
    type SerializeSeq = Items<'a>;
    type SerializeTuple = Items<'a>;
    type SerializeTupleStruct = Items<'a>;
    type SerializeTupleVariant = Items<'a>;
    type SerializeMap = &'a mut Walk;
    type SerializeStruct = &'a mut Walk;
    type SerializeStructVariant = &'a mut Walk;

    fn serialize_str(self, v: &str) -> Result<(), Never> {
        self.check(v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Never> {
        self.check(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_bool(self, _: bool) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_f64(self, _: f64) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Never> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), Never> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Never> {
        self.nested(Seg::Field(variant), value)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Items<'a>, Never> {
        Ok(Items { walk: self, next: 0, variant: false })
    }
    fn serialize_tuple(self, _: usize) -> Result<Items<'a>, Never> {
        Ok(Items { walk: self, next: 0, variant: false })
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Items<'a>, Never> {
        Ok(Items { walk: self, next: 0, variant: false })
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Items<'a>, Never> {
        self.path.push(Seg::Field(variant));
        Ok(Items { walk: self, next: 0, variant: true })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<&'a mut Walk, Never> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<&'a mut Walk, Never> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<&'a mut Walk, Never> {
        // The variant's segment is taken off again in `SerializeStructVariant::end`.
        self.path.push(Seg::Field(variant));
        Ok(self)
    }
}

/// The elements of a sequence or tuple, each at its index.
struct Items<'a> {
    walk: &'a mut Walk,
    next: usize,
    /// A tuple variant pushed its name onto the path, to be taken off at the end.
    variant: bool,
}

impl Items<'_> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        let i = self.next;
        self.next += 1;
        self.walk.nested(Seg::Index(i), value)
    }

    fn finish(self) -> Result<(), Never> {
        if self.variant {
            self.walk.path.pop();
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Items<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.item(value)
    }
    fn end(self) -> Result<(), Never> {
        self.finish()
    }
}

impl ser::SerializeTuple for Items<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.item(value)
    }
    fn end(self) -> Result<(), Never> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Items<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.item(value)
    }
    fn end(self) -> Result<(), Never> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Items<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        self.item(value)
    }
    fn end(self) -> Result<(), Never> {
        self.finish()
    }
}

impl ser::SerializeMap for &mut Walk {
    type Ok = ();
    type Error = Never;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Never> {
        // Keys are strings in JSON; anything else (a number) is shown as JSON would spell it.
        let key = match serde_json::to_value(key) {
            Ok(serde_json::Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => return Err(Never(e.to_string())),
        };
        if key.contains('\0') {
            self.path.push(Seg::Key(key.clone()));
            self.errors.push(FieldError { path: self.path(), message: format!("is a key that {NUL_REFUSED}") });
            self.path.pop();
        }
        self.key = Some(key);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Never> {
        let key = self.key.take().unwrap_or_default();
        self.nested(Seg::Key(key), value)
    }
    fn end(self) -> Result<(), Never> {
        Ok(())
    }
}

impl ser::SerializeStruct for &mut Walk {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> Result<(), Never> {
        self.nested(Seg::Field(name), value)
    }
    fn end(self) -> Result<(), Never> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut Walk {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> Result<(), Never> {
        self.nested(Seg::Field(name), value)
    }
    fn end(self) -> Result<(), Never> {
        self.path.pop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::{Capability, FilePart, Part, RegisterAgent, SendMessage};

    fn paths<T: Serialize>(v: &T) -> Vec<String> {
        strings(v).into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn a_clean_request_passes() {
        let mut m = SendMessage::text("agent:a", "hello\tworld\u{1}");
        m.metadata = Some(json!({"trace": "x", "n": [1, "two", {"deep": true}]}));
        assert!(strings(&m).is_empty());
    }

    #[test]
    fn every_string_field_of_a_message_is_covered() {
        let m = SendMessage {
            to: "agent:a".into(),
            parts: vec![
                Part::text("ok"),
                Part::text("a\0b"),
                Part::Data { data: json!({"list": ["x", "y\0"]}) },
                Part::File {
                    file: FilePart {
                        name: Some("n\0".into()),
                        media_type: None,
                        bytes: None,
                        uri: Some("u:\0".into()),
                    },
                },
            ],
            conversation_id: Some("\0c".into()),
            correlation_id: Some("r\0".into()),
            in_reply_to: Some("\0".into()),
            idempotency_key: Some("k\0".into()),
            ttl_seconds: None,
            metadata: Some(json!({"k": "x\0y"})),
            // Not strings: the enums and the flag cannot carry a NUL.
            priority: None,
            require_active: None,
            kind: None,
            signature: Some(crate::api::MessageSignature { key_id: "pk\0".into(), sig: "s".into() }),
        };
        assert_eq!(
            paths(&m),
            [
                "parts[1].text",
                "parts[2].data.list[1]",
                "parts[3].file.name",
                "parts[3].file.uri",
                "conversation_id",
                "correlation_id",
                "in_reply_to",
                "idempotency_key",
                "metadata.k",
                "signature.key_id",
            ]
        );
    }

    #[test]
    fn every_string_field_of_an_agent_card_is_covered() {
        let card = RegisterAgent {
            name: "a".into(),
            description: Some("d\0".into()),
            version: Some("1\0".into()),
            capabilities: vec![Capability {
                name: "c".into(),
                description: Some("\0".into()),
                tags: vec!["t".into(), "t\0".into()],
                examples: vec!["e\0".into()],
                input_schema: Some(json!({"title": "\0"})),
                output_schema: None,
                output_schema_mode: None,
                reassign_on_timeout: None,
            }],
            metadata: Some(json!({"owner": "\0"})),
            ..Default::default()
        };
        assert_eq!(
            paths(&card),
            [
                "description",
                "version",
                "capabilities[0].description",
                "capabilities[0].tags[1]",
                "capabilities[0].examples[0]",
                "capabilities[0].input_schema.title",
                "metadata.owner",
            ]
        );
    }

    #[test]
    fn a_key_with_nul_is_named_escaped() {
        let v = json!({"meta": {"a\u{0}b": 1}});
        let errs = strings(&v);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "meta.a\\u0000b");
        assert!(errs[0].message.starts_with("is a key that contains a NUL"), "{}", errs[0].message);
    }

    #[test]
    fn the_message_says_what_to_do() {
        let errs = strings(&json!(["\0"]));
        assert_eq!(errs[0].path, "[0]");
        assert!(errs[0].message.contains("\\u0000") && errs[0].message.contains("remove it"));
    }
}
