//! One module per command family: its clap arguments and what it does.

pub mod agent;
pub mod approval;
pub mod audit;
pub mod backup;
pub mod bench;
pub mod conversation;
pub mod dead_letters;
pub mod deliveries;
pub mod group;
pub mod inbox;
pub mod login;
pub mod message;
pub mod migrate;
pub mod oauth;
pub mod policy;
pub mod reply;
pub mod send;
pub mod serve;
pub mod tail;
pub mod tenant;
pub mod token;
pub mod topic;
pub mod triage;
pub mod user;
