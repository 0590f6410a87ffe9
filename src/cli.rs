//! The command-line definition (clap) and its translation into the plain option structs of
//! [`crate::app`]. Nothing here decides anything about Azure.

use crate::app::{
    self, ApplyOptions, BackoutOptions, Global, PlanOptions, Prompt, Selection, TestOptions,
};
use crate::az::{AzConfig, RetryPolicy};
use crate::discover::Filters;
use crate::journal::{LEGACY_STATE_DIR, StateLocation};
use crate::report::{ChangeFormat, ListFormat, ReportFile, TestFormat};
use anyhow::Result;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  azbook list                                   the playbooks built in
  azbook test                                   audit az's current subscription
  azbook test --tag data-classification=critical --output json > audit.json
  azbook test --playbook storage-account-mmk -g rg-finance --name 'st*'
  azbook test --all-subscriptions --jobs 16

Exit codes: 0 all compliant, 1 noncompliant found, 2 nothing ran (usage or playbook
error, az missing, not signed in), 3 some targets could not be tested or changed (and any
failure once a change was attempted), 130 interrupted (Ctrl-C or SIGTERM).";

const TEST_EXAMPLES: &str = "\
Examples:
  azbook test                                   every built-in playbook, current subscription
  azbook test --subscription 1111... --subscription 2222...
  azbook test --tag data-classification=critical
  azbook test --playbook sql-database-tde-mmk --resource-group rg-payments
  azbook test --playbook storage-encryption-scope-mmk --name '*/stfinance01/*'
  azbook test --name 'st*' --exclude 'sttmp*' --output json
  azbook test --playbook ./my-control.toml      a playbook of your own

Exit codes: 0 all compliant, 1 noncompliant found, 2 nothing ran, 3 some targets could not be
tested (their results say why; the others are still reported), 130 interrupted (what was read
is printed).";

/// Run security-control runbooks against Azure: test, plan, apply and back out, through the
/// Azure CLI you already use.
#[derive(Parser, Debug)]
#[command(name = "azbook", version, about, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct GlobalArgs {
    /// The Azure CLI to run [default: `az` on PATH]
    #[arg(long, global = true, env = "AZBOOK_AZ", value_name = "PATH")]
    az: Option<PathBuf>,

    /// Most az processes running at once [default: twice the CPUs, 4 to 16]
    #[arg(long, short = 'j', global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: Option<u16>,

    /// Print only results: no scope line, summary or progress
    #[arg(long, short, global = true)]
    quiet: bool,

    /// Print every az command as it starts (to stderr)
    #[arg(long, short, global = true)]
    verbose: bool,

    /// When to colour tables
    #[arg(long, global = true, value_enum, default_value_t = ColourWhen::Auto, value_name = "WHEN")]
    color: ColourWhen,

    /// Seconds a read may take before az is killed
    #[arg(long, global = true, default_value_t = 300.0, value_name = "SECONDS")]
    read_timeout: f64,

    /// Times to retry a call that az gave up on as throttled or transient
    #[arg(long, global = true, default_value_t = 4, value_name = "N")]
    retries: u32,

    /// Seconds before the first retry; each further one waits twice as long, with jitter
    #[arg(long, global = true, default_value_t = 10.0, value_name = "SECONDS")]
    retry_delay: f64,

    /// Seconds a change may take before az is killed (a managed instance's protector change
    /// can take many minutes: plans mark such steps long-running)
    #[arg(long, global = true, default_value_t = 1200.0, value_name = "SECONDS")]
    change_timeout: f64,

    /// Waivers (TOML) [default: ./azbook.toml, else azbook.toml in the state directory]
    #[arg(long, global = true, env = "AZBOOK_WAIVERS", value_name = "FILE")]
    waivers: Option<PathBuf>,

    /// Where change logs are kept, such as a team's shared directory [default: per user,
    /// $XDG_STATE_HOME/azbook, else ~/.local/state/azbook; an existing .azbook in the working
    /// directory is still used, with a notice]
    #[arg(long, global = true, env = "AZBOOK_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ColourWhen {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutputArg {
    Table,
    Json,
}

impl From<OutputArg> for ListFormat {
    fn from(o: OutputArg) -> ListFormat {
        match o {
            OutputArg::Table => ListFormat::Table,
            OutputArg::Json => ListFormat::Json,
        }
    }
}

/// The formats of `test`: JUnit for CI gates, CSV for spreadsheets, Markdown for auditors.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum TestOutputArg {
    Table,
    Json,
    Csv,
    Junit,
    Markdown,
}

impl From<TestOutputArg> for TestFormat {
    fn from(o: TestOutputArg) -> TestFormat {
        match o {
            TestOutputArg::Table => TestFormat::Table,
            TestOutputArg::Json => TestFormat::Json,
            TestOutputArg::Csv => TestFormat::Csv,
            TestOutputArg::Junit => TestFormat::Junit,
            TestOutputArg::Markdown => TestFormat::Markdown,
        }
    }
}

/// The formats of plan, apply and backout: Markdown is the change record.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ChangeOutputArg {
    Table,
    Json,
    Markdown,
}

impl From<ChangeOutputArg> for ChangeFormat {
    fn from(o: ChangeOutputArg) -> ChangeFormat {
        match o {
            ChangeOutputArg::Table => ChangeFormat::Table,
            ChangeOutputArg::Json => ChangeFormat::Json,
            ChangeOutputArg::Markdown => ChangeFormat::Markdown,
        }
    }
}

/// `--report` of `test` and `report merge`: any of test's formats.
fn parse_test_report(s: &str) -> Result<ReportFile<TestFormat>, String> {
    ReportFile::parse(s)
}

/// `--report` of plan, apply and backout: csv and junit are refused here, before anything runs.
fn parse_change_report(s: &str) -> Result<ReportFile<ChangeFormat>, String> {
    ReportFile::parse(s)
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the playbooks available
    #[command(
        after_help = "Examples:\n  azbook list\n  azbook list --output json\n  azbook list --playbook ./my-control.toml   check that a playbook of your own loads"
    )]
    List {
        /// Also load these playbook files (each is validated)
        #[arg(long, value_name = "ID|FILE")]
        playbook: Vec<String>,
        #[arg(long, short, value_enum, default_value_t = OutputArg::Table)]
        output: OutputArg,
    },
    /// Audit every target resource and report, with evidence, whether it complies
    #[command(after_help = TEST_EXAMPLES)]
    Test(TestArgs),
    /// Show what `apply` would change (the exact az commands, and how to undo them), changing nothing
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(PlanArgs),
    /// Make the changes, each recorded in the change log before it is made
    #[command(after_help = APPLY_EXAMPLES)]
    Apply(ApplyArgs),
    /// Restore what an apply run changed, newest change first, from its change log
    #[command(after_help = BACKOUT_EXAMPLES)]
    Backout(BackoutArgs),
    /// Check a saved plan exactly as `apply FILE` would, and show it, changing nothing
    #[command(
        after_help = "Examples:\n  azbook show change-1234.json                  the plan, checked here and now\n  azbook show change-1234.json --output markdown > change-1234.md\n\nThe plan's sha256 is shown, and apply records it, so that an approved change record\ncan be tied to the file applied. Exit codes: 0 valid, 2 refused (the reason is said)."
    )]
    Show(ShowArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    #[command(
        after_help = "Examples:\n  azbook completions bash > /etc/bash_completion.d/azbook\n  azbook completions zsh > \"${fpath[1]}/_azbook\"\n  azbook completions fish > ~/.config/fish/completions/azbook.fish\n  azbook completions powershell >> $PROFILE"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff), generated from the same definitions as --help: azbook(1), or
    /// with a command, the azbook-COMMAND(1) page that azbook(1) refers to
    #[command(
        after_help = "Examples:\n  azbook man | man -l -\n  azbook man apply | man -l -\n  for c in '' list test plan apply backout runs log report completions; do\n    azbook man $c > azbook${c:+-$c}.1; done          every page azbook(1) names"
    )]
    Man {
        /// The command whose page to print (`report` gives azbook-report(1))
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
    /// Work with reports: merge the JSON reports of sharded runs
    #[command(subcommand)]
    Report(ReportCommand),
    /// List the runs in the change log
    #[command(
        after_help = "Examples:\n  azbook runs\n  azbook runs --output json\n  azbook --state-dir /var/lib/azbook runs"
    )]
    Runs {
        #[arg(long, short, value_enum, default_value_t = OutputArg::Table)]
        output: OutputArg,
    },
    /// Show one run's change log: who, when, every command, before and after
    #[command(
        after_help = "Examples:\n  azbook log 20261129T080102Z-apply-3f2a\n  azbook log 20261129T080102Z-apply-3f2a --output json"
    )]
    Log {
        /// The run id (see azbook runs)
        run: String,
        #[arg(long, short, value_enum, default_value_t = OutputArg::Table)]
        output: OutputArg,
    },
}

#[derive(Subcommand, Debug)]
enum ReportCommand {
    /// Combine the JSON reports of runs sharded by subscription into one, in any format
    #[command(
        after_help = "Examples:\n  azbook report merge shard-*.json --output junit > results.xml\n  azbook report merge a.json b.json --output markdown --report merged.json\n\nEach shard is the output of `azbook test --output json --subscription ...`. The same\nresource in two shards with different results is an error naming both files.\nExit codes as for test: 0 all compliant, 1 noncompliant found, 3 some errors."
    )]
    Merge {
        /// The shard reports (`azbook test --output json`)
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[arg(long, short, value_enum, default_value_t = TestOutputArg::Table)]
        output: TestOutputArg,
        /// Also write the merged report to FILE, atomically, as [FORMAT=]FILE; repeatable
        #[arg(long, value_name = "[FORMAT=]FILE", value_parser = parse_test_report)]
        report: Vec<ReportFile<TestFormat>>,
    },
}

const PLAN_EXAMPLES: &str = "\
Examples:
  azbook plan                                   every change the built-in playbooks would make
  azbook plan --tag data-classification=critical --out change-1234.json
  azbook plan --playbook storage-account-mmk --output json

A plan never changes anything. A saved plan (--out) is bound to its tenant, subscriptions,
signed-in identity and playbook versions; apply it with `azbook apply FILE`.
Exit codes: 0 planned, 2 nothing ran, 3 some targets could not be read, 130 interrupted (the
plan is shown, never saved).";

const APPLY_EXAMPLES: &str = "\
Examples:
  azbook apply --dry-run                        the same as azbook plan
  azbook apply change-1234.json                 exactly the saved plan, after checking it
  azbook apply --name 'st*' --max-changes 10 --yes

Every change is written to the change log (--state-dir) before it is made, and verified
after it; undo a run with `azbook backout`.
A plan step that deletes, purges, revokes, regenerates keys or grants access (a custom playbook
must declare it `reversible = false` with a `warning`) runs only with --allow-destructive.
Exit codes: 0 done, 2 nothing ran (declined, lock held, too many changes, refused plan,
destructive steps without --allow-destructive), 3 some changes failed or drifted (or a failure
came after changes were made), 130 interrupted: the first Ctrl-C starts no new change and waits
for the running ones, a second kills them.";

const BACKOUT_EXAMPLES: &str = "\
Examples:
  azbook backout --dry-run                      what backing out the latest apply would do
  azbook backout --yes                          back out the latest apply run with changes
                                                not yet backed out (older ones are named)
  azbook backout --all-unreverted --yes         back out every such run, newest first
  azbook backout 20261129T080102Z-apply-3f2a --yes
  azbook backout --force --yes                  also restore targets that drifted since

Exit codes: 0 restored (or already as before), 2 nothing ran (no run left to back out
included), 3 some targets drifted or failed, 130 interrupted (as for apply).";

#[derive(Args, Debug)]
struct TestArgs {
    #[command(flatten)]
    filters: FilterArgs,
    /// `table` for people, `json` for machines (schema in README.md), `junit` for CI, `csv`,
    /// `markdown` (an audit report grouped by control)
    #[arg(long, short, value_enum, default_value_t = TestOutputArg::Table)]
    output: TestOutputArg,
    /// Also write the results to FILE, atomically, as [FORMAT=]FILE (the format is implied by
    /// .json, .csv, .xml (junit), .md or .txt); repeatable
    #[arg(long, value_name = "[FORMAT=]FILE", value_parser = parse_test_report)]
    report: Vec<ReportFile<TestFormat>>,
    /// Write, per resource, the exact az commands, their time, the signed-in identity and the
    /// raw JSON az printed (credentials removed), with a manifest of sha256 hashes
    #[arg(long, value_name = "DIR")]
    evidence_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct PlanArgs {
    #[command(flatten)]
    filters: FilterArgs,
    /// `table` for people, `json` for machines (schema in README.md), `markdown` for a change
    /// record ready for a change-advisory board
    #[arg(long, short, value_enum, default_value_t = ChangeOutputArg::Table)]
    output: ChangeOutputArg,
    /// Also write the plan to FILE, atomically, as [FORMAT=]FILE (e.g. change-record.md); repeatable
    #[arg(long, value_name = "[FORMAT=]FILE", value_parser = parse_change_report)]
    report: Vec<ReportFile<ChangeFormat>>,
    /// Save the plan to this file, for `azbook apply FILE`
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ApplyArgs {
    /// A plan saved with `azbook plan --out` (instead of filters)
    #[arg(value_name = "FILE", conflicts_with_all = ["playbook", "subscription", "all_subscriptions", "resource_group", "tag", "name", "exclude"])]
    plan: Option<PathBuf>,
    #[command(flatten)]
    filters: FilterArgs,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, short)]
    yes: bool,
    /// Change nothing: show the plan (with FILE: check and show that plan, as `azbook show`)
    #[arg(long)]
    dry_run: bool,
    /// Refuse a run that would change more resources than this
    #[arg(long, default_value_t = 25, value_name = "N")]
    max_changes: usize,
    /// Run steps that delete, purge, revoke, regenerate keys or grant access (marked
    /// `!! DESTRUCTIVE` in the plan); without it apply refuses a plan holding any, before it
    /// asks or changes anything
    #[arg(long)]
    allow_destructive: bool,
    /// Refuse a saved plan older than this (s, m, h or d)
    #[arg(long, default_value = "24h", value_name = "AGE", value_parser = parse_age)]
    max_age: Duration,
    /// `table`, `json` (schema in README.md) or `markdown` (the change record, with the run id)
    #[arg(long, short, value_enum, default_value_t = ChangeOutputArg::Table)]
    output: ChangeOutputArg,
    /// Also write the result to FILE, atomically, as [FORMAT=]FILE; repeatable
    #[arg(long, value_name = "[FORMAT=]FILE", value_parser = parse_change_report)]
    report: Vec<ReportFile<ChangeFormat>>,
}

#[derive(Args, Debug)]
struct ShowArgs {
    /// A plan saved with `azbook plan --out`
    #[arg(value_name = "FILE")]
    plan: PathBuf,
    /// `table`, `json` (schema in README.md) or `markdown` (a change record to approve)
    #[arg(long, short, value_enum, default_value_t = ChangeOutputArg::Table)]
    output: ChangeOutputArg,
    /// Also write the plan to FILE, atomically, as [FORMAT=]FILE; repeatable
    #[arg(long, value_name = "[FORMAT=]FILE", value_parser = parse_change_report)]
    report: Vec<ReportFile<ChangeFormat>>,
    /// Refuse a plan older than this (s, m, h or d), as apply does
    #[arg(long, default_value = "24h", value_name = "AGE", value_parser = parse_age)]
    max_age: Duration,
}

#[derive(Args, Debug)]
struct BackoutArgs {
    /// The apply run to back out [default: the latest apply run whose changes are not yet
    /// backed out; older such runs are named]
    run: Option<String>,
    /// Back out every apply run whose changes are not yet backed out, newest first (a change
    /// window of several runs); each gets its own report and backout run
    #[arg(long, conflicts_with_all = ["run", "report"])]
    all_unreverted: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, short)]
    yes: bool,
    /// Change nothing: show what would be restored
    #[arg(long)]
    dry_run: bool,
    /// Restore targets that drifted since the change too (and read a log whose chain is broken)
    #[arg(long)]
    force: bool,
    /// `table`, `json` (schema in README.md) or `markdown` (the change record)
    #[arg(long, short, value_enum, default_value_t = ChangeOutputArg::Table)]
    output: ChangeOutputArg,
    /// Also write the result to FILE, atomically, as [FORMAT=]FILE; repeatable
    #[arg(long, value_name = "[FORMAT=]FILE", value_parser = parse_change_report)]
    report: Vec<ReportFile<ChangeFormat>>,
}

fn parse_age(s: &str) -> Result<Duration, String> {
    app::parse_duration(s)
}

#[derive(Args, Debug)]
struct FilterArgs {
    /// A built-in playbook id or a playbook file; repeat for more [default: every built-in]
    #[arg(long, value_name = "ID|FILE")]
    playbook: Vec<String>,
    /// A subscription id or name (resolved to its id once); repeat for more [default: az's
    /// current subscription]
    #[arg(long, value_name = "ID|NAME", conflicts_with = "all_subscriptions")]
    subscription: Vec<String>,
    /// Every enabled subscription that `az account list` shows
    #[arg(long)]
    all_subscriptions: bool,
    /// Only resources in this resource group (a name may start with `-`)
    #[arg(long, short = 'g', value_name = "NAME", allow_hyphen_values = true)]
    resource_group: Option<String>,
    /// Only resources with this tag (a database also matches through its server's tags);
    /// repeat to require several
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_tag)]
    tag: Vec<(String, String)>,
    /// Only resources whose name matches this glob (a glob with `/` matches the ARM id);
    /// repeat for any of several
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    name: Vec<glob::Pattern>,
    /// Leave out resources whose name (or ARM id, for a glob with `/`) matches this glob
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    exclude: Vec<glob::Pattern>,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    Filters::parse_tag(s)
}

fn parse_glob(s: &str) -> Result<glob::Pattern, String> {
    Filters::parse_glob(s)
}

/// What the process knows about its surroundings, read once by `main`.
pub struct Terminal {
    pub stdin_is_tty: bool,
    pub stdout_is_tty: bool,
    pub stderr_is_tty: bool,
    /// The command line, for the change log.
    pub args: Vec<String>,
    /// `NO_COLOR` is set (https://no-color.org).
    pub no_color: bool,
    pub cpus: usize,
    /// Ctrl-C and SIGTERM, counted from the start.
    pub interrupt: crate::interrupt::Interrupt,
}

fn seconds(value: f64, flag: &str) -> Result<Duration> {
    if !(value.is_finite() && value > 0.0) {
        anyhow::bail!("--{flag} must be a positive number of seconds, not {value}");
    }
    Ok(Duration::from_secs_f64(value))
}

impl Cli {
    pub fn run(self, terminal: &Terminal, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32> {
        let global = self.global.resolve(terminal)?;
        let prompt = TerminalPrompt {
            interactive: terminal.stdin_is_tty,
        };
        match self.command {
            Command::List { playbook, output } => app::list(&playbook, output.into(), out),
            Command::Test(args) => app::test(&global, &args.into_options(), out, err),
            Command::Plan(args) => app::plan(&global, &args.into_options(), out, err),
            Command::Apply(args) => app::apply(&global, &args.into_options(), &prompt, out, err),
            Command::Backout(args) => {
                app::backout(&global, &args.into_options(), &prompt, out, err)
            }
            Command::Show(args) => {
                let options = app::ShowOptions {
                    plan_file: args.plan,
                    output: args.output.into(),
                    reports: args.report,
                    max_age: args.max_age,
                };
                app::show(&global, &options, out, err)
            }
            Command::Completions { shell } => {
                let mut text = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "azbook", &mut text);
                app::print(out, &String::from_utf8_lossy(&text))?;
                Ok(crate::exit::OK)
            }
            Command::Man { command } => {
                let mut text = Vec::new();
                man_page(command.as_deref())?.render(&mut text)?;
                app::print(out, &String::from_utf8_lossy(&text))?;
                Ok(crate::exit::OK)
            }
            Command::Report(ReportCommand::Merge {
                files,
                output,
                report,
            }) => app::merge_reports(&files, output.into(), &report, global.colour, out),
            Command::Runs { output } => app::runs(&global.state_dir, output.into(), out),
            Command::Log { run, output } => app::log(&global.state_dir, &run, output.into(), out),
        }
    }
}

/// The line `main` prints for an error that ends the run: az's messages and Azure's names in it
/// are escaped like every other output, so that none reaches the terminal raw.
pub fn error_line(error: &anyhow::Error) -> String {
    format!("error: {}", crate::report::printable(&format!("{error:#}")))
}

/// azbook(1), or the page of one of its commands, named azbook-COMMAND as azbook(1) refers to it.
fn man_page(command: Option<&str>) -> Result<clap_mangen::Man> {
    let cli = Cli::command();
    let Some(name) = command else {
        return Ok(clap_mangen::Man::new(cli));
    };
    let Some(sub) = cli.find_subcommand(name) else {
        let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
        anyhow::bail!(
            "azbook has no command `{name}`; its pages are azbook(1) and azbook-COMMAND(1) for {}",
            names.join(", ")
        );
    };
    let page = sub.clone().name(format!("azbook-{name}"));
    Ok(clap_mangen::Man::new(page))
}

impl GlobalArgs {
    /// The options every command shares, with the defaults that depend on the terminal.
    fn resolve(&self, terminal: &Terminal) -> Result<Global> {
        let defaults = AzConfig::default();
        Ok(Global {
            az: AzConfig {
                program: self.az.clone().unwrap_or(defaults.program),
                read_timeout: seconds(self.read_timeout, "read-timeout")?,
                change_timeout: seconds(self.change_timeout, "change-timeout")?,
                retry: RetryPolicy {
                    retries: self.retries,
                    delay: seconds(self.retry_delay, "retry-delay")?,
                    max_delay: defaults.retry.max_delay,
                },
                interrupt: terminal.interrupt,
                kill_at_signal: defaults.kill_at_signal,
            },
            jobs: self
                .jobs
                .map(usize::from)
                .unwrap_or_else(|| (terminal.cpus * 2).clamp(4, 16)),
            quiet: self.quiet,
            verbose: self.verbose,
            colour: match self.color {
                ColourWhen::Always => true,
                ColourWhen::Never => false,
                ColourWhen::Auto => terminal.stdout_is_tty && !terminal.no_color,
            },
            progress: terminal.stderr_is_tty && !self.quiet,
            state_dir: state_location(self.state_dir.clone()),
            waivers: self.waivers.clone(),
            working_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            command_line: terminal.args.clone(),
        })
    }
}

/// The state directory: `named` (`--state-dir`, `AZBOOK_STATE_DIR`), else the `.azbook` an older
/// azbook left in the working directory (with a notice on stderr saying how to move it), else
/// the per-user one from XDG_STATE_HOME or HOME, read here so that the rest of azbook gets plain
/// paths. With none of them, the commands that need a state directory refuse, saying why.
fn state_location(named: Option<PathBuf>) -> StateLocation {
    let legacy_here = named.is_none() && std::path::Path::new(LEGACY_STATE_DIR).is_dir();
    let location = StateLocation::choose(
        named,
        legacy_here,
        std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    );
    if let Some(notice) = location.notice() {
        eprintln!("{notice}");
    }
    location
}

impl TestArgs {
    fn into_options(self) -> TestOptions {
        TestOptions {
            selection: self.filters.into_selection(),
            output: self.output.into(),
            reports: self.report,
            evidence_dir: self.evidence_dir,
        }
    }
}

impl PlanArgs {
    fn into_options(self) -> PlanOptions {
        PlanOptions {
            selection: self.filters.into_selection(),
            output: self.output.into(),
            reports: self.report,
            out: self.out,
        }
    }
}

impl ApplyArgs {
    fn into_options(self) -> ApplyOptions {
        ApplyOptions {
            plan_file: self.plan,
            selection: self.filters.into_selection(),
            output: self.output.into(),
            reports: self.report,
            yes: self.yes,
            dry_run: self.dry_run,
            max_changes: self.max_changes,
            max_age: self.max_age,
            allow_destructive: self.allow_destructive,
        }
    }
}

impl BackoutArgs {
    fn into_options(self) -> BackoutOptions {
        BackoutOptions {
            run: self.run,
            all_unreverted: self.all_unreverted,
            yes: self.yes,
            dry_run: self.dry_run,
            force: self.force,
            output: self.output.into(),
            reports: self.report,
        }
    }
}

impl FilterArgs {
    fn into_selection(self) -> Selection {
        Selection {
            playbooks: self.playbook,
            subscriptions: self.subscription,
            all_subscriptions: self.all_subscriptions,
            filters: Filters {
                resource_group: self.resource_group,
                tags: self.tag,
                names: self.name,
                excludes: self.exclude,
            },
        }
    }
}

/// Asks on the terminal: the question on stderr, the answer from stdin.
struct TerminalPrompt {
    interactive: bool,
}

impl Prompt for TerminalPrompt {
    fn interactive(&self) -> bool {
        self.interactive
    }

    fn confirm(&self, question: &str) -> bool {
        eprint!("{question}");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).is_ok()
            && matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn filters_parse() {
        let cli = Cli::try_parse_from([
            "azbook",
            "test",
            "--tag",
            "a=b",
            "--tag",
            "c=",
            "-g",
            "rg",
            "--name",
            "st*",
            "--subscription",
            "s1",
        ])
        .unwrap();
        let Command::Test(args) = cli.command else {
            panic!("test")
        };
        assert_eq!(
            args.filters.tag,
            [
                ("a".to_string(), "b".to_string()),
                ("c".to_string(), String::new())
            ]
        );
        assert_eq!(args.filters.resource_group.as_deref(), Some("rg"));
        assert!(Cli::try_parse_from(["azbook", "test", "--tag", "nope"]).is_err());
        assert!(
            Cli::try_parse_from([
                "azbook",
                "test",
                "--subscription",
                "s",
                "--all-subscriptions"
            ])
            .is_err()
        );
    }
}
