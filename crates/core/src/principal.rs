//! Who is acting: the principal a token stands for.
//!
//! Every request acts as one, and every change the hub makes is made by one (the domain layer
//! passes it down to the store, so that an audit record can be written with the change).

use std::fmt;
use std::str::FromStr;

use crate::address::Recipient;
use crate::ids::{AgentId, TenantId, UserId};

/// A person's role in a tenant. What each may do is written in the README's "Security"
/// section; in short: `owner` everything, `admin` everything but managing owners, `member`
/// sends, reads its own inbox and conversations and manages its own tokens, `viewer` reads.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    /// The role's name on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Whether it administers the tenant (agents, users, policies, settings).
    pub fn administers(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a role; use one of owner, admin, member, viewer"))
    }
}

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
    /// A person, with the role it holds in the tenant (read from the user when its session or
    /// token is authenticated, so a changed role takes effect without a new login).
    User { id: UserId, role: Role },
}

impl PrincipalKind {
    /// The kind a token's stored principal names (`operator`, `admin`, `agent:<id>`,
    /// `user:<id>`); `None` for text no hub writes. A user's role is not part of the stored
    /// text: the store reads it from the user's row and passes it as `role`.
    pub fn from_stored(s: &str, role: Option<Role>) -> Option<PrincipalKind> {
        match s {
            "operator" => return Some(PrincipalKind::Operator),
            "admin" => return Some(PrincipalKind::Admin),
            _ => {}
        }
        match s.parse::<Recipient>().ok()? {
            Recipient::Agent(id) => Some(PrincipalKind::Agent(id)),
            Recipient::User(id) => Some(PrincipalKind::User { id, role: role? }),
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
    /// Whether it administers its tenant (the tenant admin, the operator, or a person whose
    /// role is `owner` or `admin`).
    pub fn is_admin(&self) -> bool {
        match &self.kind {
            PrincipalKind::Admin | PrincipalKind::Operator => true,
            PrincipalKind::User { role, .. } => role.administers(),
            PrincipalKind::Agent(_) => false,
        }
    }

    /// The person's role, if it is a person.
    pub fn role(&self) -> Option<Role> {
        match &self.kind {
            PrincipalKind::User { role, .. } => Some(*role),
            _ => None,
        }
    }

    /// Whether it may send messages: everyone but a `viewer`, who only reads.
    pub fn may_send(&self) -> bool {
        self.role() != Some(Role::Viewer)
    }

    /// The person it is, if it is one.
    pub fn user(&self) -> Option<&UserId> {
        match &self.kind {
            PrincipalKind::User { id, .. } => Some(id),
            _ => None,
        }
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
            PrincipalKind::User { id, .. } => Recipient::user_text(id),
        }
    }

    /// Where deliveries to it are held: agents and people have an inbox, admins do not.
    pub fn recipient(&self) -> Option<Recipient> {
        match &self.kind {
            PrincipalKind::Agent(id) => Some(Recipient::Agent(id.clone())),
            PrincipalKind::User { id, .. } => Some(Recipient::User(id.clone())),
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
        let user = p(PrincipalKind::User { id: UserId::from("ann"), role: Role::Member });
        assert_eq!(user.sender(), "user:ann");
        assert_eq!(user.recipient(), Some(Recipient::User(UserId::from("ann"))));
        for admin in [PrincipalKind::Admin, PrincipalKind::Operator] {
            let admin = p(admin);
            assert_eq!(admin.sender(), "admin");
            assert!(admin.is_admin() && admin.recipient().is_none() && admin.agent().is_none());
        }
        assert!(p(PrincipalKind::Operator).is_operator() && !p(PrincipalKind::Admin).is_operator());
        assert!(!agent.is_admin() && !user.is_admin());
        assert_eq!(user.role(), Some(Role::Member));
        let owner = p(PrincipalKind::User { id: UserId::from("bo"), role: Role::Owner });
        assert!(owner.is_admin() && !owner.is_operator());
    }

    #[test]
    fn stored_principals_are_read_back() {
        assert_eq!(PrincipalKind::from_stored("admin", None), Some(PrincipalKind::Admin));
        assert_eq!(PrincipalKind::from_stored("operator", None), Some(PrincipalKind::Operator));
        assert_eq!(PrincipalKind::from_stored("agent:a1", None), Some(PrincipalKind::Agent(AgentId::from("a1"))));
        assert_eq!(
            PrincipalKind::from_stored("user:ann", Some(Role::Viewer)),
            Some(PrincipalKind::User { id: UserId::from("ann"), role: Role::Viewer })
        );
        assert_eq!(PrincipalKind::from_stored("user:ann", None), None, "a user's token without the user's row");
        assert_eq!(PrincipalKind::from_stored("robot:x", None), None);
    }

    #[test]
    fn roles_read_back_and_refuse_unknown_names() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        assert!("root".parse::<Role>().unwrap_err().contains("owner, admin, member, viewer"));
        assert!(Role::Owner.administers() && Role::Admin.administers());
        assert!(!Role::Member.administers() && !Role::Viewer.administers());
    }
}
