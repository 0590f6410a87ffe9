//! The state directory follows the operator (issue 13, point 4): per user by default, private,
//! refused when others can write it, an older `.azbook` still found, and a damaged change log
//! still readable past the damage.

use crate::harness::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The per-user state directory of the Sim's azbook: `$XDG_STATE_HOME/azbook`.
fn per_user(sim: &Sim) -> PathBuf {
    sim.dir.path().join("xdg-state/azbook")
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The one run directory under `state`.
fn only_run(state: &Path) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.pop().unwrap()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_run_applied_in_one_directory_is_backed_out_from_another() {
    let sim = Sim::new(&edge_world());
    let original = essentials(&sim.dump());
    sim.azbook()
        .args(["apply", "--yes", "--playbook", "storage-account-mmk"])
        .assert()
        .code(0);
    assert!(!sim.dir.path().join(".azbook").exists());
    only_run(&per_user(&sim));

    let elsewhere = sim.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = sim
        .azbook()
        .current_dir(&elsewhere)
        .args(["backout", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(essentials(&sim.dump()), original);
    assert!(!elsewhere.join(".azbook").exists());
}

#[test]
fn what_azbook_creates_in_the_state_directory_is_private() {
    let sim = Sim::new(&edge_world());
    sim.azbook()
        .args(["apply", "--yes", "--playbook", "storage-account-mmk"])
        .assert()
        .code(0);
    let state = per_user(&sim);
    let run = only_run(&state);
    for dir in [
        state.clone(),
        state.join("runs"),
        run.clone(),
        run.join("playbooks"),
    ] {
        assert_eq!(mode_of(&dir), 0o700, "{}", dir.display());
    }
    for file in [
        state.join("lock"),
        run.join("journal.jsonl"),
        run.join("playbooks/storage-account-mmk.toml"),
    ] {
        assert_eq!(mode_of(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn a_state_directory_others_can_write_is_refused_for_changes_and_warned_of_for_reading() {
    let sim = Sim::new(&edge_world());
    let shared = sim.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o777);
    let out = sim
        .azbook()
        .arg("--state-dir")
        .arg(&shared)
        .args(["apply", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains(&format!(
            "the state directory {} is world-writable (mode 0777)",
            shared.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("chmod -R o-w"), "{stderr}");
    assert!(stderr.contains("Nothing was changed"), "{stderr}");
    assert!(sim.mutating_calls().is_empty());
    assert!(!shared.join("runs").exists() && !shared.join("lock").exists());

    // Reading it is allowed, with the same said as a warning.
    let out = sim
        .azbook()
        .arg("--state-dir")
        .arg(&shared)
        .args(["runs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr_of(&out).starts_with("warning: the state directory"),
        "{}",
        stderr_of(&out)
    );

    // The per-user directory must not even be group-writable.
    std::fs::create_dir_all(per_user(&sim)).unwrap();
    chmod(&per_user(&sim), 0o770);
    let out = sim.azbook().args(["apply", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("is group-writable (mode 0770)"),
        "{}",
        stderr_of(&out)
    );
    assert!(sim.mutating_calls().is_empty());
}

#[test]
fn an_older_azbooks_state_directory_here_is_still_used_with_a_notice() {
    let sim = Sim::new(&edge_world());
    let original = essentials(&sim.dump());
    // What an older azbook left: its runs in .azbook in the working directory.
    sim.azbook()
        .args(["--state-dir", ".azbook", "apply", "--yes"])
        .args(["--playbook", "storage-account-mmk"])
        .assert()
        .code(0);
    let out = sim.azbook().args(["backout", "--yes"]).output().unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(essentials(&sim.dump()), original, "the run was found");
    let notices: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("notice:"))
        .collect();
    assert_eq!(notices.len(), 1, "{stderr}");
    let to = per_user(&sim);
    assert!(
        notices[0].contains(&format!("mv .azbook {}", to.display())),
        "{stderr}"
    );
    assert!(notices[0].contains("--state-dir .azbook"), "{stderr}");
    assert!(
        !to.exists(),
        "nothing was written to the per-user directory"
    );
    // Named, it is used without a notice.
    let out = sim
        .azbook()
        .args(["--state-dir", ".azbook", "runs"])
        .output()
        .unwrap();
    assert!(!stderr_of(&out).contains("notice"), "{}", stderr_of(&out));
}

#[test]
fn without_home_only_the_commands_that_need_a_state_directory_refuse() {
    let sim = Sim::new(&edge_world());
    let bare = || {
        let mut cmd = sim.azbook();
        cmd.env_remove("HOME").env_remove("XDG_STATE_HOME");
        cmd
    };
    for args in [vec!["apply", "--yes"], vec!["runs"]] {
        let out = bare().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = stderr_of(&out);
        assert!(
            stderr.contains("there is no state directory")
                && stderr.contains("XDG_STATE_HOME")
                && stderr.contains("--state-dir"),
            "{args:?}: {stderr}"
        );
    }
    assert!(sim.mutating_calls().is_empty());
    assert!(!sim.dir.path().join(".azbook").exists());
    // An audit needs none.
    bare().args(["test", "-q"]).assert().code(1);
}

#[test]
fn a_damaged_first_change_leaves_the_rest_of_the_log_readable() {
    let sim = Sim::new(&edge_world());
    let original = essentials(&sim.dump());
    sim.azbook()
        .args([
            "--jobs",
            "1",
            "apply",
            "--yes",
            "--playbook",
            "storage-account-mmk",
        ])
        .assert()
        .code(0);
    let run_dir = only_run(&per_user(&sim));
    let run = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let journal = run_dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].contains("\"kind\":\"intent\""), "{}", lines[1]);
    let first: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    let lost = first["resource"].as_str().unwrap().to_string();
    let later: serde_json::Value = serde_json::from_str(
        lines
            .iter()
            .skip(2)
            .find(|l| l.contains("\"kind\":\"intent\""))
            .unwrap(),
    )
    .unwrap();
    let kept = later["resource"].as_str().unwrap().to_string();
    // One byte of the first change, inside its step name: still JSON, no longer what was hashed.
    let damaged = text.replacen("\"stepName\":\"switch", "\"stepName\":\"swatch", 1);
    assert_eq!(damaged.len(), text.len());
    std::fs::write(&journal, damaged).unwrap();

    let out = sim.azbook().args(["log", &run]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let view = String::from_utf8(out.stdout).unwrap();
    assert!(
        view.contains("!! TAMPERED: line 3 does not follow line 2"),
        "{view}"
    );
    assert!(
        view.contains("0 changes recorded before the break"),
        "{view}"
    );
    let after = view
        .find("!! After the break")
        .unwrap_or_else(|| panic!("{view}"));
    assert!(view[after..].contains(&kept), "{view}");
    let json = sim.azbook_json(&["log", &run, "--output", "json"], 3);
    let after_break = json["afterBreak"].as_array().unwrap();
    assert!(
        after_break
            .iter()
            .any(|e| e["kind"] == "intent" && e["resource"] == kept.as_str()),
        "{json}"
    );

    // Backout still refuses it without --force.
    let changes_so_far = sim.mutating_calls().len();
    let out = sim
        .azbook()
        .args(["backout", "--yes", &run])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("altered"), "{}", stderr_of(&out));
    assert_eq!(sim.mutating_calls().len(), changes_so_far);

    // With --force it restores from the records after the break, and says so.
    let out = sim
        .azbook()
        .args(["backout", "--yes", "--force", "--output", "json", &run])
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("after the break") && stderr.contains("restores from them too, unverified"),
        "{stderr}"
    );
    assert!(
        stderr.contains("backout cannot restore what its change did"),
        "the change whose record is damaged is named, not passed over: {stderr}"
    );
    let report = json_out(&out);
    assert_eq!(change_status(&report, &kept), "restored");
    let now = essentials(&sim.dump());
    let name = |id: &str| id.rsplit('/').next().unwrap().to_string();
    for (key, value) in now.as_object().unwrap() {
        let was = &original[key];
        if key.ends_with(&format!("\"{}\"", name(&lost))) {
            assert_ne!(value, was, "{key}: its only record is the damaged one");
        } else {
            assert_eq!(value, was, "{key}");
        }
    }
}
