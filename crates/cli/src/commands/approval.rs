//! `switchboard approvals` and `switchboard approve`: the approvals a person may see, and
//! answering one from a terminal.

use anyhow::{Result, bail};
use clap::Args;
use switchboard_core::api::{Approval, ApprovalList, DecideApproval};

use crate::conn::{Conn, client};
use crate::output;

/// `switchboard approvals`.
#[derive(Args)]
pub struct ApprovalsArgs {
    /// Only approvals in this state: pending, approved, rejected, answered, expired, canceled.
    #[arg(long)]
    state: Option<String>,
    /// Most approvals to list (newest first).
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[command(flatten)]
    conn: Conn,
}

/// `switchboard approve`.
#[derive(Args)]
pub struct ApproveArgs {
    /// The approval's id.
    id: String,
    /// The option to choose (default `approve`).
    #[arg(long, conflicts_with = "reject")]
    option: Option<String>,
    /// Choose the option `reject`.
    #[arg(long)]
    reject: bool,
    /// A comment carried to the requester with the outcome.
    #[arg(long)]
    comment: Option<String>,
    /// The form, as JSON, checked against the approval's form schema.
    #[arg(long)]
    form: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

fn options(a: &Approval) -> String {
    a.options.iter().map(|o| o.id.as_str()).collect::<Vec<_>>().join("|")
}

fn show(a: &Approval) {
    println!("{}  {}  asked by {}", a.id, a.state, a.requester);
    println!("  {}", a.question);
    println!("  options {}  policy {}  deadline {} → {}", options(a), a.policy, a.deadline, a.default_outcome);
    if let Some(o) = &a.outcome {
        println!(
            "  outcome {} by {}{}",
            o.outcome,
            o.decided_by,
            o.comment.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
        );
    }
}

/// Lists the approvals the caller may see.
pub async fn list(a: ApprovalsArgs) -> Result<()> {
    let page = client(&a.conn)?.list_approvals(a.state.as_deref(), None, Some(a.limit.clamp(1, 1000))).await?;
    if a.conn.json {
        return output::json(&ApprovalList { approvals: page.approvals, next_cursor: page.next_cursor });
    }
    let rows = page
        .approvals
        .into_iter()
        .map(|x| {
            let outcome = x.outcome.as_ref().map(|o| format!("{} by {}", o.outcome, o.decided_by)).unwrap_or_default();
            vec![x.id.clone(), x.state.clone(), x.question.clone(), options(&x), x.deadline.clone(), outcome]
        })
        .collect();
    print!("{}", output::table(&["ID", "STATE", "QUESTION", "OPTIONS", "DEADLINE", "OUTCOME"], rows));
    Ok(())
}

/// Answers an approval as one of its deciders.
pub async fn approve(a: ApproveArgs) -> Result<()> {
    let option = match (a.option, a.reject) {
        (Some(o), _) => o,
        (None, true) => "reject".to_owned(),
        (None, false) => "approve".to_owned(),
    };
    let form = match a.form.as_deref().map(serde_json::from_str::<serde_json::Value>) {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => bail!("--form is not JSON: {e}"),
        None => None,
    };
    let got = client(&a.conn)?.decide_approval(&a.id, &DecideApproval { option, comment: a.comment, form }).await?;
    if a.conn.json {
        return output::json(&got);
    }
    show(&got.approval);
    Ok(())
}
