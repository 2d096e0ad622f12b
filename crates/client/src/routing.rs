//! Groups of people and auto-routing: the groups `group:<name>` reaches, the tenant's
//! auto-routing settings, and a person's choice for a message waiting in triage.

use reqwest::Method;
use switchboard_core::api::{
    Group, GroupList, MessageRouted, PutGroup, PutRoutingSettings, RouteMessage, RoutingSettings,
};

use super::{Client, Result, urlencode};

impl Client {
    /// A page of the tenant's groups by name, after `cursor` (a `next_cursor`).
    pub async fn list_groups(&self, cursor: Option<&str>, limit: Option<usize>) -> Result<GroupList> {
        let mut q = Vec::new();
        if let Some(c) = cursor {
            q.push(format!("cursor={}", urlencode(c)));
        }
        if let Some(l) = limit {
            q.push(format!("limit={l}"));
        }
        let path = if q.is_empty() { "/v1/groups".to_owned() } else { format!("/v1/groups?{}", q.join("&")) };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn get_group(&self, name: &str) -> Result<Group> {
        self.call::<(), _>(Method::GET, &format!("/v1/groups/{}", urlencode(name)), None).await
    }

    /// Creates the group or replaces its description and members.
    pub async fn put_group(&self, name: &str, req: &PutGroup) -> Result<Group> {
        self.call(Method::PUT, &format!("/v1/groups/{}", urlencode(name)), Some(req)).await
    }

    pub async fn delete_group(&self, name: &str) -> Result<()> {
        self.call::<(), ()>(Method::DELETE, &format!("/v1/groups/{}", urlencode(name)), None).await
    }

    /// Adds a user to a group; answers the group as it is now.
    pub async fn add_group_member(&self, name: &str, user: &str) -> Result<Group> {
        let path = format!("/v1/groups/{}/members/{}", urlencode(name), urlencode(user));
        self.call::<(), _>(Method::PUT, &path, None).await
    }

    pub async fn remove_group_member(&self, name: &str, user: &str) -> Result<()> {
        let path = format!("/v1/groups/{}/members/{}", urlencode(name), urlencode(user));
        self.call::<(), ()>(Method::DELETE, &path, None).await
    }

    /// The tenant's auto-routing settings (the model's key is never shown).
    pub async fn routing_settings(&self) -> Result<RoutingSettings> {
        self.call::<(), _>(Method::GET, "/v1/routing/settings", None).await
    }

    /// Replaces the tenant's auto-routing settings.
    pub async fn put_routing_settings(&self, req: &PutRoutingSettings) -> Result<RoutingSettings> {
        self.call(Method::PUT, "/v1/routing/settings", Some(req)).await
    }

    /// Routes a message waiting in triage to a capability.
    pub async fn route_message(&self, id: &str, capability: &str) -> Result<MessageRouted> {
        let req = RouteMessage { capability: capability.to_owned() };
        self.call(Method::POST, &format!("/v1/messages/{}/route", urlencode(id)), Some(&req)).await
    }
}
