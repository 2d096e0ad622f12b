//! `switchboard backup` and `switchboard restore`: an online copy of the embedded store and
//! putting one back (`switchboard_store::sqlite::backup`). PostgreSQL is backed up with its
//! own tools (`pg_dump`, or base backups with WAL archiving for point-in-time recovery; see
//! docs/operations.md).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use switchboard_store::sqlite::backup::{self, Summary};

use crate::output;

/// `switchboard backup FILE`.
#[derive(Args)]
pub struct BackupArgs {
    /// Where to write the copy (a new file; never overwritten).
    file: PathBuf,
    /// Directory of the live embedded store (as given to `switchboard serve`).
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "switchboard-data")]
    data_dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// `switchboard restore FILE --data-dir DIR`.
#[derive(Args)]
pub struct RestoreArgs {
    /// A file written by `switchboard backup`.
    file: PathBuf,
    /// The data directory to restore into (created if needed; start `switchboard serve
    /// --data-dir DIR` on it afterwards).
    #[arg(long, env = "SWITCHBOARD_DATA_DIR")]
    data_dir: PathBuf,
    /// Replace a database already there (stop the hub that uses it first).
    #[arg(long)]
    force: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    path: String,
    bytes: u64,
    schema_version: i64,
    messages: i64,
    deliveries: i64,
    seconds: f64,
    #[serde(skip)]
    verb: &'a str,
}

fn report(s: &Summary, verb: &str, json: bool) -> Result<()> {
    let r = Report {
        path: s.path.display().to_string(),
        bytes: s.bytes,
        schema_version: s.schema_version,
        messages: s.messages,
        deliveries: s.deliveries,
        seconds: s.elapsed.as_secs_f64(),
        verb,
    };
    if json {
        return output::json(&r);
    }
    let rows = vec![vec![
        r.path.clone(),
        format!("{:.1} MiB", r.bytes as f64 / 1048576.0),
        r.messages.to_string(),
        r.deliveries.to_string(),
        format!("{:.2} s", r.seconds),
    ]];
    print!("{}", output::table(&[r.verb, "SIZE", "MESSAGES", "DELIVERIES", "TOOK"], rows));
    Ok(())
}

/// Copies the live store; progress on stderr, the summary on stdout.
pub async fn run_backup(a: BackupArgs) -> Result<()> {
    let (dir, file) = (a.data_dir.clone(), a.file.clone());
    let summary = tokio::task::spawn_blocking(move || {
        backup::backup(&dir, &file, &mut |done, total| {
            eprintln!(
                "backup: {:.1} MiB written (the store is {:.1} MiB)",
                done as f64 / 1048576.0,
                total as f64 / 1048576.0
            )
        })
    })
    .await
    .context("the backup task failed")??;
    report(&summary, "BACKUP", a.json)
}

/// Installs a backup as the store of a data directory.
pub async fn run_restore(a: RestoreArgs) -> Result<()> {
    let (dir, file, force) = (a.data_dir.clone(), a.file.clone(), a.force);
    let summary = tokio::task::spawn_blocking(move || backup::restore(&file, &dir, force))
        .await
        .context("the restore task failed")??;
    report(&summary, "RESTORED", a.json)
}
