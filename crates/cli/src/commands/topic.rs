//! `switchboard topic`: subscribe agents to topics and see who listens.

use anyhow::{Result, bail};
use clap::Subcommand;
use switchboard_client::Client;
use switchboard_core::api::SubscriberList;

use crate::conn::{Conn, client};
use crate::output;

/// The `topic` subcommands.
#[derive(Subcommand)]
pub enum TopicCmd {
    /// Subscribe an agent to a topic (an agent key may subscribe only its own agent).
    Subscribe {
        /// Topic name, e.g. alerts/eu.
        topic: String,
        /// The agent to subscribe (its id). Default: the agent whose key is the token; with
        /// the admin token it must be given.
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// End an agent's subscription to a topic.
    Unsubscribe {
        topic: String,
        /// The agent to unsubscribe (its id). Default: the agent whose key is the token.
        #[arg(long)]
        agent: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the topics that have subscribers.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// List a topic's subscribers.
    Subscribers {
        topic: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// `--agent`, or else the agent whose key the client holds (the admin has no agent).
async fn agent_or_self(c: &Client, agent: Option<String>) -> Result<String> {
    if let Some(a) = agent {
        return Ok(a);
    }
    match c.whoami().await?.agent_id {
        Some(id) => Ok(id),
        None => {
            bail!("the admin token is not an agent: say which agent with --agent <id> (see `switchboard agent list`)")
        }
    }
}

/// Runs one `topic` subcommand.
pub async fn run(cmd: TopicCmd) -> Result<()> {
    match cmd {
        TopicCmd::Subscribe { topic, agent, conn } => {
            let c = client(&conn)?;
            let agent = agent_or_self(&c, agent).await?;
            let s = c.subscribe(&topic, &agent).await?;
            if conn.json {
                return output::json(&s);
            }
            println!("agent {} is subscribed to topic {} (since {})", s.agent_id, s.topic, s.created_at);
        }
        TopicCmd::Unsubscribe { topic, agent, conn } => {
            let c = client(&conn)?;
            let agent = agent_or_self(&c, agent).await?;
            c.unsubscribe(&topic, &agent).await?;
            if conn.json {
                return output::json(&serde_json::json!({"topic": topic, "agent_id": agent, "unsubscribed": true}));
            }
            println!("agent {agent} is no longer subscribed to topic {topic}");
        }
        TopicCmd::List { conn } => {
            let list = client(&conn)?.topics().await?;
            if conn.json {
                return output::json(&list);
            }
            let rows = list.topics.iter().map(|t| vec![t.name.clone(), t.subscribers.to_string()]).collect();
            print!("{}", output::table(&["TOPIC", "SUBSCRIBERS"], rows));
        }
        TopicCmd::Subscribers { topic, conn } => {
            let subscribers = client(&conn)?.topic_subscribers(&topic).await?;
            if conn.json {
                return output::json(&SubscriberList { subscribers, next_cursor: None });
            }
            let rows = subscribers.iter().map(|s| vec![s.agent_id.clone(), s.created_at.clone()]).collect();
            print!("{}", output::table(&["AGENT", "SINCE"], rows));
        }
    }
    Ok(())
}
