//! Waivers: waived targets are reported with reason and approver and never changed; a waiver
//! that cannot protect anything stops the run (an unknown playbook) or is named in a warning
//! (no target matches it); the scope line names the file in use, found by one stated rule.

use crate::harness::*;

const WAIVERS: &str = r#"
[[waiver]]
resource = "*/resourceGroups/RG-DATA/providers/Microsoft.Storage/storageAccounts/stcmkpinned"
playbook = "storage-account-mmk"
reason = "regulator requires customer-held keys (SEC-1234)"
approver = "ciso@contoso.com"
expires = 2099-12-31

[[waiver]]
resource = "*/servers/sql-akv"
playbook = "*"
reason = "HSM-backed key by contract"
approver = "cto@contoso.com"
expires = "2099-01-01"

[[waiver]]
resource = "*/storageAccounts/stcmknull"
playbook = "storage-account-mmk"
reason = "was waived last year"
approver = "ciso@contoso.com"
expires = 2020-06-30
"#;

#[test]
fn waived_targets_are_reported_and_never_changed() {
    let sim = Sim::new(&edge_world());
    // The default place: azbook.toml in the working directory.
    std::fs::write(sim.dir.path().join("azbook.toml"), WAIVERS).unwrap();
    let out = sim
        .azbook()
        .args(["test", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("waiver 3") && stderr.contains("expired on 2020-06-30"),
        "{stderr}"
    );
    let results = results_by_resource(&out.stdout);
    let pinned = &results[&storage_id(SUB_A, "rg-data", "stcmkpinned").to_lowercase()];
    assert_eq!(pinned["status"], "waived");
    let message = pinned["message"].as_str().unwrap();
    assert!(
        message.contains("SEC-1234") && message.contains("ciso@contoso.com"),
        "{message}"
    );
    assert_eq!(
        pinned["evidence"]["encryption.keySource"], "Microsoft.Keyvault",
        "evidence is still shown"
    );
    assert_eq!(
        results[&server_id(SUB_A, "rg-sql", "sql-akv").to_lowercase()]["status"],
        "waived"
    );
    assert_eq!(
        results[&storage_id(SUB_A, "rg-data", "stcmknull").to_lowercase()]["status"],
        "noncompliant",
        "an expired waiver is ignored"
    );
    assert_eq!(
        results[&db_id(SUB_A, "rg-sql", "sql-akv", "db-x").to_lowercase()]["status"],
        "waived",
        "a `*` waiver on a server covers the databases under it"
    );
    let report = json_out(&out);
    assert_eq!(report["summary"]["waived"], 3);

    let plan = json_out(
        &sim.azbook()
            .args(["plan", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert!(!plan["changes"].to_string().contains("stcmkpinned"));
    assert_eq!(plan["waived"].as_array().unwrap().len(), 3);
    sim.azbook().args(["apply", "--yes"]).assert().code(0);
    for call in sim.calls() {
        let line = call.join(" ");
        if line.starts_with("storage account update") || line.starts_with("sql server tde-key set")
        {
            assert!(
                !line.contains("stcmkpinned") && !line.contains("sql-akv"),
                "a waived target was changed: {line}"
            );
        }
    }
}

#[test]
fn a_waiver_made_after_a_plan_was_saved_still_holds() {
    let sim = Sim::new(&edge_world());
    let plan = sim.dir.path().join("plan.json");
    sim.azbook()
        .args(["plan", "--playbook", "storage-account-mmk", "--out"])
        .arg(&plan)
        .assert()
        .code(0);
    let waivers = sim.dir.path().join("waivers.toml");
    std::fs::write(&waivers, WAIVERS).unwrap();
    let out = sim
        .azbook()
        .arg("--waivers")
        .arg(&waivers)
        .args(["apply", "--yes", "--output", "json"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_out(&out);
    assert!(report["waived"].to_string().contains("stcmkpinned"));
    assert!(
        !sim.calls()
            .iter()
            .any(|c| c.join(" ").starts_with("storage account update")
                && c.join(" ").contains("stcmkpinned"))
    );
}

#[test]
fn a_malformed_waivers_file_stops_the_run() {
    let sim = Sim::new(&edge_world());
    let waivers = sim.dir.path().join("waivers.toml");
    std::fs::write(
        &waivers,
        WAIVERS.replace("approver = \"cto@contoso.com\"\n", ""),
    )
    .unwrap();
    let out = sim
        .azbook()
        .arg("--waivers")
        .arg(&waivers)
        .args(["test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("approver"));
    assert!(sim.calls().is_empty());
}

/// What a run printed on stderr.
fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first line on stderr: the scope line.
fn scope_line(out: &std::process::Output) -> String {
    stderr(out).lines().next().unwrap_or_default().to_string()
}

/// The status `azbook test --output json` gave stcmkpinned, which WAIVERS waives.
fn pinned_status(out: &std::process::Output) -> String {
    let results = results_by_resource(&out.stdout);
    results[&storage_id(SUB_A, "rg-data", "stcmkpinned").to_lowercase()]["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// WAIVERS with the first waiver's playbook misspelt (line 4 of the file).
fn misspelt() -> String {
    WAIVERS.replacen("\"storage-account-mmk\"", "\"storage-acount-mmk\"", 1)
}

#[test]
fn a_waiver_for_a_misspelt_playbook_stops_the_run_before_anything_changes() {
    let sim = Sim::new(&edge_world());
    let before = essentials(&sim.dump());
    std::fs::write(sim.dir.path().join("azbook.toml"), misspelt()).unwrap();
    for command in [&["test"][..], &["plan"], &["apply", "--yes"]] {
        let out = sim.azbook().args(command).output().unwrap();
        let stderr = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(
            stderr.contains("./azbook.toml:4: waiver 1 names the playbook `storage-acount-mmk`")
                && stderr.contains("did you mean `storage-account-mmk`?"),
            "{command:?}: {stderr}"
        );
    }
    assert!(sim.calls().is_empty(), "refused before any az call");
    assert_eq!(essentials(&sim.dump()), before, "nothing changed");

    // A saved plan is no way around it.
    std::fs::remove_file(sim.dir.path().join("azbook.toml")).unwrap();
    sim.azbook()
        .args(["plan", "--out", "plan.json"])
        .assert()
        .code(0);
    let calls = sim.calls().len();
    std::fs::write(sim.dir.path().join("azbook.toml"), misspelt()).unwrap();
    let out = sim
        .azbook()
        .args(["apply", "--yes", "plan.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("./azbook.toml:4: waiver 1 names the playbook `storage-acount-mmk`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        sim.calls().len(),
        calls,
        "no az call for the saved plan either"
    );
    assert!(sim.mutating_calls().is_empty());
    assert_eq!(essentials(&sim.dump()), before);
}

#[test]
fn a_waiver_for_a_playbook_file_holds_only_in_runs_that_load_it() {
    let sim = Sim::new(&edge_world());
    let builtin = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/storage-account-mmk.toml"),
    )
    .unwrap();
    let custom = builtin.replacen("id = \"storage-account-mmk\"", "id = \"custom-storage\"", 1);
    assert_ne!(custom, builtin);
    std::fs::write(sim.dir.path().join("custom.toml"), custom).unwrap();
    std::fs::write(
        sim.dir.path().join("azbook.toml"),
        WAIVERS.replacen("\"storage-account-mmk\"", "\"custom-storage\"", 1),
    )
    .unwrap();
    let out = sim
        .azbook()
        .args(["test", "--playbook", "custom.toml", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(pinned_status(&out), "waived");

    let out = sim.azbook().args(["test"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("./azbook.toml:4: waiver 1 names the playbook `custom-storage`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_waiver_that_matches_no_target_is_a_warning_naming_it() {
    let sim = Sim::new(&edge_world());
    let waivers = r#"
[[waiver]]
resource = "*/storageAccounts/stcmkpined"
playbook = "storage-account-mmk"
reason = "misspelt account"
approver = "ciso@contoso.com"
expires = 2099-12-31

[[waiver]]
resource = "*/storageAccounts/stmmk"
playbook = "storage-account-mmk"
reason = "a compliant account is a target too"
approver = "ciso@contoso.com"
expires = 2099-12-31

[[waiver]]
resource = "*/servers/sql-gone"
playbook = "sql-server-tde-protector-mmk"
reason = "a server that no longer exists"
approver = "cto@contoso.com"
expires = 2099-12-31

[[waiver]]
resource = "*/storageAccounts/stgone"
playbook = "*"
reason = "expired, so it is not judged"
approver = "cto@contoso.com"
expires = 2020-01-01
"#;
    std::fs::write(sim.dir.path().join("azbook.toml"), waivers).unwrap();
    // plan keeps only noncompliant targets, but every target found counts.
    let out = sim
        .azbook()
        .args([
            "plan",
            "--playbook",
            "storage-account-mmk",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stderr_text = stderr(&out);
    assert!(
        stderr_text.contains(
            "warning: ./azbook.toml:2: waiver 1 matches no target of this run: check its resource pattern `*/storageAccounts/stcmkpined` and playbook `storage-account-mmk`"
        ),
        "{stderr_text}"
    );
    for quiet in ["waiver 2 matches", "waiver 3 matches", "waiver 4 matches"] {
        assert!(!stderr_text.contains(quiet), "{quiet}: {stderr_text}");
    }
    assert!(
        stderr_text.contains("waiver 4 (*/storageAccounts/stgone for *) expired on 2020-01-01"),
        "{stderr_text}"
    );
    let plan = json_out(&out);
    assert_eq!(change_status(&plan, "stcmkpinned"), "pending");

    // A run of every playbook judges the SQL server waiver too.
    let out = sim.azbook().args(["test"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("./azbook.toml:16: waiver 3 matches no target of this run"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_scope_line_names_the_waivers_file_or_says_there_is_none() {
    let sim = Sim::new(&edge_world());
    let out = sim.azbook().args(["test"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = scope_line(&out);
    assert!(
        line.starts_with("azbook test: ") && line.ends_with("; no waivers file"),
        "{line}"
    );

    std::fs::write(sim.dir.path().join("azbook.toml"), WAIVERS).unwrap();
    let out = sim.azbook().args(["test"]).output().unwrap();
    let line = scope_line(&out);
    assert!(
        line.starts_with("azbook test: ")
            && line.ends_with("; waivers: ./azbook.toml (2 active, 1 expired)"),
        "{line}"
    );

    sim.azbook()
        .args(["plan", "--out", "plan.json"])
        .assert()
        .code(0);
    std::fs::write(sim.dir.path().join("waivers.toml"), WAIVERS).unwrap();
    let out = sim
        .azbook()
        .args(["--waivers", "waivers.toml", "apply", "--yes", "plan.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = scope_line(&out);
    assert!(
        line.starts_with("azbook apply: ")
            && line.contains("; waivers: waivers.toml (2 active, 1 expired) (plan plan.json"),
        "{line}"
    );
}

#[test]
fn the_working_directory_comes_before_the_state_directory() {
    let sim = Sim::new(&edge_world());
    let dir = sim.dir.path();
    // In the state directory (the per-user one), when the working directory has none.
    let state = dir.join("xdg-state/azbook");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("azbook.toml"), WAIVERS).unwrap();
    let out = sim
        .azbook()
        .args(["test", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(pinned_status(&out), "waived", "{}", stderr(&out));
    let shown = format!(
        "; waivers: {} (2 active, 1 expired)",
        state.join("azbook.toml").display()
    );
    assert!(scope_line(&out).ends_with(&shown), "{}", scope_line(&out));

    // The working directory's wins: the state directory's (which would stop the run) is not read.
    std::fs::write(state.join("azbook.toml"), misspelt()).unwrap();
    std::fs::write(dir.join("azbook.toml"), WAIVERS).unwrap();
    let out = sim
        .azbook()
        .args(["test", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(pinned_status(&out), "waived");
    assert!(
        scope_line(&out).ends_with("; waivers: ./azbook.toml (2 active, 1 expired)"),
        "{}",
        scope_line(&out)
    );

    // And it is still read when --state-dir points elsewhere.
    let out = sim
        .azbook()
        .args(["--state-dir", "var/azbook", "test", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(pinned_status(&out), "waived");
}

#[test]
fn azbook_toml_beside_the_state_directory_is_not_read() {
    let sim = Sim::new(&edge_world());
    let dir = sim.dir.path();
    std::fs::create_dir_all(dir.join("other/state")).unwrap();
    std::fs::write(dir.join("other/azbook.toml"), WAIVERS).unwrap();
    let out = sim
        .azbook()
        .args(["--state-dir", "other/state", "test", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(pinned_status(&out), "noncompliant");
    assert!(
        scope_line(&out).ends_with("; no waivers file"),
        "{}",
        scope_line(&out)
    );
}

#[test]
fn a_named_waivers_file_comes_first_and_must_exist() {
    let sim = Sim::new(&edge_world());
    let dir = sim.dir.path();
    // ./azbook.toml would stop the run if it were read.
    std::fs::write(dir.join("azbook.toml"), misspelt()).unwrap();
    std::fs::write(dir.join("waivers.toml"), WAIVERS).unwrap();
    let out = sim
        .azbook()
        .args(["--waivers", "waivers.toml", "test", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(pinned_status(&out), "waived");
    let out = sim
        .azbook()
        .env("AZBOOK_WAIVERS", "waivers.toml")
        .args(["test", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(pinned_status(&out), "waived");

    let calls = sim.calls().len();
    std::fs::remove_file(dir.join("azbook.toml")).unwrap();
    let flag = sim
        .azbook()
        .args(["--waivers", "missing.toml", "test"])
        .output()
        .unwrap();
    let env = sim
        .azbook()
        .env("AZBOOK_WAIVERS", "missing.toml")
        .args(["test"])
        .output()
        .unwrap();
    for out in [flag, env] {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(
                "the waivers file missing.toml (--waivers or AZBOOK_WAIVERS) does not exist"
            ),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(sim.calls().len(), calls, "no az call");
}
