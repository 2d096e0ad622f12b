//! `switchboard migrate`: brings the store's schema up to date and exits, for deployments
//! that migrate in a step of their own before starting nodes (which also migrate at start).

use anyhow::Result;

use super::serve::{ServeArgs, resolve_config};
use crate::logs;

/// Migrates the store that `serve` with these flags would open.
pub async fn run(a: ServeArgs) -> Result<()> {
    logs::init(logs::CLIENT_FILTER, a.logs.format());
    let config = resolve_config(a)?;
    // Where the store is, without the PostgreSQL URL's credentials.
    let target = match &config.database_url {
        Some(u) => u.split('@').next_back().unwrap_or_default().to_owned(),
        None => config.data_dir.display().to_string(),
    };
    switchboard_server::migrate(&config).await?;
    println!("store at {target} is migrated to the current schema");
    Ok(())
}
