//! Policies: a tenant's ordered allow/deny rules on who may send to which address and
//! subscribe to which topic. The wire form ([`PolicyRules`]), its validation into a compiled
//! [`Policy`], and the decision ([`Policy::decide`]); no I/O, so the server evaluates it in
//! memory on every send.
//!
//! First match wins. A tenant with no policy allows everything; a tenant with one (even an
//! empty list) denies what no rule matches. The admin token and the operator are never
//! subject to a policy (the server does not ask); agents and people are.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::address::{Address, check_name};
use crate::api::FieldError;
use crate::ids::{AgentId, ConversationId, UserId};
use crate::principal::{Principal, PrincipalKind, Role};

/// Most rules in one policy.
pub const MAX_RULES: usize = 1000;

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

/// What the principal is doing: sending a message to an address, or subscribing to a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Send,
    Subscribe,
}

/// One rule as written (`PUT /v1/policies`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A name for the rule, unique in the policy; refusals name it (else its index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 200)]
    pub id: Option<String>,
    /// Who: `agent:<id>`, `user:<id>`, `role:<owner|admin|member|viewer>`, `tag:<t>` (agents
    /// with a capability tagged `t`), `capability:<n>` (agents offering `n`), or `*`.
    pub from: String,
    /// Where: `agent:<id>`, `capability:<n>` (anycast and `?all`), `topic:<pattern>` (`*` one
    /// token, `>` the rest), `user:<id>`, `group:<g>`, `conversation:<id>`, or `*`.
    pub to: String,
    pub effect: Effect,
    /// The actions it covers (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<Action>>,
}

/// A tenant's policy (`GET`/`PUT /v1/policies`). `rules: null` is no policy: everything in
/// the tenant is allowed. A list, even empty, denies whatever no rule allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRules {
    /// The rules in order (first match wins), or `null` for no policy. Required.
    #[serde(deserialize_with = "Option::deserialize")]
    pub rules: Option<Vec<RuleSpec>>,
}

/// `POST /v1/policies:check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyCheck {
    /// The principal: `agent:<id>` or `user:<id>` (`admin` is never denied).
    pub from: String,
    /// The address (or, for `subscribe`, `topic:<name>`).
    pub to: String,
    /// Default `send`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// The rule that decided, as written, with its place in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DecidingRule {
    /// Its index in `rules`, from 0.
    pub index: usize,
    #[serde(flatten)]
    pub rule: RuleSpec,
}

/// The answer of `POST /v1/policies:check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyDecision {
    pub allowed: bool,
    /// The deciding rule, or `null` when the default decided (no policy: allowed; no rule
    /// matched: denied).
    pub rule: Option<DecidingRule>,
}

/// Who a rule's `from` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Any,
    Agent(AgentId),
    User(UserId),
    Role(Role),
    Tag(String),
    Capability(String),
}

/// What a rule's `to` covers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Any,
    Agent(AgentId),
    Capability(String),
    Topic(Vec<String>),
    User(UserId),
    Group(String),
    Conversation(ConversationId),
}

#[derive(Debug, Clone)]
struct Rule {
    from: Selector,
    to: Target,
    allow: bool,
    send: bool,
    subscribe: bool,
}

/// A validated policy, ready to decide in memory.
#[derive(Debug, Clone)]
pub struct Policy {
    specs: Vec<RuleSpec>,
    rules: Vec<Rule>,
    needs_traits: bool,
}

/// The principal asking, with what of it rules may select: a person's role (`None` when not
/// known), and for agents the names and tags of the capabilities it offers (read only when
/// [`Policy::needs_traits`]).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub principal: &'a Principal,
    pub role: Option<Role>,
    pub capabilities: &'a [String],
    pub tags: &'a [String],
}

/// How a request fared: allowed or not, and the index of the deciding rule (`None`: the
/// default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub rule: Option<usize>,
}

fn plain_name(kind: &str, s: &str) -> Result<String, String> {
    check_name(kind, s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

fn parse_selector(s: &str) -> Result<Selector, String> {
    if s == "*" {
        return Ok(Selector::Any);
    }
    let hint = "use `agent:<id>`, `user:<id>`, `role:<role>`, `tag:<tag>`, `capability:<name>` or `*`";
    let (kind, name) = s.split_once(':').ok_or_else(|| format!("`{s}` selects no principal; {hint}"))?;
    Ok(match kind {
        "agent" => Selector::Agent(AgentId::from(plain_name("agent", name)?)),
        "user" => Selector::User(UserId::from(plain_name("user", name)?)),
        "role" => Selector::Role(name.parse()?),
        "tag" => Selector::Tag(plain_name("tag", name)?),
        "capability" => Selector::Capability(plain_name("capability", name)?),
        _ => return Err(format!("unknown principal kind `{kind}`; {hint}")),
    })
}

/// A topic pattern: dot-separated tokens, each a name token, `*` (one token) or, last, `>`
/// (one or more tokens).
fn parse_pattern(p: &str) -> Result<Vec<String>, String> {
    let tokens: Vec<String> = p.split('.').map(str::to_owned).collect();
    let bad = || {
        format!(
            "`{p}` is not a topic pattern: use dot-separated tokens, each a name, `*` (one token) or, last, `>` (the rest)"
        )
    };
    for (i, t) in tokens.iter().enumerate() {
        match t.as_str() {
            "*" => {}
            ">" if i + 1 == tokens.len() => {}
            _ if !t.contains(['*', '>']) && check_name("topic", t).is_ok() => {}
            _ => return Err(bad()),
        }
    }
    Ok(tokens)
}

fn parse_target(s: &str) -> Result<Target, String> {
    if s == "*" {
        return Ok(Target::Any);
    }
    let hint = "use `agent:<id>`, `capability:<name>`, `topic:<pattern>`, `user:<id>`, `group:<name>`, \
                `conversation:<id>` or `*`";
    let (kind, name) = s.split_once(':').ok_or_else(|| format!("`{s}` is no address; {hint}"))?;
    Ok(match kind {
        "agent" => Target::Agent(AgentId::from(plain_name("agent", name)?)),
        "capability" => Target::Capability(plain_name("capability", name)?),
        "topic" => Target::Topic(parse_pattern(name)?),
        "user" => Target::User(UserId::from(plain_name("user", name)?)),
        "group" => Target::Group(plain_name("group", name)?),
        "conversation" => Target::Conversation(ConversationId::from(plain_name("conversation", name)?)),
        _ => return Err(format!("unknown address kind `{kind}`; {hint}")),
    })
}

/// Whether topic `name` matches the pattern's tokens (NATS rules). `name` may itself be a
/// subscription pattern: then it is whether the rule's pattern covers every subject the
/// subscription's does (a rule's `*` does not cover a subscription's `>`).
fn topic_matches(pattern: &[String], name: &str) -> bool {
    let mut tokens = name.split('.');
    for (i, p) in pattern.iter().enumerate() {
        if p == ">" {
            return i + 1 == pattern.len() && tokens.next().is_some();
        }
        match tokens.next() {
            Some(t) if (p == "*" && t != ">") || p == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// Whether a rule's pattern and a subscription's pattern match some subject in common.
/// For a topic name this is [`topic_matches`].
fn topic_overlaps(pattern: &[String], sub: &[&str]) -> bool {
    match (pattern.split_first(), sub.split_first()) {
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((p, _)), Some(_)) if p == ">" => true,
        (Some(_), Some((s, _))) if *s == ">" => true,
        (Some((p, prest)), Some((s, srest))) => (p == "*" || *s == "*" || p == s) && topic_overlaps(prest, srest),
    }
}

impl Policy {
    /// Validates every rule, naming each bad field by its path (`rules[3].from`).
    pub fn compile(specs: Vec<RuleSpec>) -> Result<Policy, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut rules = Vec::with_capacity(specs.len());
        if specs.len() > MAX_RULES {
            errors.push(FieldError { path: "rules".into(), message: format!("write at most {MAX_RULES} rules") });
        }
        let mut ids = std::collections::HashSet::new();
        for (i, spec) in specs.iter().enumerate() {
            let mut err = |field: &str, message: String| {
                errors.push(FieldError { path: format!("rules[{i}].{field}"), message });
            };
            if let Some(id) = &spec.id {
                if let Err(e) = plain_name("rule", id) {
                    err("id", e);
                } else if !ids.insert(id.clone()) {
                    err("id", format!("`{id}` names an earlier rule too; give each rule its own id"));
                }
            }
            let from = parse_selector(&spec.from).map_err(|e| err("from", e)).ok();
            let to = parse_target(&spec.to).map_err(|e| err("to", e)).ok();
            let (mut send, mut subscribe) = (true, true);
            if let Some(actions) = &spec.actions {
                if actions.is_empty() {
                    err("actions", "list `send`, `subscribe` or both, or leave `actions` out for all".into());
                }
                send = actions.contains(&Action::Send);
                subscribe = actions.contains(&Action::Subscribe);
            }
            if let (Some(from), Some(to)) = (from, to) {
                rules.push(Rule { from, to, allow: spec.effect == Effect::Allow, send, subscribe });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let needs_traits = rules.iter().any(|r| matches!(r.from, Selector::Tag(_) | Selector::Capability(_)));
        Ok(Policy { specs, rules, needs_traits })
    }

    /// The rules as written.
    pub fn specs(&self) -> &[RuleSpec] {
        &self.specs
    }

    /// Whether some rule selects agents by capability or tag, so that deciding needs the
    /// sender's capabilities (the caller reads them only then).
    pub fn needs_traits(&self) -> bool {
        self.needs_traits
    }

    /// Decides whether `who` may do `action` to `to` (for `subscribe`, `Address::Topic`).
    pub fn decide(&self, who: &Subject<'_>, action: Action, to: &Address) -> Verdict {
        for (i, r) in self.rules.iter().enumerate() {
            let covers = match action {
                Action::Send => r.send,
                Action::Subscribe => r.subscribe,
            };
            if covers && selects(&r.from, who) && applies(r, action, to) {
                return Verdict { allowed: r.allow, rule: Some(i) };
            }
        }
        Verdict { allowed: false, rule: None }
    }

    /// How a refusal names rule `i`: `rule `id` (#i)` or `rule #i`.
    pub fn rule_name(&self, i: usize) -> String {
        match self.specs.get(i).and_then(|s| s.id.as_deref()) {
            Some(id) => format!("rule `{id}` (rules[{i}])"),
            None => format!("rules[{i}]"),
        }
    }

    /// The deciding rule of a verdict, as the wire shows it.
    pub fn deciding(&self, v: Verdict) -> Option<DecidingRule> {
        let index = v.rule?;
        self.specs.get(index).map(|rule| DecidingRule { index, rule: rule.clone() })
    }
}

fn selects(s: &Selector, who: &Subject<'_>) -> bool {
    let kind = &who.principal.kind;
    match s {
        Selector::Any => true,
        Selector::Agent(id) => matches!(kind, PrincipalKind::Agent(a) if a == id),
        Selector::User(id) => matches!(kind, PrincipalKind::User { id: u, .. } if u == id),
        Selector::Role(role) => who.role == Some(*role),
        Selector::Tag(t) => who.principal.agent().is_some() && who.tags.iter().any(|x| x == t),
        Selector::Capability(c) => who.principal.agent().is_some() && who.capabilities.iter().any(|x| x == c),
    }
}

/// Whether rule `r` decides `action` on `to`. A subscription to a wildcard pattern is
/// decided by the first rule that either denies some subject the pattern matches, or allows
/// every one of them; an allow covering only part of it is passed over. So a pattern is
/// allowed only when each subject it matches would be allowed to a subscription by name.
fn applies(r: &Rule, action: Action, to: &Address) -> bool {
    match (&r.to, to) {
        (Target::Topic(p), Address::Topic(name)) if action == Action::Subscribe && !r.allow => {
            topic_overlaps(p, &name.split('.').collect::<Vec<_>>())
        }
        _ => reaches(&r.to, to),
    }
}

fn reaches(t: &Target, to: &Address) -> bool {
    match (t, to) {
        (Target::Any, _) => true,
        (Target::Agent(a), Address::Agent(b)) => a == b,
        (Target::Capability(a), Address::Capability { name, .. }) => a == name,
        (Target::Topic(p), Address::Topic(name)) => topic_matches(p, name),
        (Target::User(a), Address::User(b)) => a == b,
        (Target::Conversation(a), Address::Conversation(b)) => a == b,
        (Target::Group(a), Address::Group(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    fn rule(id: Option<&str>, from: &str, to: &str, effect: Effect) -> RuleSpec {
        RuleSpec { id: id.map(str::to_owned), from: from.into(), to: to.into(), effect, actions: None }
    }

    fn agent(id: &str) -> Principal {
        Principal { tenant: TenantId::default_tenant(), kind: PrincipalKind::Agent(AgentId::from(id)) }
    }

    fn user(id: &str, role: Role) -> Principal {
        Principal { tenant: TenantId::default_tenant(), kind: PrincipalKind::User { id: UserId::from(id), role } }
    }

    fn send(p: &Policy, who: &Principal, to: &str) -> Verdict {
        p.decide(
            &Subject { principal: who, role: who.role(), capabilities: &[], tags: &[] },
            Action::Send,
            &to.parse().unwrap(),
        )
    }

    #[test]
    fn first_match_wins_and_unmatched_is_denied() {
        let p = Policy::compile(vec![
            rule(Some("no-b"), "agent:a", "agent:b", Effect::Deny),
            rule(None, "agent:a", "*", Effect::Allow),
        ])
        .unwrap();
        assert_eq!(send(&p, &agent("a"), "agent:b"), Verdict { allowed: false, rule: Some(0) });
        assert_eq!(send(&p, &agent("a"), "agent:c"), Verdict { allowed: true, rule: Some(1) });
        assert_eq!(send(&p, &agent("z"), "agent:c"), Verdict { allowed: false, rule: None });
        assert_eq!(p.rule_name(0), "rule `no-b` (rules[0])");
        assert_eq!(p.rule_name(1), "rules[1]");
        let empty = Policy::compile(vec![]).unwrap();
        assert!(!send(&empty, &agent("a"), "agent:b").allowed);
    }

    #[test]
    fn topic_patterns_follow_nats_wildcards() {
        let pat = |p: &str| parse_pattern(p).unwrap();
        assert!(topic_matches(&pat("orders.*"), "orders.eu"));
        assert!(!topic_matches(&pat("orders.*"), "orders.eu.west"));
        assert!(!topic_matches(&pat("orders.*"), "orders"));
        assert!(topic_matches(&pat("orders.>"), "orders.eu.west"));
        assert!(!topic_matches(&pat("orders.>"), "orders"));
        assert!(topic_matches(&pat("orders"), "orders"));
        assert!(!topic_matches(&pat("orders"), "orders.eu"));
        assert!(topic_matches(&pat("*.eu"), "orders.eu"));
        for bad in ["orders.>.x", "orders.e*", "orders..x", ">x", ""] {
            assert!(parse_pattern(bad).is_err(), "{bad}");
        }
        let p = Policy::compile(vec![rule(None, "*", "topic:orders.>", Effect::Allow)]).unwrap();
        assert!(send(&p, &agent("a"), "topic:orders.eu").allowed);
        assert!(!send(&p, &agent("a"), "topic:billing.eu").allowed);
    }

    #[test]
    fn selectors_pick_agents_people_roles_tags_and_capabilities() {
        let p = Policy::compile(vec![
            rule(None, "role:viewer", "*", Effect::Deny),
            rule(None, "user:ann", "*", Effect::Allow),
            rule(None, "tag:billing", "capability:pay", Effect::Allow),
            rule(None, "capability:translate", "agent:x", Effect::Allow),
        ])
        .unwrap();
        assert!(p.needs_traits());
        assert_eq!(send(&p, &user("ann", Role::Viewer), "agent:x").rule, Some(0));
        assert_eq!(send(&p, &user("ann", Role::Member), "agent:x").rule, Some(1));
        let a = agent("a");
        let tagged =
            Subject { principal: &a, role: None, capabilities: &["translate".into()], tags: &["billing".into()] };
        let pay: Address = "capability:pay?all".parse().unwrap();
        assert_eq!(p.decide(&tagged, Action::Send, &pay).rule, Some(2));
        assert_eq!(p.decide(&tagged, Action::Send, &"agent:x".parse().unwrap()).rule, Some(3));
        assert_eq!(send(&p, &a, "capability:pay").rule, None, "untagged");
        // A person whose role is not known is passed over by `role:` rules.
        let viewer = user("ann", Role::Viewer);
        let unknown = Subject { principal: &viewer, role: None, capabilities: &[], tags: &[] };
        assert_eq!(p.decide(&unknown, Action::Send, &"agent:x".parse().unwrap()).rule, Some(1));
        // A person never has an agent's tags.
        let u = user("bo", Role::Member);
        let as_user =
            Subject { principal: &u, role: u.role(), capabilities: &["translate".into()], tags: &["billing".into()] };
        assert_eq!(p.decide(&as_user, Action::Send, &pay).rule, None);
    }

    #[test]
    fn actions_limit_what_a_rule_covers() {
        let mut sub = rule(None, "*", "topic:orders.*", Effect::Deny);
        sub.actions = Some(vec![Action::Subscribe]);
        let p = Policy::compile(vec![sub, rule(None, "*", "*", Effect::Allow)]).unwrap();
        let a = agent("a");
        let who = Subject { principal: &a, role: None, capabilities: &[], tags: &[] };
        let t: Address = "topic:orders.eu".parse().unwrap();
        assert_eq!(p.decide(&who, Action::Subscribe, &t), Verdict { allowed: false, rule: Some(0) });
        assert_eq!(p.decide(&who, Action::Send, &t), Verdict { allowed: true, rule: Some(1) });
    }

    #[test]
    fn a_pattern_subscription_needs_an_allow_covering_it_and_no_deny_touching_it() {
        let p = Policy::compile(vec![
            rule(None, "*", "topic:orders.secret", Effect::Deny),
            rule(None, "*", "topic:orders.*", Effect::Allow),
            rule(None, "agent:root", "topic:orders.>", Effect::Allow),
        ])
        .unwrap();
        let decide = |who: &Principal, topic: &str| {
            let s = Subject { principal: who, role: None, capabilities: &[], tags: &[] };
            p.decide(&s, Action::Subscribe, &Address::Topic(topic.into()))
        };
        let (a, root) = (agent("a"), agent("root"));
        assert_eq!(decide(&a, "orders.eu"), Verdict { allowed: true, rule: Some(1) });
        // `orders.*` matches `orders.secret`, which the first rule denies.
        assert_eq!(decide(&a, "orders.*"), Verdict { allowed: false, rule: Some(0) });
        // `*.eu` matches `billing.eu` too, which no rule allows.
        assert_eq!(decide(&a, "*.eu"), Verdict { allowed: false, rule: None });
        // `orders.*` does not cover `orders.>` (which matches `orders.eu.west`).
        assert_eq!(decide(&a, "orders.eu.>"), Verdict { allowed: false, rule: None });
        assert_eq!(decide(&root, "orders.eu.>"), Verdict { allowed: true, rule: Some(2) });
        assert!(!decide(&root, "orders.>").allowed, "overlaps the deny");
        assert_eq!(decide(&root, ">").rule, Some(0));
        assert_eq!(decide(&root, "billing.>").rule, None);
    }

    #[test]
    fn every_bad_field_is_named_by_its_path() {
        let mut no_actions = rule(None, "*", "*", Effect::Allow);
        no_actions.actions = Some(vec![]);
        let errors = Policy::compile(vec![
            rule(Some("r"), "*", "*", Effect::Allow),
            rule(Some("r"), "robot:x", "agent:", Effect::Deny),
            rule(None, "role:root", "topic:a.>.b", Effect::Deny),
            no_actions,
        ])
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["rules[1].id", "rules[1].from", "rules[1].to", "rules[2].from", "rules[2].to", "rules[3].actions"]
        );
        assert!(errors[3].message.contains("owner, admin, member, viewer"), "{}", errors[3].message);
    }

    #[test]
    fn rules_null_is_required_and_means_no_policy() {
        let none: PolicyRules = serde_json::from_str(r#"{"rules": null}"#).unwrap();
        assert_eq!(none.rules, None);
        assert!(serde_json::from_str::<PolicyRules>("{}").is_err(), "`rules` must be given");
        let one: PolicyRules =
            serde_json::from_str(r#"{"rules": [{"from": "*", "to": "group:ops", "effect": "allow"}]}"#).unwrap();
        let p = Policy::compile(one.rules.unwrap()).unwrap();
        assert!(!send(&p, &agent("a"), "agent:b").allowed, "a group rule matches only its group");
        assert!(send(&p, &agent("a"), "group:ops").allowed);
        assert!(!send(&p, &agent("a"), "group:dev").allowed);
    }
}
