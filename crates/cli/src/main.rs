//! `switchboard`: runs the hub and talks to it.
//!
//! This file is the command tree; each command family lives in `commands/`, the connection
//! flags of the client commands in `conn.rs`, tables, `--json` and error text in `output.rs`,
//! and the log set-up in `logs.rs`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod conn;
mod credentials;
mod logs;
mod output;

use commands::{
    agent, approval, audit, backup, bench, conversation, dead_letters, deliveries, group, inbox, login, message,
    migrate, oauth, policy, reply, send, serve, tail, tenant, token, topic, triage, user,
};

#[derive(Parser)]
#[command(name = "switchboard", version, about = "Messaging hub for AI agents and the people who work with them")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub.
    Serve(serve::ServeArgs),
    /// Apply the store's schema migrations and exit (nodes also migrate at start).
    Migrate(serve::ServeArgs),
    /// Register, list, show and remove agents.
    #[command(subcommand)]
    Agent(agent::AgentCmd),
    /// Subscribe agents to topics and see who listens: messages to topic:<name> reach every
    /// subscriber but the sender.
    #[command(subcommand)]
    Topic(topic::TopicCmd),
    /// Send a message.
    Send(send::SendArgs),
    /// Conversations of agents and people: create, list, show, history, participants, read
    /// markers. Messages to conversation:<id> reach every participant but the sender.
    #[command(subcommand)]
    Conversation(conversation::ConversationCmd),
    /// List deliveries by state and recipient.
    Deliveries(deliveries::DeliveriesArgs),
    /// Inspect, replay or purge dead letters.
    #[command(subcommand, name = "dead-letters")]
    DeadLetters(dead_letters::DeadCmd),
    /// Show a message and its deliveries.
    Message(message::MessageArgs),
    /// Answer a message: in reply to it, to its conversation, else to its sender.
    Reply(reply::ReplyArgs),
    /// Messages `auto` could not place, with the router's ranked candidates; `triage route`
    /// sends one to a capability.
    Triage(triage::TriageArgs),
    /// Take messages from this agent's inbox.
    Inbox(inbox::InboxArgs),
    /// Drive a running hub with a workload and report throughput and latency (admin token).
    Bench(bench::BenchArgs),
    /// Follow this agent's messages as they arrive (WebSocket), acknowledging each.
    Tail(tail::TailArgs),
    /// Create and list tenants (the platform operator: the bootstrap admin token).
    #[command(subcommand)]
    Tenant(tenant::TenantCmd),
    /// List, export (through the hub) or verify (in the store) the tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Sign in as a person: makes a personal access token and saves it (mode 0600) for this hub.
    Login(login::LoginArgs),
    /// Show who the CLI acts as (agent, person or admin).
    Whoami(login::WhoamiArgs),
    /// Add, list and remove the tenant's people (owners and admins).
    #[command(subcommand)]
    User(user::UserCmd),
    /// Groups of people, what `group:<name>` reaches; `triage` gets what `auto` cannot route.
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// List the approvals you may see (yours to decide, or asked by you), newest first.
    Approvals(approval::ApprovalsArgs),
    /// Answer an approval: `--option X` (default `approve`), `--reject`, `--comment`, `--form`.
    Approve(approval::ApproveArgs),
    /// Create, list and revoke your personal access tokens.
    #[command(subcommand)]
    Token(token::TokenCmd),
    /// Show, set or check the tenant's policy: who may send to which address and subscribe
    /// to which topic (admin token).
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    /// Show or set the tenant's rate limits and quotas (admin token).
    #[command(subcommand)]
    Limits(policy::LimitsCmd),
    /// OAuth2: an agent's JWT access token, the signing key's rotation, the tenant's identity
    /// providers.
    #[command(subcommand, name = "oauth")]
    OAuth(oauth::OAuthCmd),
    /// Copy the live embedded store to a file, without stopping the hub (SQLite; for
    /// PostgreSQL use pg_dump).
    Backup(backup::BackupArgs),
    /// Install a backup as the store of a data directory (then `serve --data-dir` on it).
    Restore(backup::RestoreArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The hub's own commands log as asked; the client commands log warnings as text.
    let (result, log_format) = match cli.command {
        Command::Serve(args) => {
            let format = args.logs.format();
            (serve::run(args).await, format)
        }
        Command::Migrate(args) => {
            let format = args.logs.format();
            (migrate::run(args).await, format)
        }
        client_command => {
            logs::init(logs::CLIENT_FILTER, logs::LogFormat::Text);
            output::restore_sigpipe();
            (run_client(client_command).await, logs::LogFormat::Text)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::report_error(&e, log_format);
            ExitCode::FAILURE
        }
    }
}

async fn run_client(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Serve(_) | Command::Migrate(_) => unreachable!("serve and migrate are handled by main"),
        Command::Agent(cmd) => agent::run(cmd).await,
        Command::Topic(cmd) => topic::run(cmd).await,
        Command::Send(args) => send::run(args).await,
        Command::Conversation(cmd) => conversation::run(cmd).await,
        Command::Deliveries(args) => deliveries::run(args).await,
        Command::DeadLetters(cmd) => dead_letters::run(cmd).await,
        Command::Message(args) => message::run(args).await,
        Command::Reply(args) => reply::run(args).await,
        Command::Triage(args) => triage::run(args).await,
        Command::Inbox(args) => inbox::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Tail(args) => tail::run(args).await,
        Command::Audit(cmd) => audit::run(cmd).await,
        Command::Tenant(cmd) => tenant::run(cmd).await,
        Command::Login(args) => login::login(args).await,
        Command::Whoami(args) => login::whoami(args).await,
        Command::User(cmd) => user::run(cmd).await,
        Command::Group(cmd) => group::run(cmd).await,
        Command::Approvals(args) => approval::list(args).await,
        Command::Approve(args) => approval::approve(args).await,
        Command::Token(cmd) => token::run(cmd).await,
        Command::Policy(cmd) => policy::run(cmd).await,
        Command::Limits(cmd) => policy::run_limits(cmd).await,
        Command::OAuth(cmd) => oauth::run(cmd).await,
        Command::Backup(a) => backup::run_backup(a).await,
        Command::Restore(a) => backup::run_restore(a).await,
    }
}

#[cfg(test)]
mod tests {
    /// clap checks a command's definition only when that command is parsed, by panicking; this
    /// checks every command at once (a flag named twice, as a command's own `--json` beside
    /// the global one, would panic only when a user ran it).
    #[test]
    fn every_command_is_well_defined() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
