//! azbook: security-control runbooks (test, implement, back out) run against Azure through the
//! Azure CLI. See README.md for the user's view and DESIGN.md for the contracts.

pub mod app;
pub mod apply;
pub mod az;
pub mod backout;
pub mod cli;
pub mod discover;
pub mod evaluate;
pub mod exit;
pub mod fieldpath;
pub mod fieldtree;
pub mod fsutil;
pub mod journal;
pub mod memo;
pub mod model;
pub mod plan;
pub mod playbook;
pub mod progress;
pub mod redact;
pub mod report;
pub mod runner;
pub mod scheduler;
pub mod session;
pub mod timefmt;
pub mod usage;
pub mod waivers;
