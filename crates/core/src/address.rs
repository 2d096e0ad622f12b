//! Addresses: where a message goes (`agent:<id>`, `capability:<name>?all`, …).

use std::fmt;
use std::str::FromStr;

/// A parsed recipient address. See DESIGN.md, "Concepts → Address".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// `agent:<id>`: one registered agent.
    Agent(String),
    /// `user:<id>`: a person.
    User(String),
    /// `capability:<name>` (anycast) or `capability:<name>?all` (broadcast).
    Capability { name: String, all: bool },
    /// `topic:<name>`: every subscriber of a topic.
    Topic(String),
    /// `conversation:<id>`: every participant except the sender.
    Conversation(String),
    /// `auto`: the hub picks the capability from the text.
    Auto,
}

/// Why an address string could not be parsed; the text is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddressError(String);

const MAX_NAME: usize = 200;

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '@'))
}

/// A topic name is tokens separated by `.`, none of them empty, so that the wildcard
/// subscriptions to come (`orders.*` one token, `orders.>` the rest) have tokens to match;
/// and, since names may hold `/` and travel in URL paths, no `/`-separated segment is `.` or
/// `..`, which URL resolvers would rewrite.
fn valid_topic(s: &str) -> bool {
    s.split('.').all(|token| !token.is_empty()) && s.split('/').all(|seg| seg != "." && seg != "..")
}

/// Checks the name of an address of this `kind` (e.g. a topic name taken from a URL), so
/// that everything named in an address follows one rule and is refused with one message.
pub fn check_name(kind: &str, name: &str) -> Result<(), AddressError> {
    let shown = name.replace('\0', "\\u0000");
    if !valid_name(name) {
        return Err(AddressError(format!(
            "`{shown}` is not a valid {kind} name: use 1 to {MAX_NAME} letters, digits or `-_./@`"
        )));
    }
    if kind == "topic" && !valid_topic(name) {
        return Err(AddressError(format!(
            "`{shown}` is not a valid topic name: a topic name is tokens separated by single dots \
             (`orders.eu`), with no empty token and no `.` or `..` between slashes"
        )));
    }
    Ok(())
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(Address::Auto);
        }
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(AddressError(format!(
                "`{s}` is not an address; use `agent:<id>`, `user:<id>`, `capability:<name>`, \
                 `topic:<name>`, `conversation:<id>` or `auto`"
            )));
        };
        let (name, query) = match rest.split_once('?') {
            Some((n, q)) => (n, Some(q)),
            None => (rest, None),
        };
        check_name(kind, name)?;
        let name = name.to_owned();
        let addr = match (kind, query) {
            ("agent", None) => Address::Agent(name),
            ("user", None) => Address::User(name),
            ("capability", None) => Address::Capability { name, all: false },
            ("capability", Some("all")) => Address::Capability { name, all: true },
            ("topic", None) => Address::Topic(name),
            ("conversation", None) => Address::Conversation(name),
            (_, Some(q)) if matches!(kind, "agent" | "user" | "capability" | "topic" | "conversation") => {
                return Err(AddressError(format!(
                    "`?{q}` is not understood on a {kind} address; only `capability:<name>?all` takes a suffix"
                )));
            }
            _ => {
                return Err(AddressError(format!(
                    "unknown address kind `{kind}`; use agent, user, capability, topic, conversation or auto"
                )));
            }
        };
        Ok(addr)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Agent(id) => write!(f, "agent:{id}"),
            Address::User(id) => write!(f, "user:{id}"),
            Address::Capability { name, all: false } => write!(f, "capability:{name}"),
            Address::Capability { name, all: true } => write!(f, "capability:{name}?all"),
            Address::Topic(t) => write!(f, "topic:{t}"),
            Address::Conversation(c) => write!(f, "conversation:{c}"),
            Address::Auto => f.write_str("auto"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_kind() {
        for s in [
            "agent:0192",
            "user:ann",
            "capability:translate",
            "capability:translate?all",
            "topic:alerts.eu",
            "conversation:c-1",
            "auto",
        ] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn topic_names_follow_the_address_rule() {
        assert!(check_name("topic", "alerts/eu.west@v2").is_ok());
        let e = check_name("topic", "has space").unwrap_err();
        assert!(e.to_string().contains("not a valid topic name"), "{e}");
        assert!(check_name("topic", "").is_err());
        assert!(check_name("topic", &"x".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn a_topic_name_is_dot_separated_tokens_none_empty() {
        for ok in ["orders", "orders.eu", "a.b.c", "alerts/eu.west", "v1.2/x", "a/b/c", "a/.b", "a./b"] {
            assert!(check_name("topic", ok).is_ok(), "{ok}");
        }
        for bad in [".", "..", "...", ".orders", "orders.", "orders..eu", "a/./b", "a/../b", "../x", "x/..", "./x"] {
            let e = check_name("topic", bad).unwrap_err();
            assert!(e.to_string().contains("tokens separated by single dots"), "{bad}: {e}");
            assert!(format!("topic:{bad}").parse::<Address>().is_err(), "{bad} as an address");
        }
        // The token rule is the topics': other names keep the plain rule.
        assert!(check_name("agent", "..").is_ok());
    }

    #[test]
    fn a_nul_in_a_name_is_refused_and_shown_escaped() {
        let e = check_name("topic", "a\0b").unwrap_err().to_string();
        assert!(e.contains("a\\u0000b") && !e.contains('\0'), "{e}");
    }

    #[test]
    fn refuses_unknown_kind_and_suffix() {
        assert!("robot:x".parse::<Address>().is_err());
        assert!("agent:x?all".parse::<Address>().is_err());
        assert!("agent:".parse::<Address>().is_err());
        assert!("agent x".parse::<Address>().is_err());
    }
}
