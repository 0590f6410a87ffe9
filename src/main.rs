use azbook::cli::{Cli, Terminal};
use clap::Parser;
use std::io::IsTerminal;

fn main() {
    azbook::usage::limit_allocator_arenas();
    let cli = Cli::parse();
    let terminal = Terminal {
        stdin_is_tty: std::io::stdin().is_terminal(),
        args: std::env::args().collect(),
        stdout_is_tty: std::io::stdout().is_terminal(),
        stderr_is_tty: std::io::stderr().is_terminal(),
        no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        cpus: std::thread::available_parallelism().map_or(2, |n| n.get()),
        interrupt: azbook::interrupt::Interrupt::install(),
    };
    let code = match cli.run(
        &terminal,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr(),
    ) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", azbook::cli::error_line(&e));
            azbook::exit::code_of(&e)
        }
    };
    std::process::exit(code);
}
