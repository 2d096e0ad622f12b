//! Addresses: where a message goes (`agent:<id>`, `capability:<name>?all`, …), and who holds
//! a delivery (a [`Recipient`]). The one parser and the one printer of both: no other code
//! spells `agent:` out.

use std::fmt;
use std::str::FromStr;

use crate::ids::{AgentId, ConversationId, UserId};

/// A parsed address: where a message goes. See DESIGN.md, "Concepts → Address".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// `agent:<id>`: one registered agent.
    Agent(AgentId),
    /// `user:<id>`: a person.
    User(UserId),
    /// `capability:<name>` (anycast) or `capability:<name>?all` (broadcast).
    Capability { name: String, all: bool },
    /// `topic:<name>`: every subscriber of a topic.
    Topic(String),
    /// `group:<name>`: every member of a group of people (one delivery per member).
    Group(String),
    /// `conversation:<id>`: every participant except the sender.
    Conversation(ConversationId),
    /// `auto`: the hub picks the capability from the text.
    Auto,
}

/// Who holds a delivery: an agent or a person. Its text (`agent:<id>`, `user:<id>`) is what
/// the store keeps in `deliveries.recipient`, what wake-ups are keyed by, and what a message's
/// `from` says of its sender.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    /// A registered agent.
    Agent(AgentId),
    /// A person.
    User(UserId),
}

impl Recipient {
    /// The agent, if the recipient is one.
    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            Recipient::Agent(id) => Some(id),
            Recipient::User(_) => None,
        }
    }

    /// The text of `Recipient::Agent(id)` without cloning the id: for the hot paths that
    /// hold an agent id by reference.
    pub fn agent_text(id: &AgentId) -> String {
        format!("agent:{id}")
    }

    /// The text of `Recipient::User(id)` without cloning the id.
    pub fn user_text(id: &UserId) -> String {
        format!("user:{id}")
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Agent(id) => write!(f, "agent:{id}"),
            Recipient::User(id) => write!(f, "user:{id}"),
        }
    }
}

impl FromStr for Recipient {
    type Err = AddressError;

    /// `agent:<id>` or `user:<id>`; any other address is not one recipient.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<Address>()? {
            Address::Agent(id) => Ok(Recipient::Agent(id)),
            Address::User(id) => Ok(Recipient::User(id)),
            _ => Err(AddressError(format!("`{s}` is not a recipient; use `agent:<id>` or `user:<id>`"))),
        }
    }
}

impl From<Recipient> for Address {
    fn from(r: Recipient) -> Address {
        match r {
            Recipient::Agent(id) => Address::Agent(id),
            Recipient::User(id) => Address::User(id),
        }
    }
}

impl AgentId {
    /// An agent id taken from a request (a path, a filter): the name rule of `agent:<id>`
    /// addresses, so that an id that could not be addressed is refused with the same words.
    pub fn parse(s: &str) -> Result<AgentId, AddressError> {
        check_name("agent", s)?;
        Ok(AgentId::from(s))
    }
}

/// Why an address string could not be parsed; the text is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddressError(pub(crate) String);

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

/// Most characters of a group name.
pub const MAX_GROUP_NAME: usize = 64;

/// A group name is short and safe in a URL path and a CLI argument: letters, digits, `-_.`,
/// starting with a letter or digit.
fn valid_group(s: &str) -> bool {
    s.len() <= MAX_GROUP_NAME
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
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
    if kind == "group" && !valid_group(name) {
        return Err(AddressError(format!(
            "`{shown}` is not a valid group name: use 1 to {MAX_GROUP_NAME} letters, digits or `-_.`, \
             starting with a letter or digit"
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
                 `topic:<name>`, `group:<name>`, `conversation:<id>` or `auto`"
            )));
        };
        let (name, query) = match rest.split_once('?') {
            Some((n, q)) => (n, Some(q)),
            None => (rest, None),
        };
        check_name(kind, name)?;
        let name = name.to_owned();
        let addr = match (kind, query) {
            ("agent", None) => Address::Agent(AgentId::from(name)),
            ("user", None) => Address::User(UserId::from(name)),
            ("capability", None) => Address::Capability { name, all: false },
            ("capability", Some("all")) => Address::Capability { name, all: true },
            ("topic", None) => Address::Topic(name),
            ("group", None) => Address::Group(name),
            ("conversation", None) => Address::Conversation(ConversationId::from(name)),
            (_, Some(q)) if matches!(kind, "agent" | "user" | "capability" | "topic" | "group" | "conversation") => {
                return Err(AddressError(format!(
                    "`?{q}` is not understood on a {kind} address; only `capability:<name>?all` takes a suffix"
                )));
            }
            _ => {
                return Err(AddressError(format!(
                    "unknown address kind `{kind}`; use agent, user, capability, topic, group, conversation or auto"
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
            Address::Group(g) => write!(f, "group:{g}"),
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
            "group:triage",
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
    fn group_names_are_short_and_path_safe() {
        for ok in ["triage", "ops-eu", "a", "team_1.b"] {
            assert!(format!("group:{ok}").parse::<Address>().is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".x", "a/b", "a@b", &"g".repeat(MAX_GROUP_NAME + 1)] {
            assert!(format!("group:{bad}").parse::<Address>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_nul_in_a_name_is_refused_and_shown_escaped() {
        let e = check_name("topic", "a\0b").unwrap_err().to_string();
        assert!(e.contains("a\\u0000b") && !e.contains('\0'), "{e}");
    }

    #[test]
    fn recipients_parse_and_print_as_addresses_do() {
        for s in ["agent:0192", "user:ann"] {
            let r: Recipient = s.parse().unwrap();
            assert_eq!(r.to_string(), s);
            assert_eq!(Address::from(r).to_string(), s);
        }
        assert_eq!(Recipient::agent_text(&AgentId::from("0192")), "agent:0192");
        assert_eq!(Recipient::user_text(&UserId::from("ann")), "user:ann");
        for not_one in ["topic:t", "capability:c", "auto", "agent:", "admin"] {
            assert!(not_one.parse::<Recipient>().is_err(), "{not_one}");
        }
    }

    #[test]
    fn agent_ids_from_requests_follow_the_address_rule() {
        assert_eq!(AgentId::parse("0192-ab").unwrap(), "0192-ab");
        assert!(AgentId::parse("").is_err());
        assert!(AgentId::parse("a b").is_err());
        assert!(AgentId::parse("a\0b").is_err());
    }

    #[test]
    fn refuses_unknown_kind_and_suffix() {
        assert!("robot:x".parse::<Address>().is_err());
        assert!("agent:x?all".parse::<Address>().is_err());
        assert!("agent:".parse::<Address>().is_err());
        assert!("agent x".parse::<Address>().is_err());
    }
}
