//! Progress for people: an indicatif bar on stderr, only when stderr is a terminal and the
//! user did not ask for `--quiet`; and, with `-v`, each az command as it starts.
//!
//! The commands write their own lines to stderr (the scope line, warnings, a confirmation
//! prompt, the summary) without going through the bar, so the bar is on screen only while the
//! work it counts runs: it is drawn from the first target found or done after `Bar::new` or
//! `restart` (by then the command has said what it covers), and cleared by `finish`, or when
//! the `Bar` is dropped, before anything else is printed. A line printed while it is drawn
//! would be glued to it and stay on screen after it.

use crate::az::CallObserver;
use crate::evaluate::Progress;
use crate::report::command_line;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

const TICK: Duration = Duration::from_millis(120);

/// Where the bar is in its cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Made or restarted: counting, but not drawn until the work reports progress.
    Waiting,
    /// Drawn, and redrawn at every tick.
    Shown,
    /// Finished and cleared; drawn again only after a `restart`.
    Finished,
}

/// Makes the target a shown bar draws on: stderr, or a test's terminal.
type Target = Box<dyn Fn() -> ProgressDrawTarget + Send + Sync>;

pub struct Bar {
    bar: Option<ProgressBar>,
    target: Target,
    phase: Mutex<Phase>,
    verbose: bool,
    what: Mutex<String>,
    /// az processes running now, shown beside what the run is doing.
    running: AtomicUsize,
}

impl Bar {
    pub fn new(show_bar: bool, verbose: bool, what: &str) -> Bar {
        Bar::drawn_on(
            show_bar,
            verbose,
            what,
            Box::new(ProgressDrawTarget::stderr),
        )
    }

    fn drawn_on(show_bar: bool, verbose: bool, what: &str, target: Target) -> Bar {
        let bar = show_bar.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {pos}/{len} [{elapsed}]")
                    .expect("valid template"),
            );
            bar.set_message(what.to_string());
            bar
        });
        Bar {
            bar,
            target,
            phase: Mutex::new(Phase::Waiting),
            verbose,
            what: Mutex::new(what.to_string()),
            running: AtomicUsize::new(0),
        }
    }

    /// The same bar for the next phase of a run (planning, then applying): counting from zero,
    /// and drawn again once that phase's work reports progress.
    pub fn restart(&self, what: &str) {
        *self.what.lock().expect("progress lock") = what.to_string();
        let mut phase = self.phase();
        if let Some(bar) = &self.bar {
            Bar::clear(bar, *phase);
            bar.reset();
            bar.set_length(0);
            bar.set_message(what.to_string());
        }
        *phase = Phase::Waiting;
    }

    /// Clears the bar from the screen: what is printed next starts on a clean line.
    pub fn finish(&self) {
        let mut phase = self.phase();
        if let Some(bar) = &self.bar {
            Bar::clear(bar, *phase);
        }
        *phase = Phase::Finished;
    }

    /// The phase, also after a panic elsewhere: it is a plain value, and `Drop` must not panic.
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Erases a shown bar and stops its ticks; it draws nowhere until shown again.
    fn clear(bar: &ProgressBar, phase: Phase) {
        if phase == Phase::Shown {
            bar.finish_and_clear();
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
    }

    /// Draws the bar if this phase of the run has not drawn it yet.
    fn show(&self) {
        let Some(bar) = &self.bar else {
            return;
        };
        let mut phase = self.phase();
        if *phase == Phase::Waiting {
            bar.set_draw_target((self.target)());
            bar.enable_steady_tick(TICK);
            *phase = Phase::Shown;
        }
    }
}

impl Drop for Bar {
    /// A command that stops with an error clears the bar too, before its message is printed
    /// (as indicatif does by default for a bar dropped unfinished: said here, not assumed).
    fn drop(&mut self) {
        self.finish();
    }
}

impl Progress for Bar {
    fn found(&self, targets: u64) {
        if let Some(bar) = &self.bar {
            bar.inc_length(targets);
            self.show();
        }
    }

    fn assessed(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            self.show();
        }
    }
}

impl Bar {
    /// A line on stderr while the bar may be drawn: above the bar, never glued to it.
    pub fn say(&self, line: &str) {
        let phase = self.phase();
        match &self.bar {
            Some(bar) if *phase == Phase::Shown => bar.println(line),
            _ => eprintln!("{line}"),
        }
    }

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
        // Values from Azure (a resource group's name) are in the argv: shown, never obeyed.
        self.say(&format!("+ {}", command_line(argv)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::io;
    use std::sync::Arc;

    /// A terminal that keeps what it shows: the rows of text and the cursor, as indicatif and
    /// the commands' own `writeln!(err, ..)` leave them.
    #[derive(Clone, Debug, Default)]
    struct Screen(Arc<Mutex<Cells>>);

    #[derive(Debug, Default)]
    struct Cells {
        rows: Vec<Vec<char>>,
        row: usize,
        col: usize,
    }

    impl Screen {
        fn target(&self) -> Target {
            let screen = self.clone();
            Box::new(move || ProgressDrawTarget::term_like(Box::new(screen.clone())))
        }

        fn put(&self, text: &str) {
            let mut cells = self.0.lock().unwrap();
            for c in text.chars() {
                let (row, col) = (cells.row, cells.col);
                while cells.rows.len() <= row {
                    cells.rows.push(Vec::new());
                }
                let line = &mut cells.rows[row];
                while line.len() <= col {
                    line.push(' ');
                }
                line[col] = c;
                cells.col += 1;
            }
        }

        fn newline(&self) {
            let mut cells = self.0.lock().unwrap();
            cells.row += 1;
            cells.col = 0;
        }

        /// A line a command writes to stderr itself, past the bar.
        fn print(&self, line: &str) {
            self.put(line);
            self.newline();
        }

        /// What a person sees: every non-blank row, trimmed.
        fn lines(&self) -> Vec<String> {
            let cells = self.0.lock().unwrap();
            cells
                .rows
                .iter()
                .map(|r| r.iter().collect::<String>().trim_end().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            100
        }
        fn move_cursor_up(&self, n: usize) -> io::Result<()> {
            let mut cells = self.0.lock().unwrap();
            cells.row = cells.row.saturating_sub(n);
            Ok(())
        }
        fn move_cursor_down(&self, n: usize) -> io::Result<()> {
            self.0.lock().unwrap().row += n;
            Ok(())
        }
        fn move_cursor_right(&self, n: usize) -> io::Result<()> {
            self.0.lock().unwrap().col += n;
            Ok(())
        }
        fn move_cursor_left(&self, n: usize) -> io::Result<()> {
            let mut cells = self.0.lock().unwrap();
            cells.col = cells.col.saturating_sub(n);
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            self.print(s);
            Ok(())
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            self.put(s);
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            let mut cells = self.0.lock().unwrap();
            let row = cells.row;
            if let Some(line) = cells.rows.get_mut(row) {
                line.clear();
            }
            cells.col = 0;
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Long enough for several ticks: an az call takes at least this long.
    fn a_while() {
        std::thread::sleep(Duration::from_millis(400));
    }

    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn the_bar_is_drawn_only_while_the_work_runs() {
        let screen = Screen::default();
        let bar = Bar::drawn_on(true, false, "testing", screen.target());
        bar.call_started(&argv("az account show"));
        a_while();
        bar.call_finished();
        assert_eq!(
            screen.lines(),
            Vec::<String>::new(),
            "nothing before the scope line"
        );
        screen.print("azbook test: storage-account-mmk in subscription s1");
        bar.found(2);
        bar.call_started(&argv("az storage account list"));
        a_while();
        let drawn = screen.lines();
        assert_eq!(drawn.len(), 2, "{drawn:?}");
        assert!(drawn[1].contains("testing (1 az running) 0/2"), "{drawn:?}");
        bar.call_finished();
        bar.assessed();
        bar.assessed();
        bar.finish();
        screen.print("STATUS  PLAYBOOK  RESOURCE  DETAIL");
        a_while();
        assert_eq!(
            screen.lines(),
            [
                "azbook test: storage-account-mmk in subscription s1",
                "STATUS  PLAYBOOK  RESOURCE  DETAIL"
            ]
        );
    }

    #[test]
    fn a_restarted_bar_waits_for_its_work_too() {
        let screen = Screen::default();
        let bar = Bar::drawn_on(true, false, "planning", screen.target());
        bar.found(1);
        bar.assessed();
        bar.finish();
        screen.print("Apply 1 change? [y/N] y");
        bar.restart("applying");
        bar.call_started(&argv("az version"));
        a_while();
        bar.call_finished();
        screen.print("change log: .azbook/runs/x");
        bar.found(1);
        a_while();
        assert!(
            screen.lines()[2].contains("applying (0 az running) 0/1"),
            "{:?}",
            screen.lines()
        );
        bar.assessed();
        bar.finish();
        assert_eq!(
            screen.lines(),
            ["Apply 1 change? [y/N] y", "change log: .azbook/runs/x"]
        );
    }
}
