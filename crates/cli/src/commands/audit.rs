//! `switchboard audit`: the tenant's audit log.
//!
//! `list` and `export` read it through a hub, as its admin. `verify` checks the hash chains
//! directly in the store, not through a hub, so that it answers whatever the hub (or someone
//! with access to the database) did; it prints each tenant's verdict and fails naming the
//! first bad entry.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;
use switchboard_client::AuditQuery;
use switchboard_core::api::{AuditPage, AuditSettings};
use switchboard_core::audit::ChainBreak;
use switchboard_store::audit::AuditVerdict;

use crate::conn::{Conn, client};
use crate::output;

/// The audit log's commands.
#[derive(Subcommand)]
pub enum AuditCmd {
    /// List entries of the tenant's audit log, oldest first (admin token).
    List(ListArgs),
    /// Print the tenant's whole audit log as JSON lines, one entry per line in `seq` order
    /// (admin token).
    Export {
        #[command(flatten)]
        conn: Conn,
    },
    /// Check the hash chain of every tenant's audit log (or one's) directly in the store:
    /// names the first entry that was edited, removed, reordered or added outside the hub.
    Verify(VerifyArgs),
    /// Show, or turn on or off, auditing of sends and acks (admin token). Off by default: when
    /// on, every send and ack adds an entry (ids and metadata, never payloads).
    Sends {
        /// `on` or `off`; without it, shows the current setting.
        #[arg(value_parser = ["on", "off"])]
        set: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Which entries `audit list` prints.
#[derive(Args)]
pub struct ListArgs {
    /// Only entries by this actor: `admin`, `operator`, `agent:<id>` or `user:<id>`.
    #[arg(long)]
    actor: Option<String>,
    /// Only entries of this action, e.g. `agent.register`.
    #[arg(long)]
    action: Option<String>,
    /// RFC 3339 time: only entries at or after it.
    #[arg(long)]
    since: Option<String>,
    /// At most this many entries (the oldest that match).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[command(flatten)]
    conn: Conn,
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
        AuditCmd::List(a) => list(a).await,
        AuditCmd::Export { conn } => export(conn).await,
        AuditCmd::Verify(a) => verify(a).await,
        AuditCmd::Sends { set, conn } => sends(set, conn).await,
    }
}

/// Shows or sets the tenant's switch for auditing sends and acks.
async fn sends(set: Option<String>, conn: Conn) -> Result<()> {
    let hub = client(&conn)?;
    let now = match set.as_deref() {
        Some(v) => hub.put_audit_settings(&AuditSettings { sends: v == "on" }).await?,
        None => hub.audit_settings().await?,
    };
    if conn.json {
        return output::json(&now);
    }
    println!("auditing of sends and acks: {}", if now.sends { "on" } else { "off" });
    Ok(())
}

/// Pages through the log until `--limit` entries or its end.
async fn list(a: ListArgs) -> Result<()> {
    if a.limit == 0 {
        bail!("--limit must be at least 1");
    }
    let hub = client(&a.conn)?;
    let mut q = AuditQuery { actor: a.actor, action: a.action, since: a.since, ..Default::default() };
    let mut shown = AuditPage { events: Vec::new(), next_cursor: None };
    loop {
        q.limit = Some((a.limit - shown.events.len()).min(1000));
        let page = hub.audit(&q).await?;
        shown.events.extend(page.events);
        shown.next_cursor = page.next_cursor;
        match &shown.next_cursor {
            Some(c) if shown.events.len() < a.limit => q.cursor = Some(c.clone()),
            _ => break,
        }
    }
    if a.conn.json {
        return output::json(&shown);
    }
    let rows = shown
        .events
        .iter()
        .map(|e| {
            let detail =
                if e.detail.as_object().is_some_and(|m| m.is_empty()) { String::new() } else { e.detail.to_string() };
            vec![e.seq.to_string(), e.at.clone(), e.actor.clone(), e.action.clone(), e.target.clone(), detail]
        })
        .collect();
    print!("{}", output::table(&["SEQ", "AT", "ACTOR", "ACTION", "TARGET", "DETAIL"], rows));
    if shown.next_cursor.is_some() {
        eprintln!(
            "showing the first {} matching entries; raise --limit, narrow with --since, or use `switchboard audit export`",
            shown.events.len()
        );
    }
    Ok(())
}

/// Copies the export to stdout line by line, as the hub sent it.
async fn export(conn: Conn) -> Result<()> {
    let mut lines = client(&conn)?.audit_export().await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    while let Some(line) = lines.next_line().await? {
        writeln!(out, "{line}").context("cannot write to stdout")?;
    }
    out.flush().context("cannot write to stdout")?;
    Ok(())
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
