//! azbook: security-control runbooks (test, implement, back out) run against Azure through the
//! Azure CLI. README.md is the user's view; ARCHITECTURE.md the layers and how data flows
//! through them. Only what `main` needs is public, so that the compiler finds dead code.

mod account;
mod app;
mod apply;
mod armid;
mod az;
mod backout;
pub mod cli;
mod discover;
mod evaluate;
pub mod exit;
mod fieldpath;
mod fieldtree;
mod fsutil;
pub mod interrupt;
mod journal;
mod memo;
mod model;
mod plan;
mod playbook;
mod progress;
mod redact;
mod report;
mod runner;
mod scheduler;
mod timefmt;
pub mod usage;
mod waivers;
