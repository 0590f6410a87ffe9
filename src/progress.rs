//! Progress for people: an indicatif bar on stderr, only when stderr is a terminal and the
//! user did not ask for `--quiet`; and, with `-v`, each az command as it starts.

use crate::az::{CallObserver, display_command};
use crate::evaluate::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;

pub struct Bar {
    bar: Option<ProgressBar>,
    verbose: bool,
}

impl Bar {
    pub fn new(show_bar: bool, verbose: bool, what: &str) -> Bar {
        let bar = show_bar.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {pos}/{len} [{elapsed}]")
                    .expect("valid template"),
            );
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Bar { bar, verbose }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn found(&self, targets: u64) {
        if let Some(bar) = &self.bar {
            bar.inc_length(targets);
        }
    }

    fn assessed(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }
}

impl CallObserver for Bar {
    fn call_started(&self, argv: &[String]) {
        if !self.verbose {
            return;
        }
        let line = format!("+ {}", display_command(argv));
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}
