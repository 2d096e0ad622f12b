//! Conversations: create, list, show, participants, history, read markers and the caller's
//! working status.

use reqwest::Method;
use switchboard_core::api::{
    Conversation, ConversationCreated, ConversationHistory, ConversationList, CreateConversation, MarkRead,
    ParticipantStatus, PutStatus, ReadMarker,
};

use super::{Client, Result, path_segment, urlencode};

/// Which page of a conversation's history to read.
#[derive(Debug, Clone, Default)]
pub struct HistoryOptions {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<usize>,
    /// Only this message and the replies to it, directly or through other replies.
    pub thread: Option<String>,
}

impl Client {
    /// Creates a conversation; the caller (an agent or a person) takes part.
    pub async fn create_conversation(&self, req: &CreateConversation) -> Result<ConversationCreated> {
        self.call(Method::POST, "/v1/conversations", Some(req)).await
    }

    /// A page of the conversations the caller takes part in (an admin: all of the tenant's).
    pub async fn list_conversations(&self, cursor: Option<&str>, limit: Option<usize>) -> Result<ConversationList> {
        let mut q = Vec::new();
        if let Some(c) = cursor {
            q.push(format!("cursor={}", urlencode(c)));
        }
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        let path =
            if q.is_empty() { "/v1/conversations".to_owned() } else { format!("/v1/conversations?{}", q.join("&")) };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn get_conversation(&self, id: &str) -> Result<Conversation> {
        self.call::<(), _>(Method::GET, &format!("/v1/conversations/{}", path_segment(id)), None).await
    }

    /// Adds a participant (`agent:<id>` or `user:<id>`); the conversation as it is then.
    pub async fn add_participant(&self, id: &str, address: &str) -> Result<Conversation> {
        let path = format!("/v1/conversations/{}/participants/{}", path_segment(id), path_segment(address));
        self.call::<(), _>(Method::PUT, &path, None).await
    }

    pub async fn remove_participant(&self, id: &str, address: &str) -> Result<()> {
        let path = format!("/v1/conversations/{}/participants/{}", path_segment(id), path_segment(address));
        self.call::<(), ()>(Method::DELETE, &path, None).await
    }

    /// A page of the history in the conversation's order (`seq`).
    pub async fn conversation_history(&self, id: &str, opts: &HistoryOptions) -> Result<ConversationHistory> {
        let mut q = Vec::new();
        if let Some(c) = &opts.cursor {
            q.push(format!("cursor={}", urlencode(c)));
        }
        if let Some(l) = opts.limit {
            q.push(format!("limit={l}"));
        }
        if let Some(t) = &opts.thread {
            q.push(format!("thread={}", urlencode(t)));
        }
        let mut path = format!("/v1/conversations/{}/messages", path_segment(id));
        if !q.is_empty() {
            path = format!("{path}?{}", q.join("&"));
        }
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Moves the caller's read marker forward to `up_to` (a `seq`).
    pub async fn mark_read(&self, id: &str, up_to: i64) -> Result<ReadMarker> {
        let path = format!("/v1/conversations/{}/read", path_segment(id));
        self.call(Method::POST, &path, Some(&MarkRead { up_to })).await
    }

    /// Shows the people in conversation `id` what the caller is doing ("summarizing…") for
    /// `expires_in_seconds` (default 60), until replaced or cleared.
    pub async fn set_status(&self, id: &str, text: &str, expires_in_seconds: Option<u32>) -> Result<ParticipantStatus> {
        let path = format!("/v1/conversations/{}/status", path_segment(id));
        let body = PutStatus { text: text.to_owned(), expires_in_seconds };
        self.call(Method::PUT, &path, Some(&body)).await
    }

    /// Clears the caller's status in conversation `id`.
    pub async fn clear_status(&self, id: &str) -> Result<()> {
        let path = format!("/v1/conversations/{}/status", path_segment(id));
        self.call::<(), ()>(Method::DELETE, &path, None).await
    }
}
