//! Typed identities: a tenant, an agent, a user, a conversation, a message.
//!
//! Each is a `String` underneath (ids are stored and sent as text), wrapped so that an agent
//! id cannot be passed where a tenant is meant, and so that how an id becomes an address
//! (`agent:<id>`) is written once, in [`crate::address`]. They serialize as plain strings.
//!
//! `From<String>` is for the store's row readers, the address parser and tests, which hold
//! ids that are already known to be well formed; an id taken from a request goes through
//! `parse` (see [`AgentId::parse`](crate::ids::AgentId::parse)) or through [`crate::Address`].

use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as text, for queries, logs and the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string, for a wire type that carries it as text.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id! {
    /// A tenant: the boundary no query crosses. Taken from the caller's token, never from a body.
    TenantId
}

id! {
    /// A registered agent (a UUIDv7 the hub assigned at registration).
    AgentId
}

id! {
    /// A person who works with agents (`user:<id>`); no user is registered yet.
    UserId
}

id! {
    /// A conversation (`conversation:<id>`); chosen by the sender.
    ConversationId
}

id! {
    /// A message (a UUIDv7 the hub assigned at accept).
    MessageId
}

impl TenantId {
    /// The tenant created on first start of an empty store.
    pub fn default_tenant() -> TenantId {
        TenantId::from(crate::DEFAULT_TENANT)
    }
}

// A `Default` that makes a fresh random id would surprise: `new` says it does.
#[allow(clippy::new_without_default)]
impl AgentId {
    /// A new agent id (UUIDv7), assigned at registration.
    pub fn new() -> AgentId {
        AgentId(crate::new_id().to_string())
    }
}

#[allow(clippy::new_without_default)]
impl MessageId {
    /// A new message id (UUIDv7), assigned at accept: time-ordered, so ids sort by age.
    pub fn new() -> MessageId {
        MessageId(crate::new_id().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_strings_on_the_wire() {
        let id = AgentId::from("0192");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"0192\"");
        assert_eq!(serde_json::from_str::<AgentId>("\"0192\"").unwrap(), id);
        assert_eq!(id.to_string(), "0192");
        assert_eq!(id, "0192");
    }

    #[test]
    fn new_ids_are_distinct_uuids() {
        let (a, b) = (MessageId::new(), MessageId::new());
        assert_ne!(a, b);
        assert!(uuid::Uuid::parse_str(a.as_str()).is_ok(), "{a}");
        assert!(uuid::Uuid::parse_str(AgentId::new().as_str()).is_ok());
    }
}
