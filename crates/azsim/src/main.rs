//! azsim: the Azure CLI simulator that azbook's tests, demo and benchmarks put on PATH as `az`.
//!
//! Invoked as `azsim` it is a management tool (load, dump, seed, settings, calls) and the ARM
//! face (`azsim serve`: the REST API the real azure-cli talks to); invoked under any other name
//! (a link or copy named `az`) it answers az's commands from the world store. ARCHITECTURE.md
//! at the repository root ("azsim: two faces over one world") describes how.

mod args;
mod armid;
mod cli;
mod commands;
mod errors;
mod faults;
mod invocation_log;
mod manage;
mod output;
mod render;
mod seed;
mod serve;
mod store;
mod synth;
mod warnings;
mod world;

use std::path::{Path, PathBuf};

fn main() {
    let mut raw = std::env::args_os();
    let argv0 = raw.next().unwrap_or_default();
    let rest: Vec<String> = raw.map(|a| a.to_string_lossy().into_owned()).collect();
    let name = Path::new(&argv0)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let code = if name == "azsim" {
        manage::run(rest)
    } else {
        cli::run(&rest, std::env::var_os("AZSIM_WORLD").map(PathBuf::from))
    };
    std::process::exit(code);
}
