//! `switchboard agent`: register, list, show and remove agents, and manage their keys.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use switchboard_core::api::{A2aCredentials, AgentStatus, Capability, ImportAgent, RegisterAgent};

use crate::conn::{Conn, client};
use crate::output;

/// The `agent` subcommands.
#[derive(Subcommand)]
pub enum AgentCmd {
    /// Register an agent (admin token); prints its API key once.
    Register {
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "agent-version")]
        version: Option<String>,
        /// Push endpoint URL.
        #[arg(long)]
        endpoint: Option<String>,
        /// A capability name; repeat for several.
        #[arg(long = "capability", short = 'c')]
        capabilities: Vec<String>,
        /// A full card as JSON (file path), instead of the flags.
        #[arg(long, conflicts_with_all = ["description", "capabilities", "endpoint"])]
        card: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Import an external A2A agent from its Agent Card (admin token): messages to it are
    /// forwarded with the A2A protocol, and its answers come back as replies.
    Import {
        /// The card's URL, e.g. https://agent.example/.well-known/agent-card.json.
        card_url: String,
        /// The name in the registry (default: the card's name).
        #[arg(long)]
        name: Option<String>,
        /// A bearer token the hub sends to the agent (`Authorization: Bearer …`).
        #[arg(long, conflicts_with = "api_key")]
        bearer: Option<String>,
        /// An API key the hub sends to the agent, in the header the card names.
        #[arg(long)]
        api_key: Option<String>,
        /// The API key's header, when the card names none (default X-API-Key).
        #[arg(long, requires = "api_key")]
        api_key_header: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List agents.
    List {
        #[arg(long)]
        capability: Option<String>,
        /// active, inactive or error.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one agent.
    Show {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove an agent (admin token).
    Rm {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// An agent's API keys: several may be live; rotate by creating one and revoking the old
    /// one (admin token, or the agent's own key).
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
}

/// The `agent key` subcommands.
#[derive(Subcommand)]
pub enum KeyCmd {
    /// Create one more key for the agent; prints it once. Its other keys keep working.
    Create {
        /// The agent's id.
        agent: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the agent's keys that still work, with their last use (never the keys).
    List {
        /// The agent's id.
        agent: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke one of the agent's keys, at once or after a grace period.
    Revoke {
        /// The agent's id.
        agent: String,
        /// The key's id (`key_…`), as `switchboard agent key list` shows it.
        key_id: String,
        /// Seconds the key keeps working, so its holder can switch first (at most 604800, 7 days).
        #[arg(long)]
        grace_seconds: Option<u64>,
        #[command(flatten)]
        conn: Conn,
    },
}

async fn run_key(cmd: KeyCmd) -> Result<()> {
    match cmd {
        KeyCmd::Create { agent, conn } => {
            let k = client(&conn)?.create_agent_key(&agent).await?;
            if conn.json {
                return output::json(&k);
            }
            println!("created key {} for agent {agent}", k.id);
            println!("api key:  {}   (shown once; store it now)", k.key);
        }
        KeyCmd::List { agent, conn } => {
            let list = client(&conn)?.list_agent_keys(&agent).await?;
            if conn.json {
                return output::json(&list);
            }
            let rows = list
                .keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        k.created_at.clone(),
                        k.expires_at.clone().unwrap_or_else(|| "live".into()),
                        k.last_used_at.clone().unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect();
            print!("{}", output::table(&["ID", "CREATED", "EXPIRES", "LAST USED"], rows));
        }
        KeyCmd::Revoke { agent, key_id, grace_seconds, conn } => {
            client(&conn)?.revoke_agent_key(&agent, &key_id, grace_seconds).await?;
            let grace = grace_seconds.unwrap_or(0);
            if conn.json {
                return output::json(&serde_json::json!({ "revoked": key_id, "grace_seconds": grace }));
            }
            match grace {
                0 => println!("revoked key {key_id} of agent {agent}; it no longer works"),
                g => println!("revoked key {key_id} of agent {agent}; it keeps working for {g} s"),
            }
        }
    }
    Ok(())
}

/// Runs one `agent` subcommand.
pub async fn run(cmd: AgentCmd) -> Result<()> {
    match cmd {
        AgentCmd::Register { name, description, version, endpoint, capabilities, card, conn } => {
            let req = match card {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                    let mut r: RegisterAgent = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not an agent card", path.display()))?;
                    r.name = name;
                    r
                }
                None => RegisterAgent {
                    name,
                    description,
                    version,
                    endpoint,
                    capabilities: capabilities
                        .into_iter()
                        .map(|c| Capability {
                            name: c,
                            description: None,
                            tags: vec![],
                            examples: vec![],
                            input_schema: None,
                            output_schema: None,
                            output_schema_mode: None,
                            reassign_on_timeout: None,
                        })
                        .collect(),
                    metadata: None,
                    retry_schedule_ms: None,
                },
            };
            let r = client(&conn)?.register_agent(&req).await?;
            if conn.json {
                return output::json(&r);
            }
            println!("registered agent {} ({})", r.agent.name, r.agent.id);
            println!("address:  agent:{}", r.agent.id);
            println!("api key:  {}   (shown once; store it now)", r.api_key);
            if r.agent.endpoint.is_some() {
                println!("webhook secret: {}   (verify push signatures with it)", r.webhook_secret);
            }
        }
        AgentCmd::Import { card_url, name, bearer, api_key, api_key_header, conn } => {
            let auth = match (bearer, api_key) {
                (Some(token), _) => Some(A2aCredentials::Bearer { token }),
                (None, Some(value)) => Some(A2aCredentials::ApiKey { value, header: api_key_header }),
                (None, None) => None,
            };
            let req = ImportAgent { card_url, name, auth, retry_schedule_ms: None };
            let r = client(&conn)?.import_agent(&req).await?;
            if conn.json {
                return output::json(&r);
            }
            println!("imported agent {} ({}) from {}", r.agent.name, r.agent.id, r.a2a.card_url);
            println!("address:  agent:{}", r.agent.id);
            println!("a2a:      {} {} at {}", r.a2a.binding, r.a2a.protocol_version, r.a2a.url);
            let caps: Vec<&str> = r.agent.capabilities.iter().map(|c| c.name.as_str()).collect();
            println!("capabilities: {}", if caps.is_empty() { "(none)".into() } else { caps.join(", ") });
        }
        AgentCmd::List { capability, status, conn } => {
            let status = match status.as_deref() {
                None => None,
                Some("active") => Some(AgentStatus::Active),
                Some("inactive") => Some(AgentStatus::Inactive),
                Some("error") => Some(AgentStatus::Error),
                Some(s) => bail!("--status {s}: use active, inactive or error"),
            };
            let list = client(&conn)?.list_agents(capability.as_deref(), status).await?;
            if conn.json {
                return output::json(&list);
            }
            let rows = list
                .agents
                .iter()
                .map(|a| {
                    vec![
                        a.id.clone(),
                        a.name.clone(),
                        a.status.as_str().to_owned(),
                        a.capabilities.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(","),
                        a.last_seen_at.clone().unwrap_or_else(|| "never".into()),
                    ]
                })
                .collect();
            print!("{}", output::table(&["ID", "NAME", "STATUS", "CAPABILITIES", "LAST SEEN"], rows));
        }
        AgentCmd::Show { id, conn } => {
            let a = client(&conn)?.get_agent(&id).await?;
            if conn.json {
                return output::json(&a);
            }
            let rows = vec![
                vec!["id".into(), a.id.clone()],
                vec!["name".into(), a.name.clone()],
                vec!["status".into(), a.status.as_str().into()],
                vec!["description".into(), a.description.clone().unwrap_or_default()],
                vec!["version".into(), a.version.clone().unwrap_or_default()],
                vec!["endpoint".into(), a.endpoint.clone().unwrap_or_else(|| "(pull)".into())],
                vec![
                    "capabilities".into(),
                    a.capabilities.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
                ],
                vec!["last seen".into(), a.last_seen_at.clone().unwrap_or_else(|| "never".into())],
                vec!["created".into(), a.created_at.clone()],
            ];
            print!("{}", output::table(&["FIELD", "VALUE"], rows));
        }
        AgentCmd::Rm { id, conn } => {
            client(&conn)?.delete_agent(&id).await?;
            if conn.json {
                return output::json(&serde_json::json!({"deleted": id}));
            }
            println!("deleted agent {id}");
        }
        AgentCmd::Key { cmd } => return run_key(cmd).await,
    }
    Ok(())
}
