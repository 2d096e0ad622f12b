//! `switchboard policy`: the tenant's policy (who may send to which address and subscribe to
//! which topic), and `switchboard limits`: its rate limits and quotas. Both with the admin
//! token; `set` reads the JSON document `GET` shows, so `show --json > f; edit f; set f`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use switchboard_core::limits::TenantLimits;
use switchboard_core::policy::{Action, Effect, PolicyCheck, PolicyRules};

use crate::conn::{Conn, client};
use crate::output;

/// The `policy` subcommands.
#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Show the rules in order (first match wins), or that there is no policy.
    Show {
        #[command(flatten)]
        conn: Conn,
    },
    /// Replace the policy with a JSON file: `{"rules": [{"id"?, "from", "to", "effect", "actions"?}]}`
    /// (`{"rules": null}` removes it, and everything is allowed again).
    Set {
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Ask what the policy decides, and which rule decides it.
    Check {
        /// The principal: `agent:<id>`, `user:<id>` or `admin`.
        #[arg(long)]
        from: String,
        /// The address (`agent:<id>`, `capability:<name>`, `topic:<name>`, …).
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value = "send")]
        action: CheckAction,
        #[command(flatten)]
        conn: Conn,
    },
}

/// What `policy check` asks about.
#[derive(Clone, Copy, ValueEnum)]
pub enum CheckAction {
    Send,
    Subscribe,
}

/// The `limits` subcommands.
#[derive(Subcommand)]
pub enum LimitsCmd {
    /// Show the tenant's limits (absent: off).
    Show {
        #[command(flatten)]
        conn: Conn,
    },
    /// Replace the limits with a JSON file, e.g. `{"send_rate": {"per_second": 10, "burst": 20}}`.
    Set {
        file: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
}

fn read<T: serde::de::DeserializeOwned>(file: &PathBuf) -> Result<T> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid document", file.display()))
}

fn print_rules(p: &PolicyRules) {
    let Some(rules) = &p.rules else {
        println!("no policy: everything in the tenant is allowed");
        return;
    };
    let rows = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let effect = match r.effect {
                Effect::Allow => "allow",
                Effect::Deny => "deny",
            };
            let actions = match &r.actions {
                None => "all".to_owned(),
                Some(a) => a
                    .iter()
                    .map(|a| if *a == Action::Send { "send" } else { "subscribe" })
                    .collect::<Vec<_>>()
                    .join(","),
            };
            vec![i.to_string(), r.id.clone().unwrap_or_default(), r.from.clone(), r.to.clone(), effect.into(), actions]
        })
        .collect();
    print!("{}", output::table(&["#", "ID", "FROM", "TO", "EFFECT", "ACTIONS"], rows));
    println!("anything else: denied");
}

/// Runs one `policy` subcommand.
pub async fn run(cmd: PolicyCmd) -> Result<()> {
    match cmd {
        PolicyCmd::Show { conn } => {
            let p = client(&conn)?.policy().await?;
            if conn.json {
                return output::json(&p);
            }
            print_rules(&p);
        }
        PolicyCmd::Set { file, conn } => {
            let p = client(&conn)?.put_policy(&read(&file)?).await?;
            if conn.json {
                return output::json(&p);
            }
            print_rules(&p);
        }
        PolicyCmd::Check { from, to, action, conn } => {
            let action = match action {
                CheckAction::Send => Action::Send,
                CheckAction::Subscribe => Action::Subscribe,
            };
            let d = client(&conn)?.check_policy(&PolicyCheck { from, to, action: Some(action) }).await?;
            if conn.json {
                return output::json(&d);
            }
            let verdict = if d.allowed { "allowed" } else { "denied" };
            match d.rule {
                Some(r) => println!(
                    "{verdict} by rules[{}]{}",
                    r.index,
                    r.rule.id.map(|id| format!(" ({id})")).unwrap_or_default()
                ),
                None if d.allowed => println!("{verdict}: no policy, or the admin"),
                None => println!("{verdict}: no rule matches"),
            }
        }
    }
    Ok(())
}

/// Runs one `limits` subcommand.
pub async fn run_limits(cmd: LimitsCmd) -> Result<()> {
    let (conn, limits) = match cmd {
        LimitsCmd::Show { conn } => {
            let l = client(&conn)?.limits().await?;
            (conn, l)
        }
        LimitsCmd::Set { file, conn } => {
            let l: TenantLimits = read(&file)?;
            let l = client(&conn)?.put_limits(&l).await?;
            (conn, l)
        }
    };
    if conn.json {
        return output::json(&limits);
    }
    let rate = |r: Option<switchboard_core::limits::Rate>| {
        r.map(|r| format!("{}/s, burst {}", r.per_second, r.burst)).unwrap_or_else(|| "off".into())
    };
    let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "off".into());
    let rows = vec![
        vec!["send_rate".into(), rate(limits.send_rate)],
        vec!["api_rate".into(), rate(limits.api_rate)],
        vec!["max_agents".into(), n(limits.max_agents)],
        vec!["max_messages_stored".into(), n(limits.max_messages_stored)],
        vec!["max_recipients".into(), n(limits.max_recipients)],
        vec!["max_streams".into(), n(limits.max_streams)],
    ];
    print!("{}", output::table(&["LIMIT", "VALUE"], rows));
    Ok(())
}
