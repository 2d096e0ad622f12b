//! `switchboard group`: groups of the tenant's people, what `group:<name>` reaches (owners
//! and admins); the `triage` group gets what auto-routing cannot decide.

use anyhow::Result;
use clap::Subcommand;
use switchboard_core::api::{Group, GroupList, PutGroup};

use crate::conn::{Conn, client};
use crate::output;

/// The `group` subcommands.
#[derive(Subcommand)]
pub enum GroupCmd {
    /// List the tenant's groups.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one group and its members.
    Show {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Create a group, or replace its description and members.
    Set {
        name: String,
        /// A member's user id (repeat for more; none leaves the group empty).
        #[arg(long = "member")]
        members: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Add a user to a group.
    Add {
        name: String,
        user: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Take a user out of a group.
    Remove {
        name: String,
        user: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove a group.
    Rm {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

fn show(g: &Group) {
    println!("{}  {} member(s)  updated {}", g.name, g.members.len(), g.updated_at);
    if let Some(d) = &g.description {
        println!("  {d}");
    }
    let rows = g.members.iter().map(|m| vec![m.clone()]).collect();
    print!("{}", output::table(&["MEMBER"], rows));
}

/// Runs one `group` subcommand.
pub async fn run(cmd: GroupCmd) -> Result<()> {
    match cmd {
        GroupCmd::List { conn } => {
            let c = client(&conn)?;
            let mut groups = Vec::new();
            let mut cursor = None;
            loop {
                let page = c.list_groups(cursor.as_deref(), Some(1000)).await?;
                groups.extend(page.groups);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            if conn.json {
                return output::json(&GroupList { groups, next_cursor: None });
            }
            let rows = groups
                .into_iter()
                .map(|g| vec![g.name, g.members.len().to_string(), g.description.unwrap_or_default(), g.updated_at])
                .collect();
            print!("{}", output::table(&["NAME", "MEMBERS", "DESCRIPTION", "UPDATED"], rows));
        }
        GroupCmd::Show { name, conn } => {
            let g = client(&conn)?.get_group(&name).await?;
            if conn.json {
                return output::json(&g);
            }
            show(&g);
        }
        GroupCmd::Set { name, members, description, conn } => {
            let g = client(&conn)?.put_group(&name, &PutGroup { description, members }).await?;
            if conn.json {
                return output::json(&g);
            }
            show(&g);
        }
        GroupCmd::Add { name, user, conn } => {
            let g = client(&conn)?.add_group_member(&name, &user).await?;
            if conn.json {
                return output::json(&g);
            }
            show(&g);
        }
        GroupCmd::Remove { name, user, conn } => {
            client(&conn)?.remove_group_member(&name, &user).await?;
            if !conn.json {
                println!("took {user} out of group {name}");
            }
        }
        GroupCmd::Rm { name, conn } => {
            client(&conn)?.delete_group(&name).await?;
            if !conn.json {
                println!("removed group {name}");
            }
        }
    }
    Ok(())
}
