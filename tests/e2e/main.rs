//! azbook's end-to-end tests: the real azbook binary against azsim on PATH as `az`.
//!
//! One test binary, one module per area, so the tests are compiled and linked once; `harness`
//! holds what they share: the simulated world, the binaries and the invocation log.

mod harness;

mod change_window;
mod cli_help;
mod dangerous;
mod database_keys;
mod drift;
mod encryption_scopes;
mod exit_codes;
mod faults;
mod interrupt;
mod managed_instances;
mod playbook_errors;
mod reports;
mod runbook;
mod scopes;
mod secrets;
mod show;
mod state_dir;
mod terminal;
mod test_command;
mod waivers;
mod words;
