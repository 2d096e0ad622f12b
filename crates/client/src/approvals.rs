//! Approvals: ask, list, show, decide, cancel.

use reqwest::Method;
use switchboard_core::api::{ApprovalEnvelope, ApprovalList, CreateApproval, DecideApproval};

use super::{Client, Result, path_segment, urlencode};

impl Client {
    /// Asks people for an approval; the request is delivered to every decider.
    pub async fn create_approval(&self, req: &CreateApproval) -> Result<ApprovalEnvelope> {
        self.call(Method::POST, "/v1/approvals", Some(req)).await
    }

    /// A page of the approvals the caller may see, newest first, optionally in one state.
    pub async fn list_approvals(
        &self,
        state: Option<&str>,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ApprovalList> {
        let mut q = Vec::new();
        if let Some(s) = state {
            q.push(format!("state={}", urlencode(s)));
        }
        if let Some(c) = cursor {
            q.push(format!("cursor={}", urlencode(c)));
        }
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        let path = if q.is_empty() { "/v1/approvals".to_owned() } else { format!("/v1/approvals?{}", q.join("&")) };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn get_approval(&self, id: &str) -> Result<ApprovalEnvelope> {
        self.call::<(), _>(Method::GET, &format!("/v1/approvals/{}", path_segment(id)), None).await
    }

    /// Answers an approval as one of its deciders.
    pub async fn decide_approval(&self, id: &str, req: &DecideApproval) -> Result<ApprovalEnvelope> {
        self.call(Method::POST, &format!("/v1/approvals/{}/decide", path_segment(id)), Some(req)).await
    }

    /// Cancels an approval the caller asked for.
    pub async fn cancel_approval(&self, id: &str) -> Result<ApprovalEnvelope> {
        self.call::<(), _>(Method::POST, &format!("/v1/approvals/{}/cancel", path_segment(id)), None).await
    }
}
