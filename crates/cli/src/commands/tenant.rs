//! `switchboard tenant`: the platform operator creates and lists tenants (with the bootstrap
//! admin token; a tenant's own admin token is refused).

use anyhow::Result;
use clap::Subcommand;
use switchboard_core::api::TenantList;

use crate::conn::{Conn, client};
use crate::output;

/// The `tenant` subcommands.
#[derive(Subcommand)]
pub enum TenantCmd {
    /// Create a tenant and print its admin token (shown once).
    Create {
        /// 1 to 100 letters, digits or `-_.`, unique on the platform.
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List every tenant.
    List {
        #[command(flatten)]
        conn: Conn,
    },
}

/// Runs one `tenant` subcommand.
pub async fn run(cmd: TenantCmd) -> Result<()> {
    match cmd {
        TenantCmd::Create { name, conn } => {
            let r = client(&conn)?.create_tenant(&name).await?;
            if conn.json {
                return output::json(&r);
            }
            println!("created tenant {} ({})", r.tenant.name, r.tenant.id);
            println!("admin token:  {}   (shown once; store it now)", r.admin_token);
        }
        TenantCmd::List { conn } => {
            let c = client(&conn)?;
            let mut tenants = Vec::new();
            let mut cursor = None;
            loop {
                let page = c.list_tenants(cursor.as_deref(), Some(1000)).await?;
                tenants.extend(page.tenants);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            if conn.json {
                return output::json(&TenantList { tenants, next_cursor: None });
            }
            let rows = tenants.into_iter().map(|t| vec![t.id, t.name, t.created_at]).collect();
            print!("{}", output::table(&["ID", "NAME", "CREATED"], rows));
        }
    }
    Ok(())
}
