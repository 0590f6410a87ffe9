//! Terminal safety and layout: what Azure returns (a resource group's name, a user name, an error
//! message) reaches a person's terminal with its control and bidirectional characters shown
//! escaped, never obeyed; columns line up by display width; and no progress line stays on screen.

use crate::harness::*;
use serde_json::{Value, json};
use std::process::Output;

/// A resource group whose name holds an escape sequence (red) and a right-to-left override that
/// would show `rg-red\u{202e}gpj.exe` as `rg-redexe.jpg`.
const RG: &str = "rg-\u{1b}[31mred\u{202e}gpj.exe";
/// The same name as every format for people shows it.
const RG_SHOWN: &str = r"rg-\u{1b}[31mred\u{202e}gpj.exe";
/// The same name as a command line shows it: ANSI-C quotes that a shell reads back.
const RG_ARG: &str = r"$'--resource-group=rg-\x1b[31mred\u202egpj.exe'";
/// The user az is signed in as: a CJK name (two columns a character) with an escape sequence.
const USER: &str = "管理者\u{1b}[2J@contoso.com";

/// One storage account with a customer-managed key and one SQL server whose database list
/// fails with an error message that holds control characters, both in the group `RG`; and an
/// account with Microsoft-managed keys in a group with a CJK name.
fn hostile_world() -> Value {
    let mut world = edge_world();
    world["user"]["name"] = json!(USER);
    world["storageAccounts"] = json!([
        account(
            SUB_A,
            RG,
            "stcmk",
            cmk("kv-finance", "st-key", json!("")),
            json!({})
        ),
        account(
            SUB_A,
            "データ基盤",
            "stwide",
            mmk("Microsoft.Storage"),
            json!({})
        ),
    ]);
    world["sqlServers"] = json!([
        {"subscription": SUB_A, "resourceGroup": RG, "name": "sql1", "tags": null,
         "protector": {"serverKeyType": "ServiceManaged", "uri": null, "autoRotationEnabled": false},
         "keys": []}
    ]);
    world["sqlDatabases"] = json!([]);
    world["faults"] = json!([{"command": "sql db list", "error": {
        "code": "AuthorizationFailed", "message": "no access to \u{1b}[2J\u{202e}sql1", "exitCode": 1}}]);
    world
}

/// Every character in `text` that a terminal would obey rather than show: control characters
/// other than the line breaks the format writes (LF, and CR LF where `crlf`), and bidirectional
/// controls.
fn raw_controls(text: &str, crlf: bool) -> Vec<char> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .iter()
        .enumerate()
        .filter(|&(i, &c)| {
            let line_break = c == '\n' || (crlf && c == '\r' && chars.get(i + 1) == Some(&'\n'));
            let bidi = matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            (c.is_control() && !line_break) || bidi
        })
        .map(|(_, &c)| c)
        .collect()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// The columns a terminal gives `text`: two for the CJK characters these tests use, one for
/// the rest (ASCII, and escapes as shown).
fn columns(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '\u{3000}'..='\u{9fff}' => 2,
            _ => 1,
        })
        .sum()
}

/// Runs azbook and requires exit code `code`, showing its stderr otherwise.
fn run(sim: &Sim, args: &[&str], code: i32) -> Output {
    let out = sim.azbook().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
    out
}

#[test]
fn the_table_shows_names_and_messages_from_azure_escaped() {
    let sim = Sim::new(&hostile_world());
    let out = run(&sim, &["test"], 3);
    let text = stdout(&out);
    assert_eq!(raw_controls(&text, false), [], "{text}");
    let row = |resource: &str| {
        text.lines()
            .find(|l| l.contains(resource))
            .unwrap_or_else(|| panic!("no {resource} in\n{text}"))
    };
    assert!(row(&format!("{RG_SHOWN}/stcmk")).starts_with("noncompliant"));
    let error = text.lines().find(|l| l.starts_with("error")).unwrap();
    assert!(
        error.contains(r"no access to \u{1b}[2J\u{202e}sql1"),
        "{error}"
    );
    assert!(error.contains(&format!("{RG_SHOWN}/sql1")), "{error}");
    // The scope line on stderr names the signed-in identity, escaped like the table.
    let err = stderr(&out);
    assert_eq!(raw_controls(&err, false), [], "{err}");
    assert!(
        err.contains(r"signed in as 管理者\u{1b}[2J@contoso.com"),
        "{err}"
    );
}

#[test]
fn an_error_that_ends_the_run_reaches_the_terminal_escaped() {
    let sim = Sim::new(&hostile_world());
    let out = run(&sim, &["log", "run-\u{1b}[2J\u{202e}x"], 2);
    let err = stderr(&out);
    assert_eq!(raw_controls(&err, false), [], "{err}");
    assert!(err.starts_with("error: "), "{err}");
}

#[test]
fn every_format_for_people_escapes_them_and_json_keeps_them_exact() {
    let sim = Sim::new(&hostile_world());
    for format in ["csv", "junit", "markdown"] {
        let text = stdout(&run(&sim, &["test", "--output", format], 3));
        assert_eq!(
            raw_controls(&text, format == "csv"),
            [],
            "{format}:\n{text}"
        );
        assert!(
            text.contains(r"\u{1b}") && text.contains(r"\u{202e}"),
            "{format}:\n{text}"
        );
    }
    let csv = stdout(&run(&sim, &["test", "--output", "csv"], 3));
    assert!(
        csv.lines()
            .any(|l| l.contains(&format!(",{RG_SHOWN},stcmk,noncompliant,"))),
        "{csv}"
    );

    // JSON is for programs: every value exactly as Azure gave it (serde writes ESC as \u001b
    // and leaves U+202E as it is, both of which read back as the same string).
    let out = run(&sim, &["test", "--output", "json"], 3);
    let results = results_by_resource(&out.stdout);
    assert!(
        results.contains_key(&storage_id(SUB_A, RG, "stcmk").to_lowercase()),
        "{results:?}"
    );
    let json = stdout(&out);
    assert!(json.contains(r"rg-\u001b[31mred") && json.contains('\u{202e}'));
}

#[test]
fn table_columns_line_up_by_display_width() {
    let sim = Sim::new(&hostile_world());
    let text = stdout(&run(
        &sim,
        &["test", "--playbook", "storage-account-mmk"],
        1,
    ));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("データ基盤/stwide")),
        "{text}"
    );
    let detail = |line: &str, cell: &str| columns(&line[..line.find(cell).unwrap()]);
    let at = detail(lines[0], "DETAIL");
    for line in &lines[1..] {
        assert_eq!(detail(line, "encrypted with"), at, "\n{text}");
    }
}

#[test]
fn the_change_log_shows_commands_and_people_escaped_and_aligned() {
    let sim = Sim::new(&hostile_world());
    let applied = run(
        &sim,
        &["apply", "--yes", "--playbook", "storage-account-mmk"],
        0,
    );
    let table = stdout(&applied);
    assert_eq!(raw_controls(&table, false), [], "{table}");
    assert!(table.contains(&format!("{RG_SHOWN}/stcmk")), "{table}");

    let runs = stdout(&run(&sim, &["runs"], 0));
    assert_eq!(raw_controls(&runs, false), [], "{runs}");
    let lines: Vec<&str> = runs.lines().collect();
    assert!(lines[1].contains(r"管理者\u{1b}[2J@contoso.com"), "{runs}");
    let column = |line: &str, cell: &str| columns(&line[..line.find(cell).unwrap()]);
    assert_eq!(
        column(lines[1], SUB_A),
        column(lines[0], "SUBSCRIPTIONS"),
        "the column after a CJK user name lines up:\n{runs}"
    );

    let id = sim.azbook_json(&["runs", "--output", "json"], 0)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let log = stdout(&run(&sim, &["log", &id], 0));
    assert_eq!(raw_controls(&log, false), [], "{log}");
    let command = log
        .lines()
        .find(|l| l.trim_start().starts_with("command:"))
        .unwrap();
    assert!(command.contains(RG_ARG), "{command}");
    assert!(
        log.contains(r"By:             管理者\u{1b}[2J@contoso.com"),
        "{log}"
    );
}

#[test]
fn verbose_commands_show_bidirectional_controls_escaped() {
    let sim = Sim::new(&hostile_world());
    let out = run(
        &sim,
        &["-v", "test", "--playbook", "sql-database-tde-mmk"],
        3,
    );
    let err = stderr(&out);
    let commands: Vec<&str> = err.lines().filter(|l| l.starts_with("+ az ")).collect();
    let list = commands
        .iter()
        .find(|l| l.starts_with("+ az sql db list"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(list.contains(RG_ARG), "{list}");
    for line in commands {
        assert_eq!(raw_controls(line, false), [], "{line}");
    }
}

/// What a terminal shows after `args` ran with stdout and stderr on it, as (the bytes written,
/// the non-blank lines of the screen).
fn on_terminal(sim: &Sim, args: &[&str]) -> (String, Vec<String>) {
    use std::fs::File;
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let (mut leader, mut follower) = (0, 0);
    let size = libc::winsize {
        ws_row: 60,
        ws_col: 250,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new descriptors, which are owned by the Files made from them.
    let made = unsafe {
        libc::openpty(
            &mut leader,
            &mut follower,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(made, 0, "openpty: {}", std::io::Error::last_os_error());
    let (mut leader, follower) =
        unsafe { (File::from_raw_fd(leader), File::from_raw_fd(follower)) };
    let mut cmd = sim.azbook_process();
    cmd.args(["--retry-delay", "0.01"])
        .args(args)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm-256color")
        .stdin(std::process::Stdio::null())
        .stdout(follower.try_clone().unwrap())
        .stderr(follower);
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // its copies of the terminal, so that reading ends when azbook does
    let mut bytes = Vec::new();
    let mut buf = [0; 4096];
    loop {
        match leader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            // Linux answers EIO once the last holder of the other side has closed it.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) => panic!("reading the terminal: {e}"),
        }
    }
    child.wait().unwrap();
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    let screen = screen(&raw);
    (raw, screen)
}

/// The lines a terminal shows after `raw`: text, CR, LF, cursor moves (`ESC [ n A/B/C/D/G`) and
/// erasing (`ESC [ n K/J`); other sequences (colours, cursor visibility) change no text.
fn screen(raw: &str) -> Vec<String> {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        while rows.len() <= row {
            rows.push(Vec::new());
        }
        match c {
            '\r' => col = 0,
            '\n' => row += 1,
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut params = String::new();
                let mut end = ' ';
                for p in chars.by_ref() {
                    if p.is_ascii_digit() || p == ';' || p == '?' {
                        params.push(p);
                    } else {
                        end = p;
                        break;
                    }
                }
                let n: usize = params.trim_start_matches('?').parse().unwrap_or(0);
                let line = &mut rows[row];
                match end {
                    'A' => row = row.saturating_sub(n.max(1)),
                    'B' => row += n.max(1),
                    'C' => col += n.max(1),
                    'D' => col = col.saturating_sub(n.max(1)),
                    'G' => col = n.max(1) - 1,
                    'K' if n == 0 => line.truncate(col),
                    'K' if n == 1 => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
                    'K' => line.clear(),
                    'J' => {
                        line.truncate(col);
                        rows.truncate(row + 1);
                    }
                    _ => {}
                }
            }
            '\u{1b}' => {
                chars.next();
            }
            c if c.is_control() => {}
            c => {
                let line = &mut rows[row];
                while line.len() <= col {
                    line.push(' ');
                }
                line[col] = c;
                col += 1;
            }
        }
    }
    rows.iter()
        .map(|r| r.iter().collect::<String>().trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn no_progress_line_stays_on_the_screen() {
    let mut world = edge_world();
    // Slow enough calls for the bar to be drawn and redrawn (it ticks every 120 ms).
    world["settings"]["latencyMs"] = json!(200);
    let sim = Sim::new(&world);
    for (args, scope, bar) in [
        (&["test"][..], "azbook test: ", "testing ("),
        (
            &["apply", "--yes", "--playbook", "sql-database-tde-mmk"][..],
            "azbook apply: ",
            "applying (",
        ),
    ] {
        let (raw, screen) = on_terminal(&sim, args);
        assert!(
            raw.contains(bar),
            "the bar was drawn while the work ran: {raw:?}"
        );
        assert!(
            screen[0].starts_with(scope),
            "the scope line comes first, on a clean line: {screen:#?}"
        );
        assert!(
            !screen.iter().any(|l| l.contains("az running")),
            "no progress line is left: {screen:#?}"
        );
        assert!(
            screen.iter().any(|l| l.starts_with("STATUS ")),
            "{screen:#?}"
        );
    }
}
