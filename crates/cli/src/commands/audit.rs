//! `switchboard audit verify`: checks the audit log's hash chains directly in the store, not
//! through a hub, so that it answers whatever the hub (or someone with access to the
//! database) did. Prints each tenant's verdict and fails naming the first bad entry.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;
use switchboard_core::audit::ChainBreak;
use switchboard_store::audit::AuditVerdict;

use crate::output;

/// The audit log's commands.
#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain of every tenant's audit log (or one's) directly in the store:
    /// names the first entry that was edited, removed, reordered or added outside the hub.
    Verify(VerifyArgs),
}

/// Which store, and which tenant.
#[derive(Args)]
#[command(group(ArgGroup::new("store").required(true).args(["data_dir", "database_url"])))]
pub struct VerifyArgs {
    /// Directory of the embedded store (as given to `switchboard serve`).
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// postgres://… of the shared store.
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Only this tenant (default: every tenant with an audit log).
    #[arg(long)]
    tenant: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One tenant's verdict as `--json` prints it.
#[derive(Serialize)]
struct Verdict<'a> {
    tenant: &'a str,
    entries: u64,
    ok: bool,
    /// The first bad entry: its `seq` and `kind` (`edited`, `removed`, `reordered`,
    /// `out_of_order`, `beyond_head`).
    broken: Option<&'a ChainBreak>,
}

/// Runs an audit subcommand.
pub async fn run(cmd: AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::Verify(a) => verify(a).await,
    }
}

async fn verify(a: VerifyArgs) -> Result<()> {
    // Precedence as `serve`: a URL names the store; otherwise the data directory does.
    let (url, dir) = match (&a.database_url, &a.data_dir) {
        (Some(url), _) => (Some(url.as_str()), PathBuf::new()),
        (None, Some(dir)) => {
            // Opening creates a missing store; verifying one that does not exist is a mistake.
            if !dir.join("switchboard.db").is_file() {
                bail!(
                    "no store in {}: give the --data-dir that `switchboard serve` uses (it holds switchboard.db)",
                    dir.display()
                );
            }
            (None, dir.clone())
        }
        (None, None) => bail!("give --data-dir DIR or --database-url URL"),
    };
    let store = switchboard_store::open(url, &dir, "audit-verify".into()).await.context("cannot open the store")?;
    let verdicts = check(store.as_ref(), a.tenant).await;
    store.close().await;
    let verdicts = verdicts?;

    if a.json {
        let out: Vec<Verdict<'_>> = verdicts
            .iter()
            .map(|v| Verdict {
                tenant: &v.tenant,
                entries: v.entries,
                ok: v.broken.is_none(),
                broken: v.broken.as_ref(),
            })
            .collect();
        output::json(&out)?;
    } else {
        let rows = verdicts
            .iter()
            .map(|v| {
                let result = v.broken.as_ref().map_or_else(|| "ok".to_owned(), |b| format!("BROKEN: {b}"));
                vec![v.tenant.clone(), v.entries.to_string(), result]
            })
            .collect();
        print!("{}", output::table(&["TENANT", "ENTRIES", "RESULT"], rows));
    }
    let broken: Vec<String> =
        verdicts.iter().filter_map(|v| v.broken.as_ref().map(|b| format!("tenant {}: {b}", v.tenant))).collect();
    if !broken.is_empty() {
        bail!("the audit log was tampered with: {}", broken.join("; "));
    }
    Ok(())
}

async fn check(store: &dyn switchboard_store::Store, tenant: Option<String>) -> Result<Vec<AuditVerdict>> {
    let tenants = match tenant {
        Some(t) => vec![t],
        None => store.audit_tenants().await.context("cannot list the tenants with an audit log")?,
    };
    let mut verdicts = Vec::with_capacity(tenants.len());
    for t in tenants {
        verdicts.push(store.verify_audit(&t).await.with_context(|| format!("cannot read tenant {t}'s audit log"))?);
    }
    Ok(verdicts)
}
