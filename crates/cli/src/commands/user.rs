//! `switchboard user`: the tenant's people (owners and admins).

use anyhow::Result;
use clap::Subcommand;
use switchboard_core::people::{CreateUser, UserList};
use switchboard_core::principal::Role;

use crate::conn::{Conn, client};
use crate::output;

/// The `user` subcommands.
#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user.
    Add {
        email: String,
        /// The name shown for the user (default: the email).
        #[arg(long)]
        name: Option<String>,
        /// owner, admin, member or viewer.
        #[arg(long, default_value = "member")]
        role: Role,
        /// Give the user a password (asked without echo, or SWITCHBOARD_PASSWORD); without
        /// one the user cannot sign in until one is set.
        #[arg(long)]
        password: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the tenant's users.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove a user, with its sessions and tokens.
    Rm {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Runs one `user` subcommand.
pub async fn run(cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Add { email, name, role, password, conn } => {
            let password = if password { Some(super::login::password("the new user's password: ")?) } else { None };
            let req = CreateUser { name: name.unwrap_or_else(|| email.clone()), email, role, password };
            let u = client(&conn)?.create_user(&req).await?.user;
            if conn.json {
                return output::json(&u);
            }
            println!("added user {} ({}) as {}", u.email, u.id, u.role);
        }
        UserCmd::List { conn } => {
            let c = client(&conn)?;
            let mut users = Vec::new();
            let mut cursor = None;
            loop {
                let page = c.list_users(cursor.as_deref(), Some(1000)).await?;
                users.extend(page.users);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            if conn.json {
                return output::json(&UserList { users, next_cursor: None });
            }
            let rows = users
                .into_iter()
                .map(|u| {
                    let pw = if u.has_password { "yes" } else { "no" };
                    vec![u.id, u.email, u.name, u.role.to_string(), pw.into(), u.created_at]
                })
                .collect();
            print!("{}", output::table(&["ID", "EMAIL", "NAME", "ROLE", "PASSWORD", "CREATED"], rows));
        }
        UserCmd::Rm { id, conn } => {
            client(&conn)?.delete_user(&id).await?;
            if conn.json {
                return output::json(&serde_json::json!({ "deleted": id }));
            }
            println!("removed user {id}");
        }
    }
    Ok(())
}
