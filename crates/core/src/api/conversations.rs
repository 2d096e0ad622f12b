//! Conversations: several agents and people sharing one history in one total order.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{FieldError, Message};
use crate::Recipient;

/// Most participants a conversation holds.
pub const MAX_PARTICIPANTS: usize = 1000;
/// Longest conversation title, in characters.
pub const MAX_TITLE: usize = 200;

/// `POST /v1/conversations`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    /// 1 to 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub title: Option<String>,
    /// `agent:<id>` and `user:<id>` addresses of the tenant. The creator, when an agent or a
    /// person, takes part without being listed.
    #[schema(max_items = 1000)]
    pub participants: Vec<String>,
}

/// One participant and how far it has read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Participant {
    /// `agent:<id>` or `user:<id>`.
    pub address: String,
    /// The `seq` of the last message it marked read (0: none).
    pub read_up_to: i64,
    #[schema(format = DateTime)]
    pub joined_at: String,
}

/// A conversation and its participants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Conversation {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Who created it: `agent:<id>`, `user:<id>` or `admin`.
    pub created_by: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The `seq` of its latest message, which is also how many messages it holds (0: none).
    pub last_seq: i64,
    pub participants: Vec<Participant>,
    /// For a participant calling: the messages after its read marker that others sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<i64>,
}

/// Answer to `POST /v1/conversations`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationCreated {
    pub conversation: Conversation,
}

/// `GET /v1/conversations`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationList {
    pub conversations: Vec<Conversation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A message of a conversation's history, with its place in the conversation's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConversationMessage {
    /// 1, 2, 3, … without gaps: the conversation's one total order.
    pub seq: i64,
    #[serde(flatten)]
    pub message: Message,
}

/// `GET /v1/conversations/{id}/messages`, in `seq` order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConversationHistory {
    pub messages: Vec<ConversationMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/conversations/{id}/read`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// A `seq` of the conversation (1 to its `last_seq`): every message up to it is read.
    /// A marker never moves back: a lower value leaves it where it is.
    #[schema(minimum = 1)]
    pub up_to: i64,
}

/// The caller's read marker after `POST /v1/conversations/{id}/read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReadMarker {
    pub conversation_id: String,
    pub participant: String,
    pub read_up_to: i64,
    /// Messages after the marker that others sent.
    pub unread: i64,
}

/// `PUT /v1/conversations/{id}/status`: what the caller is doing in the conversation, shown
/// to the people in it ("summarizing…") until it expires or is replaced or cleared.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutStatus {
    /// 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub text: String,
    /// How long it holds unless replaced (1 to 3600 seconds; default 60), so that no
    /// status outlives the work it describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3600)]
    pub expires_in_seconds: Option<u32>,
}

/// A participant's status, as set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ParticipantStatus {
    pub conversation_id: String,
    pub participant: String,
    pub text: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// Checks a create request: the title, and each participant is an `agent:` or `user:`
/// address, listed once. Returns the participants parsed, or every bad field.
pub fn check_create(req: &CreateConversation) -> Result<Vec<Recipient>, Vec<FieldError>> {
    let mut errors = Vec::new();
    if let Some(t) = &req.title
        && (t.is_empty() || t.chars().count() > MAX_TITLE)
    {
        errors.push(FieldError { path: "title".into(), message: format!("must be 1 to {MAX_TITLE} characters") });
    }
    if req.participants.len() > MAX_PARTICIPANTS {
        errors.push(FieldError {
            path: "participants".into(),
            message: format!("a conversation holds at most {MAX_PARTICIPANTS} participants"),
        });
    }
    let mut parsed: Vec<Recipient> = Vec::with_capacity(req.participants.len());
    for (i, p) in req.participants.iter().enumerate() {
        match p.parse::<Recipient>() {
            Ok(r) if parsed.contains(&r) => errors
                .push(FieldError { path: format!("participants[{i}]"), message: format!("`{p}` is listed twice") }),
            Ok(r) => parsed.push(r),
            Err(e) => errors.push(FieldError { path: format!("participants[{i}]"), message: e.to_string() }),
        }
    }
    if errors.is_empty() { Ok(parsed) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_create_names_each_bad_participant() {
        let req = CreateConversation {
            title: Some(String::new()),
            participants: vec!["agent:a".into(), "topic:x".into(), "agent:a".into()],
        };
        let paths: Vec<String> = check_create(&req).unwrap_err().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["title", "participants[1]", "participants[2]"]);
    }

    #[test]
    fn check_create_parses_agents_and_people() {
        let req = CreateConversation { title: None, participants: vec!["agent:a".into(), "user:u".into()] };
        assert_eq!(check_create(&req).unwrap().len(), 2);
    }
}
