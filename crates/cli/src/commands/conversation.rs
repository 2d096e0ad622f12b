//! `switchboard conversation`: conversations of agents and people, their participants,
//! their history in one order, and read markers.

use anyhow::Result;
use clap::Subcommand;
use switchboard_client::HistoryOptions;
use switchboard_core::api::{Conversation, ConversationHistory, ConversationList, CreateConversation};

use crate::conn::{Conn, client};
use crate::output;

/// The `conversation` subcommands.
#[derive(Subcommand)]
pub enum ConversationCmd {
    /// Start a conversation; you (an agent or a person) take part.
    Create {
        #[arg(long)]
        title: Option<String>,
        /// A participant: agent:<id> or user:<id> (repeat for more).
        #[arg(long = "with", value_name = "ADDRESS")]
        with: Vec<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the conversations you take part in (the admin: all of the tenant's).
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a conversation: its participants and how far each has read.
    Show {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a conversation's history in its order.
    History {
        id: String,
        /// Only this message and the replies to it.
        #[arg(long, value_name = "MESSAGE_ID")]
        thread: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Add a participant (agent:<id> or user:<id>).
    Add {
        id: String,
        address: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove a participant.
    Rm {
        id: String,
        address: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Mark the conversation read up to a seq.
    Read {
        id: String,
        #[arg(long)]
        up_to: i64,
        #[command(flatten)]
        conn: Conn,
    },
}

fn participants_table(c: &Conversation) -> String {
    let rows =
        c.participants.iter().map(|p| vec![p.address.clone(), p.read_up_to.to_string(), p.joined_at.clone()]).collect();
    output::table(&["PARTICIPANT", "READ UP TO", "JOINED"], rows)
}

fn show(c: &Conversation) {
    println!("conversation {}{}", c.id, c.title.as_deref().map(|t| format!(" \"{t}\"")).unwrap_or_default());
    println!("created by {} at {}; {} messages", c.created_by, c.created_at, c.last_seq);
    if let Some(n) = c.unread {
        println!("unread: {n}");
    }
    print!("{}", participants_table(c));
}

/// Runs one `conversation` subcommand.
pub async fn run(cmd: ConversationCmd) -> Result<()> {
    match cmd {
        ConversationCmd::Create { title, with, conn } => {
            let c = client(&conn)?.create_conversation(&CreateConversation { title, participants: with }).await?;
            if conn.json {
                return output::json(&c);
            }
            show(&c.conversation);
        }
        ConversationCmd::List { conn } => {
            let c = client(&conn)?;
            let mut conversations = Vec::new();
            let mut cursor = None;
            loop {
                let page = c.list_conversations(cursor.as_deref(), Some(1000)).await?;
                conversations.extend(page.conversations);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            if conn.json {
                return output::json(&ConversationList { conversations, next_cursor: None });
            }
            let rows = conversations
                .into_iter()
                .map(|c| {
                    vec![
                        c.id,
                        c.title.unwrap_or_default(),
                        c.participants.len().to_string(),
                        c.last_seq.to_string(),
                        c.unread.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
                        c.created_at,
                    ]
                })
                .collect();
            print!("{}", output::table(&["ID", "TITLE", "PARTICIPANTS", "MESSAGES", "UNREAD", "CREATED"], rows));
        }
        ConversationCmd::Show { id, conn } => {
            let c = client(&conn)?.get_conversation(&id).await?;
            if conn.json {
                return output::json(&c);
            }
            show(&c);
        }
        ConversationCmd::History { id, thread, conn } => {
            let c = client(&conn)?;
            let mut messages = Vec::new();
            let mut cursor = None;
            loop {
                let opts = HistoryOptions { cursor, limit: Some(1000), thread: thread.clone() };
                let page = c.conversation_history(&id, &opts).await?;
                messages.extend(page.messages);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            if conn.json {
                return output::json(&ConversationHistory { messages, next_cursor: None });
            }
            let rows = messages
                .into_iter()
                .map(|m| {
                    vec![
                        m.seq.to_string(),
                        m.message.created_at,
                        m.message.from,
                        m.message.in_reply_to.unwrap_or_default(),
                        output::text_of(&m.message.parts),
                        m.message.id,
                    ]
                })
                .collect();
            print!("{}", output::table(&["SEQ", "AT", "FROM", "IN REPLY TO", "TEXT", "ID"], rows));
        }
        ConversationCmd::Add { id, address, conn } => {
            let c = client(&conn)?.add_participant(&id, &address).await?;
            if conn.json {
                return output::json(&c);
            }
            println!("{address} takes part in conversation {id}");
        }
        ConversationCmd::Rm { id, address, conn } => {
            client(&conn)?.remove_participant(&id, &address).await?;
            if conn.json {
                return output::json(&serde_json::json!({ "conversation_id": id, "removed": address }));
            }
            println!("removed {address} from conversation {id}");
        }
        ConversationCmd::Read { id, up_to, conn } => {
            let m = client(&conn)?.mark_read(&id, up_to).await?;
            if conn.json {
                return output::json(&m);
            }
            println!("read up to {} in conversation {id}; {} unread", m.read_up_to, m.unread);
        }
    }
    Ok(())
}
