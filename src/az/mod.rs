//! The one module that starts processes: an `az` argv in, parsed JSON or a typed error out.
//!
//! Every call is an argv vector run through duct, never a shell, so no value from a playbook or
//! from Azure can become an extra command. azbook adds `--subscription=<id>` to every call that
//! reads or changes a resource and `--output=json` to every call, so that `az account set` or
//! `core.output=table` in another terminal cannot change what a run does. Each call has a
//! timeout that kills az's whole process group (az is a Python program that may start others).

mod child;
mod classify;
mod parse;

use crate::fieldtree::FieldTree;
use crate::interrupt::Interrupt;
use child::Child;
use classify::classify;
use parse::parse_output;
use serde_json::Value;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug)]
pub struct AzConfig {
    /// `az` itself, or whatever `--az` / `AZBOOK_AZ` names.
    pub program: PathBuf,
    pub read_timeout: Duration,
    pub change_timeout: Duration,
    pub retry: RetryPolicy,
    /// Ctrl-C and SIGTERM, as counted for this run.
    pub interrupt: Interrupt,
    /// From this many signals on, no az starts and every running one is killed: 1 for a read
    /// run (it stops at once), 2 for a change run (the first signal only stops new changes,
    /// and the running ones finish and are recorded).
    pub kill_at_signal: usize,
}

/// Backoff for calls that az itself already retried and gave up on as throttled or transient.
/// az honours `Retry-After` inside one call; azbook's retries are the slower, outer loop.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first delay; each further one doubles, up to `max_delay`, with jitter.
    pub delay: Duration,
    pub max_delay: Duration,
}

impl Default for AzConfig {
    fn default() -> Self {
        AzConfig {
            program: PathBuf::from("az"),
            read_timeout: Duration::from_secs(5 * 60),
            change_timeout: Duration::from_secs(20 * 60),
            interrupt: Interrupt::never(),
            kill_at_signal: 1,
            retry: RetryPolicy {
                retries: 4,
                delay: Duration::from_secs(10),
                max_delay: Duration::from_secs(120),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Read,
    Change,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// az could not be started at all.
    Missing,
    NotSignedIn,
    Authorization,
    NotFound,
    Throttled,
    Transient,
    BadArguments,
    MalformedOutput,
    Timeout,
    /// Stopped by Ctrl-C or SIGTERM: never started, or killed.
    Interrupted,
    Failed,
}

#[derive(Clone, Debug)]
pub struct AzError {
    pub kind: ErrorKind,
    /// The `(Code)` az printed, when it printed one.
    pub code: Option<String>,
    pub message: String,
    /// The command as run, for messages: `az storage account list --subscription=...`.
    pub command: String,
    pub exit_code: Option<i32>,
}

impl AzError {
    /// What the operator can do about it.
    pub fn hint(&self) -> &'static str {
        match self.kind {
            ErrorKind::Missing => {
                "install the Azure CLI (https://aka.ms/installazurecli), or point --az or AZBOOK_AZ at it"
            }
            ErrorKind::NotSignedIn => {
                "run `az login` (and `az account set --subscription <id>` if needed), then run azbook again"
            }
            ErrorKind::Authorization => {
                "the signed-in identity lacks a permission on this resource: ask for a role that grants it (Reader to test), or run as an identity that has it"
            }
            ErrorKind::NotFound => {
                "the resource, its resource group or the subscription does not exist (or was deleted during the run)"
            }
            ErrorKind::Throttled => {
                "Azure is throttling this subscription: run again later, or with fewer --jobs"
            }
            ErrorKind::Transient => "Azure reported a temporary failure: run again",
            ErrorKind::BadArguments => {
                "az rejected the arguments: this installed az may be too old or too new for the playbook; check `az version`"
            }
            ErrorKind::MalformedOutput => {
                "az printed something that is not JSON: check the az installation and any `az config` output settings"
            }
            ErrorKind::Timeout => {
                "az did not answer in time and was stopped: run again, or raise --read-timeout"
            }
            ErrorKind::Interrupted => {
                "the run was interrupted (Ctrl-C or SIGTERM): run it again for what was not done"
            }
            ErrorKind::Failed if self.message.starts_with("az exited with ") => {
                "az printed no message of its own: run the command above by hand to see what it does, and check --az (or AZBOOK_AZ)"
            }
            ErrorKind::Failed => "az's own message is quoted above",
        }
    }

    /// True when az itself gave up on a condition that passes with time.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throttled | ErrorKind::Transient)
    }
}

impl fmt::Display for AzError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "`{}` failed: ({code}) {}", self.command, self.message),
            None => write!(f, "`{}` failed: {}", self.command, self.message),
        }
    }
}

impl std::error::Error for AzError {}

/// Receives every call as it starts (for `-v`) without the runner knowing who listens.
pub trait CallObserver: Sync {
    fn call_started(&self, argv: &[String]);
    /// Every started call ends with this, whatever its result.
    fn call_finished(&self) {}
}

pub struct Az<'o> {
    config: AzConfig,
    observer: Option<&'o dyn CallObserver>,
    calls: AtomicU64,
    jitter_state: AtomicU64,
    /// A duplicate of the state directory's lock that every az process inherits during apply
    /// and backout, or -1.
    inherited_fd: std::sync::atomic::AtomicI32,
    /// No call starts before this instant: when az gives up on throttling, every worker
    /// waits, so that the pool slows down together instead of hammering the subscription.
    throttled_until: Mutex<Instant>,
    /// The process groups of the az processes running now, for an interrupt to kill.
    running: Arc<Mutex<Vec<u32>>>,
    /// Set when this runner is dropped: its interrupt watcher then ends.
    dropped: Arc<AtomicBool>,
    /// While this runner lives, a signal is counted instead of ending the process.
    _active: crate::interrupt::Active,
}

impl Drop for Az<'_> {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
        let fd = self.inherited_fd.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: the descriptor was opened by share_with_children and is not used after.
            unsafe { libc::close(fd) };
        }
    }
}

impl<'o> Az<'o> {
    pub fn new(config: AzConfig, observer: Option<&'o dyn CallObserver>) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15)
            | 1;
        let config_interrupt = config.interrupt;
        let running = Arc::new(Mutex::new(Vec::new()));
        let dropped = Arc::new(AtomicBool::new(false));
        watch_interrupts(&config, &running, &dropped);
        Az {
            config,
            observer,
            calls: AtomicU64::new(0),
            jitter_state: AtomicU64::new(seed),
            throttled_until: Mutex::new(Instant::now()),
            inherited_fd: std::sync::atomic::AtomicI32::new(-1),
            running,
            dropped,
            _active: config_interrupt.active(),
        }
    }

    /// True once the run has been interrupted so far that no az may start.
    pub fn stopped_by_signal(&self) -> bool {
        self.config.interrupt.count() >= self.config.kill_at_signal
    }

    /// Signals received so far (Ctrl-C, SIGTERM).
    pub fn signals(&self) -> usize {
        self.config.interrupt.count()
    }

    /// Lets every az process from now on inherit `fd` (a descriptor is otherwise closed on
    /// exec). A run passes its state-directory lock, so that the lock is held until the last az
    /// it started has ended, even when azbook itself is killed. A duplicate without close-on-exec
    /// does it, so that az is still started with posix_spawn rather than a slower fork.
    pub fn share_with_children(&self, fd: std::os::fd::RawFd) {
        // SAFETY: dup(2) returns a new descriptor for the same open file (and its lock), with
        // close-on-exec clear; it is closed when this runner is dropped.
        let shared = unsafe { libc::dup(fd) };
        if shared >= 0 {
            let old = self.inherited_fd.swap(shared, Ordering::SeqCst);
            if old >= 0 {
                // SAFETY: `old` is a descriptor this runner opened with dup above.
                unsafe { libc::close(old) };
            }
        }
    }

    /// How many az processes this runner started (retries included).
    pub fn calls_made(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The exact argv that runs for `argv` (which starts with `az`): the subscription and the
    /// output format appended, the program replaced by the configured one.
    pub fn full_argv(argv: &[String], subscription: Option<&str>) -> Vec<String> {
        let mut full: Vec<String> = argv.to_vec();
        if let Some(sub) = subscription {
            full.push(format!("--subscription={sub}"));
        }
        full.push("--output=json".to_string());
        full
    }

    /// Runs one az command and parses what it printed. Throttled and transient failures are
    /// retried with exponential backoff and jitter; all others return at once.
    pub fn run(
        &self,
        argv: &[String],
        subscription: Option<&str>,
        kind: CallKind,
    ) -> Result<Value, AzError> {
        self.run_full(&Self::full_argv(argv, subscription), kind)
    }

    /// Runs an argv exactly as given (already carrying `--subscription` and `--output`): what a
    /// plan showed and the change log recorded is what runs.
    pub fn run_full(&self, full: &[String], kind: CallKind) -> Result<Value, AzError> {
        self.run_with(full, kind, None)
    }

    /// Runs a list command and keeps only the given top-level fields of each item, parsing the
    /// output item by item: a list of 10,000 storage accounts is tens of megabytes of JSON, of
    /// which a playbook reads a few fields.
    pub fn run_list(
        &self,
        argv: &[String],
        subscription: Option<&str>,
        keep: &FieldTree,
    ) -> Result<Value, AzError> {
        let keep = (!keep.is_all()).then_some(keep);
        self.run_with(&Self::full_argv(argv, subscription), CallKind::Read, keep)
    }

    fn run_with(
        &self,
        full: &[String],
        kind: CallKind,
        keep: Option<&FieldTree>,
    ) -> Result<Value, AzError> {
        let timeout = match kind {
            CallKind::Read => self.config.read_timeout,
            CallKind::Change => self.config.change_timeout,
        };
        let mut attempt = 0;
        loop {
            self.wait_for_throttling();
            let result = self.run_once(full, timeout, keep);
            match result {
                Err(e) if e.is_retryable() && attempt < self.config.retry.retries => {
                    let delay = self.backoff(attempt);
                    if e.kind == ErrorKind::Throttled {
                        let mut until = self.throttled_until.lock().expect("throttle lock");
                        *until = (*until).max(Instant::now() + delay);
                    } else {
                        std::thread::sleep(delay);
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn wait_for_throttling(&self) {
        let until = *self.throttled_until.lock().expect("throttle lock");
        let now = Instant::now();
        if until > now {
            std::thread::sleep(until - now);
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let policy = &self.config.retry;
        let exp = policy
            .delay
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(policy.max_delay);
        // Full jitter over the upper half: parallel workers that failed together do not all
        // come back at the same instant.
        let r = self.next_random() as f64 / u64::MAX as f64;
        exp.mul_f64(0.5 + 0.5 * r)
    }

    fn next_random(&self) -> u64 {
        // xorshift64*: jitter needs spread, not cryptographic quality.
        let mut x = self.jitter_state.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.jitter_state.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn run_once(
        &self,
        full: &[String],
        timeout: Duration,
        keep: Option<&FieldTree>,
    ) -> Result<Value, AzError> {
        if self.stopped_by_signal() {
            return Err(interrupted(full));
        }
        if let Some(observer) = self.observer {
            observer.call_started(full);
        }
        let result = self.run_process(full, timeout, keep);
        let result = match result {
            Err(_) if self.stopped_by_signal() => Err(interrupted(full)),
            other => other,
        };
        if let Some(observer) = self.observer {
            observer.call_finished();
        }
        result
    }

    fn run_process(
        &self,
        full: &[String],
        timeout: Duration,
        keep: Option<&FieldTree>,
    ) -> Result<Value, AzError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let command = display_command(full);
        let error = |kind, message: String, exit_code| AzError {
            kind,
            code: None,
            message,
            command: command.clone(),
            exit_code,
        };
        let mut child = Child::start(&self.config.program, &full[1..], Instant::now() + timeout)
            .map_err(|e| {
                let what = match e.kind() {
                    io::ErrorKind::NotFound => "not found".to_string(),
                    io::ErrorKind::PermissionDenied => "not executable".to_string(),
                    _ => e.to_string(),
                };
                let program = self.config.program.display();
                error(
                    ErrorKind::Missing,
                    format!("cannot run `{program}`: {what}"),
                    None,
                )
            })?;
        let pid = child.pid();
        if let Some(pid) = pid {
            self.running.lock().expect("running lock").push(pid);
        }
        let _running = Running {
            running: &self.running,
            pid,
        };
        let parsed = parse_output(child.stdout(), keep);
        if let Err(e) = &parsed
            && e.io_error_kind() == Some(io::ErrorKind::TimedOut)
        {
            drop(child);
            return Err(timed_out(error, timeout));
        }
        let head = String::from_utf8_lossy(child.stdout_head()).into_owned();
        let exit = match child.finish() {
            Ok(exit) => exit,
            Err(child::Failure::Timeout) => return Err(timed_out(error, timeout)),
            Err(child::Failure::Io(e)) => {
                return Err(error(
                    ErrorKind::Failed,
                    format!("reading az's output failed: {e}"),
                    None,
                ));
            }
        };
        let exit_code = exit.status.code();
        if !exit.status.success() {
            let (kind, code, message) = classify(exit_code, &exit.stderr);
            return Err(AzError {
                code,
                ..error(kind, message, exit_code)
            });
        }
        parsed.map_err(|e| {
            error(
                ErrorKind::MalformedOutput,
                format!("az exited 0 but its output is not JSON ({e}); it began with {head:?}"),
                exit_code,
            )
        })
    }
}

/// Takes a finished az off the list of those an interrupt kills.
struct Running<'r> {
    running: &'r Mutex<Vec<u32>>,
    pid: Option<u32>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            self.running
                .lock()
                .expect("running lock")
                .retain(|p| *p != pid);
        }
    }
}

/// Kills every running az (its whole process group) once the run has been interrupted far
/// enough, until the runner is dropped. A thread of its own, since a worker waiting on az
/// cannot notice a signal.
fn watch_interrupts(config: &AzConfig, running: &Arc<Mutex<Vec<u32>>>, dropped: &Arc<AtomicBool>) {
    let (interrupt, kill_at) = (config.interrupt, config.kill_at_signal);
    let (running, dropped) = (Arc::clone(running), Arc::clone(dropped));
    std::thread::spawn(move || {
        while !dropped.load(Ordering::SeqCst) {
            if interrupt.count() >= kill_at {
                for pid in running.lock().expect("running lock").iter() {
                    // SAFETY: kill(2) with a negative pid signals the group made for that az.
                    unsafe { libc::kill(-(*pid as i32), libc::SIGKILL) };
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

fn interrupted(full: &[String]) -> AzError {
    AzError {
        kind: ErrorKind::Interrupted,
        code: None,
        message: "stopped by an interrupt (Ctrl-C or SIGTERM)".into(),
        command: display_command(full),
        exit_code: None,
    }
}

fn timed_out(
    error: impl Fn(ErrorKind, String, Option<i32>) -> AzError,
    timeout: Duration,
) -> AzError {
    error(
        ErrorKind::Timeout,
        format!(
            "no answer after {}s; az and its children were killed",
            timeout.as_secs_f64()
        ),
        None,
    )
}

/// A command line for people to read and paste, which a POSIX shell reads back as the same
/// argv: plain words as they are, others in single quotes, and words holding control characters
/// in `$'...'` (bash, zsh, ksh), so that a newline in a value neither breaks the line nor hides.
pub fn display_command(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_word(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_word(word: &str) -> String {
    use std::fmt::Write as _;
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@%+".contains(c));
    if plain {
        return word.to_string();
    }
    if !word.chars().any(char::is_control) {
        return format!("'{}'", word.replace('\'', r"'\''"));
    }
    let mut out = String::from("$'");
    for c in word.chars() {
        match c {
            '\n' => out.push_str(r"\n"),
            '\t' => out.push_str(r"\t"),
            '\r' => out.push_str(r"\r"),
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            c if c.is_control() && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_argv_appends_subscription_and_output() {
        let argv: Vec<String> = ["az", "storage", "account", "list"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            Az::full_argv(&argv, Some("sub")),
            [
                "az",
                "storage",
                "account",
                "list",
                "--subscription=sub",
                "--output=json"
            ]
        );
        assert_eq!(Az::full_argv(&argv[..1], None), ["az", "--output=json"]);
    }

    #[test]
    fn shell_words_read_back_as_the_same_argv() {
        assert_eq!(shell_word("--name=st1"), "--name=st1");
        assert_eq!(
            shell_word("--resource-group=-rg.ops(1)"),
            "'--resource-group=-rg.ops(1)'"
        );
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("a\nb'c\x1b"), r"$'a\nb\'c\x1b'");
        // Checked by a real shell when one is here.
        let argv = ["x y", "it's", "", "--k=v(1)", "a\nb", "$HOME", "\\n"];
        let line = display_command(&argv.map(str::to_string));
        if let Ok(output) = std::process::Command::new("bash")
            .args(["-c", &format!("printf '%s\\0' {line}")])
            .output()
        {
            let words: Vec<&str> = std::str::from_utf8(&output.stdout)
                .unwrap()
                .split_terminator('\0')
                .collect();
            assert_eq!(words, argv);
        }
    }

    #[test]
    fn throttling_holds_back_every_worker() {
        let az = fake_az();
        let until = Instant::now() + Duration::from_millis(150);
        *az.throttled_until.lock().unwrap() = until;
        run(&az, "echo '{}'", &[], None).unwrap();
        assert!(
            Instant::now() >= until,
            "a call started while the pool was held back"
        );
    }

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let argv: Vec<String> = ["az", "--resource-group=-rg ops(1)", "--name=it's"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            display_command(&argv),
            r#"az '--resource-group=-rg ops(1)' '--name=it'\''s'"#
        );
    }

    /// A fake `az`: `/bin/sh -c BODY az ARGS...`, so that the runner is tested without azsim
    /// (and without writing scripts that a concurrent fork could hold open).
    fn fake_az() -> Az<'static> {
        let config = AzConfig {
            program: PathBuf::from("/bin/sh"),
            read_timeout: Duration::from_millis(500),
            retry: RetryPolicy {
                retries: 3,
                delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            },
            ..AzConfig::default()
        };
        Az::new(config, None)
    }

    fn run(
        az: &Az,
        body: &str,
        args: &[&str],
        subscription: Option<&str>,
    ) -> Result<Value, AzError> {
        let mut argv = vec![
            "az".to_string(),
            "-c".to_string(),
            body.to_string(),
            "az".to_string(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        az.run(&argv, subscription, CallKind::Read)
    }

    #[test]
    fn passes_each_argument_as_one_element_and_parses_json() {
        let az = fake_az();
        let body = r#"printf '['; for a in "$@"; do printf '"%s",' "$a"; done; printf '"end"]'"#;
        let out = run(&az, body, &["x", "--name=a b;$(id)"], Some("s")).unwrap();
        assert_eq!(
            out,
            serde_json::json!([
                "x",
                "--name=a b;$(id)",
                "--subscription=s",
                "--output=json",
                "end"
            ])
        );
        assert_eq!(az.calls_made(), 1);
    }

    #[test]
    fn timeout_kills_the_whole_process_tree() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let az = fake_az();
        let body = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let err = run(&az, &body, &[], None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Timeout);
        assert!(err.message.contains("killed"), "{}", err.message);
        let pid = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .to_string();
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|stat| {
                    stat.split_whitespace()
                        .nth(2)
                        .is_none_or(|state| state != "Z")
                })
                .unwrap_or(false)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(), "the grandchild {pid} outlived the timeout");
    }

    #[test]
    fn retries_throttling_and_not_bad_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("attempts");
        let az = fake_az();
        let body = format!(
            "echo x >> {s}; if [ $(wc -l < {s}) -lt 3 ]; then echo 'ERROR: (TooManyRequests) slow down' >&2; exit 1; fi; echo '{{}}'",
            s = state.display()
        );
        assert_eq!(run(&az, &body, &[], None).unwrap(), serde_json::json!({}));
        assert_eq!(az.calls_made(), 3);

        let az = fake_az();
        let err = run(
            &az,
            "echo 'ERROR: unrecognized arguments: --x' >&2; exit 2",
            &[],
            None,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadArguments);
        assert_eq!(az.calls_made(), 1);
    }

    #[test]
    fn empty_output_is_null_and_garbage_is_malformed() {
        assert_eq!(run(&fake_az(), "true", &[], None).unwrap(), Value::Null);
        let err = run(&fake_az(), "echo '{\"a\":'", &[], None).unwrap_err();
        assert_eq!(err.kind, ErrorKind::MalformedOutput);
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let config = AzConfig {
            retry: RetryPolicy {
                retries: 5,
                delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(350),
            },
            ..AzConfig::default()
        };
        let az = Az::new(config, None);
        for attempt in 0..6 {
            let d = az.backoff(attempt);
            let exp =
                Duration::from_millis(100 * 2u64.pow(attempt)).min(Duration::from_millis(350));
            assert!(
                d >= exp / 2 && d <= exp,
                "attempt {attempt}: {d:?} vs {exp:?}"
            );
        }
    }
}
