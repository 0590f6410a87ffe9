//! Progress for people: an indicatif bar on stderr, only when stderr is a terminal and the
//! user did not ask for `--quiet`; and, with `-v`, each az command as it starts.

use crate::az::{CallObserver, display_command};
use crate::evaluate::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub struct Bar {
    bar: Option<ProgressBar>,
    verbose: bool,
    what: std::sync::Mutex<String>,
    /// az processes running now, shown beside what the run is doing.
    running: AtomicUsize,
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
        Bar {
            bar,
            verbose,
            what: std::sync::Mutex::new(what.to_string()),
            running: AtomicUsize::new(0),
        }
    }

    /// The same bar for the next phase of a run (planning, then applying).
    pub fn restart(&self, what: &str) {
        *self.what.lock().expect("progress lock") = what.to_string();
        if let Some(bar) = &self.bar {
            bar.reset();
            bar.set_length(0);
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
        }
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

impl Bar {
    fn show_running(&self, running: usize) {
        if let Some(bar) = &self.bar {
            let what = self.what.lock().expect("progress lock");
            bar.set_message(format!("{what} ({running} az running)"));
        }
    }
}

impl CallObserver for Bar {
    fn call_finished(&self) {
        let running = self.running.fetch_sub(1, Ordering::Relaxed) - 1;
        self.show_running(running);
    }

    fn call_started(&self, argv: &[String]) {
        let running = self.running.fetch_add(1, Ordering::Relaxed) + 1;
        self.show_running(running);
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
