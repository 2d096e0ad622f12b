//! Who is acting: the principal a token stands for.
//!
//! Every request acts as one, and every change the hub makes is made by one (the domain layer
//! passes it down to the store, so that an audit record can be written with the change).

use crate::address::Recipient;
use crate::ids::{AgentId, TenantId, UserId};

/// Who a token belongs to, inside its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The operator of the platform (the bootstrap admin token, stored as `operator`): it
    /// administers the default tenant as its admin does, and alone creates and lists tenants.
    Operator,
    /// The tenant's administrator.
    Admin,
    /// A registered agent.
    Agent(AgentId),
    /// A person (not produced by authentication yet).
    User(UserId),
}

impl PrincipalKind {
    /// The kind a token's stored principal names (`operator`, `admin`, `agent:<id>`,
    /// `user:<id>`); `None` for text no hub writes.
    pub fn from_stored(s: &str) -> Option<PrincipalKind> {
        match s {
            "operator" => return Some(PrincipalKind::Operator),
            "admin" => return Some(PrincipalKind::Admin),
            _ => {}
        }
        match s.parse::<Recipient>().ok()? {
            Recipient::Agent(id) => Some(PrincipalKind::Agent(id)),
            Recipient::User(id) => Some(PrincipalKind::User(id)),
        }
    }
}

/// An authenticated caller: a tenant and who inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub kind: PrincipalKind,
}

impl Principal {
    /// Whether it administers its tenant (the tenant admin, or the operator).
    pub fn is_admin(&self) -> bool {
        matches!(self.kind, PrincipalKind::Admin | PrincipalKind::Operator)
    }

    /// Whether it is the platform operator (who may create and list tenants).
    pub fn is_operator(&self) -> bool {
        matches!(self.kind, PrincipalKind::Operator)
    }

    /// The agent it is, if it is one.
    pub fn agent(&self) -> Option<&AgentId> {
        match &self.kind {
            PrincipalKind::Agent(id) => Some(id),
            _ => None,
        }
    }

    /// What messages from it carry in `from`, and the sender idempotency keys are scoped by:
    /// `agent:<id>`, `user:<id>`, or `admin` (the operator too, as it acts as the admin).
    pub fn sender(&self) -> String {
        match &self.kind {
            PrincipalKind::Operator | PrincipalKind::Admin => "admin".to_owned(),
            PrincipalKind::Agent(id) => Recipient::agent_text(id),
            PrincipalKind::User(id) => Recipient::user_text(id),
        }
    }

    /// Where deliveries to it are held: agents and people have an inbox, admins do not.
    pub fn recipient(&self) -> Option<Recipient> {
        match &self.kind {
            PrincipalKind::Agent(id) => Some(Recipient::Agent(id.clone())),
            PrincipalKind::User(id) => Some(Recipient::User(id.clone())),
            PrincipalKind::Operator | PrincipalKind::Admin => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: PrincipalKind) -> Principal {
        Principal { tenant: TenantId::default_tenant(), kind }
    }

    #[test]
    fn senders_and_recipients_are_addresses() {
        let agent = p(PrincipalKind::Agent(AgentId::from("a1")));
        assert_eq!(agent.sender(), "agent:a1");
        assert_eq!(agent.recipient().map(|r| r.to_string()).as_deref(), Some("agent:a1"));
        let user = p(PrincipalKind::User(UserId::from("ann")));
        assert_eq!(user.sender(), "user:ann");
        assert_eq!(user.recipient(), Some(Recipient::User(UserId::from("ann"))));
        for admin in [PrincipalKind::Admin, PrincipalKind::Operator] {
            let admin = p(admin);
            assert_eq!(admin.sender(), "admin");
            assert!(admin.is_admin() && admin.recipient().is_none() && admin.agent().is_none());
        }
        assert!(p(PrincipalKind::Operator).is_operator() && !p(PrincipalKind::Admin).is_operator());
        assert!(!agent.is_admin() && !user.is_admin());
    }

    #[test]
    fn stored_principals_are_read_back() {
        assert_eq!(PrincipalKind::from_stored("admin"), Some(PrincipalKind::Admin));
        assert_eq!(PrincipalKind::from_stored("operator"), Some(PrincipalKind::Operator));
        assert_eq!(PrincipalKind::from_stored("agent:a1"), Some(PrincipalKind::Agent(AgentId::from("a1"))));
        assert_eq!(PrincipalKind::from_stored("user:ann"), Some(PrincipalKind::User(UserId::from("ann"))));
        assert_eq!(PrincipalKind::from_stored("robot:x"), None);
    }
}
