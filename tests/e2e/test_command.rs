//! `azbook test` end to end: the real binary against azsim on PATH as `az`.

use crate::harness::*;
use serde_json::{Value, json};

fn status_of(results: &std::collections::BTreeMap<String, Value>, id: &str) -> String {
    results.get(&id.to_lowercase()).unwrap_or_else(|| {
        panic!(
            "no result for {id}; have {:?}",
            results.keys().collect::<Vec<_>>()
        )
    })["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn every_edge_case_gets_the_right_status_and_evidence() {
    let sim = Sim::new(&edge_world());
    let out = sim
        .azbook()
        .args(["test", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = results_by_resource(&out.stdout);

    let st = |name| storage_id(SUB_A, "rg-data", name);
    for name in ["stmmk", "stlower", "stdefault"] {
        assert_eq!(status_of(&results, &st(name)), "compliant", "{name}");
    }
    for name in [
        "stcmkempty",
        "stcmknull",
        "stcmkpinned",
        "stcmkuai",
        "stkvlower",
    ] {
        assert_eq!(status_of(&results, &st(name)), "noncompliant", "{name}");
    }
    assert_eq!(
        status_of(&results, &storage_id(SUB_A, "-rg.ops(1)", "stdash")),
        "noncompliant"
    );
    // Only az's current subscription by default.
    assert!(!results.keys().any(|k| k.contains(&SUB_B.to_lowercase())));

    let cmk = &results[&st("stcmkempty").to_lowercase()];
    assert_eq!(cmk["playbook"], "storage-account-mmk");
    assert_eq!(
        cmk["evidence"]["encryption.keySource"],
        "Microsoft.Keyvault"
    );
    assert_eq!(
        cmk["evidence"]["encryption.keyVaultProperties.keyVaultUri"],
        "https://kv-finance.vault.azure.net/"
    );
    assert_eq!(
        cmk["evidence"]["encryption.keyVaultProperties.keyVersion"],
        ""
    );
    let null_version = &results[&st("stcmknull").to_lowercase()];
    assert_eq!(
        null_version["evidence"]["encryption.keyVaultProperties.keyVersion"],
        Value::Null
    );
    let default = &results[&st("stdefault").to_lowercase()];
    assert_eq!(default["evidence"]["encryption.keySource"], Value::Null);
    assert!(
        default["message"]
            .as_str()
            .unwrap()
            .contains("platform default")
    );

    assert_eq!(
        status_of(&results, &server_id(SUB_A, "rg-sql", "sql-sm")),
        "compliant"
    );
    let akv = &results[&server_id(SUB_A, "rg-sql", "sql-akv").to_lowercase()];
    assert_eq!(akv["status"], "noncompliant");
    assert_eq!(akv["playbook"], "sql-server-tde-protector-mmk");
    assert_eq!(akv["evidence"]["serverKeyType"], "AzureKeyVault");
    assert_eq!(akv["evidence"]["uri"], KEY_URI);

    let db = |server, name| db_id(SUB_A, "rg-sql", server, name);
    assert_eq!(status_of(&results, &db("sql-sm", "master")), "skipped");
    assert_eq!(status_of(&results, &db("sql-akv", "master")), "skipped");
    assert_eq!(status_of(&results, &db("sql-sm", "db-on")), "compliant");
    assert_eq!(status_of(&results, &db("sql-akv", "db-x")), "compliant");
    let off = &results[&db("sql-sm", "db-off").to_lowercase()];
    assert_eq!(off["status"], "noncompliant");
    assert_eq!(off["evidence"]["tde.state"], "Disabled");
    let own_key = &results[&db("sql-sm", "db-cmk").to_lowercase()];
    assert_eq!(own_key["status"], "noncompliant");
    assert_eq!(
        own_key["evidence"]["target.encryptionProtector"],
        DB_KEY_URI
    );
    assert!(
        own_key["message"]
            .as_str()
            .unwrap()
            .contains("database-level")
    );

    let report = json_out(&out);
    assert_eq!(
        report["summary"],
        json!({"compliant": 6, "noncompliant": 9, "error": 0, "skipped": 2, "waived": 0})
    );
    for r in report["results"].as_array().unwrap() {
        // The contract's field set, no more and no less (serde_json sorts the keys).
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["evidence", "message", "playbook", "resource", "status"]
        );
    }
}

#[test]
fn reads_state_with_the_fewest_calls() {
    let sim = Sim::new(&edge_world());
    sim.azbook().args(["test", "-q"]).assert().code(1);
    // One list call per subscription holds every storage account's encryption.
    assert_eq!(sim.calls_starting(&["storage", "account", "list"]).len(), 1);
    assert!(
        sim.calls_starting(&["storage", "account", "show"])
            .is_empty()
    );
    // Both SQL playbooks share one server list.
    assert_eq!(sim.calls_starting(&["sql", "server", "list"]).len(), 1);
    assert_eq!(sim.calls_starting(&["sql", "db", "list"]).len(), 2);
    assert_eq!(
        sim.calls_starting(&["sql", "server", "tde-key", "show"])
            .len(),
        2
    );
    // The database list says which databases have their own key: only db-cmk is read again,
    // for its key setup.
    let shows = sim.calls_starting(&["sql", "db", "show"]);
    assert_eq!(shows.len(), 1, "{shows:?}");
    assert!(shows[0].contains(&"--name=db-cmk".to_string()));
    // Every account's scopes are listed (none has more than one page here), and the instances
    // of each subscription.
    assert_eq!(
        sim.calls_starting(&["storage", "account", "encryption-scope", "list"])
            .len(),
        9
    );
    assert_eq!(sim.calls_starting(&["sql", "mi", "list"]).len(), 1);
    // master is never read.
    let tde = sim.calls_starting(&["sql", "db", "tde", "show"]);
    assert_eq!(tde.len(), 4);
    assert!(
        !tde.iter()
            .any(|c| c.contains(&"--database=master".to_string()))
    );
    // Every resource call pins the subscription and asks for JSON; none mutates.
    for call in sim.calls() {
        assert!(call.contains(&"--output=json".to_string()), "{call:?}");
        if call[0] != "account" {
            assert!(
                call.contains(&format!("--subscription={SUB_A}")),
                "{call:?}"
            );
        }
    }
    assert!(
        sim.mutating_calls().is_empty(),
        "a test must not change anything"
    );
}

#[test]
fn resource_group_starting_with_a_dash_stays_one_argument() {
    let mut world = edge_world();
    world["sqlServers"][0]["resourceGroup"] = json!("-rg.ops(1)");
    for db in world["sqlDatabases"].as_array_mut().unwrap() {
        if db["server"] == "sql-sm" {
            db["resourceGroup"] = json!("-rg.ops(1)");
        }
    }
    let sim = Sim::new(&world);
    let out = sim
        .azbook()
        .args(["test", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = results_by_resource(&out.stdout);
    assert_eq!(
        status_of(&results, &db_id(SUB_A, "-rg.ops(1)", "sql-sm", "db-off")),
        "noncompliant"
    );
    let show = sim.calls_starting(&["sql", "server", "tde-key", "show"]);
    assert!(
        show.iter()
            .any(|c| c.contains(&"--resource-group=-rg.ops(1)".to_string()))
    );
}

#[test]
fn filters_select_targets() {
    let sim = Sim::new(&edge_world());
    let run = |args: &[&str]| {
        let out = sim
            .azbook()
            .args(["test", "--output", "json"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut ids: Vec<String> = results_by_resource(&out.stdout)
            .values()
            .map(|r| {
                r["resource"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        run(&["--playbook", "storage-account-mmk", "-g", "-rg.ops(1)"]),
        ["stdash"]
    );
    assert_eq!(
        run(&[
            "--playbook",
            "storage-account-mmk",
            "--name",
            "stcmk*",
            "--exclude",
            "*uai"
        ]),
        ["stcmkempty", "stcmknull", "stcmkpinned"]
    );
    // A database matches through its server's tags; master is still reported as skipped.
    assert_eq!(
        run(&["--tag", "data-classification=critical"]),
        [
            "db-cmk",
            "db-off",
            "db-on",
            "db-x",
            "master",
            "sql-sm",
            "stcmkempty",
            "stmmk"
        ]
    );
    assert_eq!(
        run(&[
            "--tag",
            "data-classification=critical",
            "--playbook",
            "sql-server-tde-protector-mmk"
        ]),
        ["sql-sm"]
    );
    assert_eq!(
        run(&[
            "--playbook",
            "storage-account-mmk",
            "--subscription",
            SUB_B,
            "--name",
            "st*stage"
        ]),
        ["ststage"]
    );
    let both = run(&[
        "--playbook",
        "storage-account-mmk",
        "--subscription",
        SUB_A,
        "--subscription",
        SUB_B,
    ]);
    assert_eq!(both.len(), 10);
    assert_eq!(
        run(&["--playbook", "storage-account-mmk", "--all-subscriptions"]).len(),
        10
    );
}

#[test]
fn legacy_tde_status_field_is_read_too() {
    let mut world = edge_world();
    world["settings"]["tdeField"] = json!("status");
    let sim = Sim::new(&world);
    let out = sim
        .azbook()
        .args([
            "test",
            "--output",
            "json",
            "--playbook",
            "sql-database-tde-mmk",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let results = results_by_resource(&out.stdout);
    let off = &results[&db_id(SUB_A, "rg-sql", "sql-sm", "db-off").to_lowercase()];
    assert_eq!(off["status"], "noncompliant");
    assert_eq!(off["evidence"]["tde.status"], "Disabled");
    assert_eq!(off["evidence"]["tde.state"], Value::Null);
    assert_eq!(
        status_of(&results, &db_id(SUB_A, "rg-sql", "sql-sm", "db-on")),
        "compliant"
    );
}

#[test]
fn a_failing_read_becomes_an_error_result_and_the_rest_are_reported() {
    let mut world = edge_world();
    world["faults"] = json!([{
        "command": "sql db tde show", "argvContains": "db-off",
        "error": {"code": "AuthorizationFailed", "exitCode": 1,
                  "message": "The client 'ops@contoso.com' does not have authorization to perform action 'Microsoft.Sql/servers/databases/transparentDataEncryption/read'."}
    }]);
    let sim = Sim::new(&world);
    let out = sim
        .azbook()
        .args(["test", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "errors outrank noncompliance");
    let results = results_by_resource(&out.stdout);
    let failed = &results[&db_id(SUB_A, "rg-sql", "sql-sm", "db-off").to_lowercase()];
    assert_eq!(failed["status"], "error");
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("AuthorizationFailed"), "{message}");
    assert!(message.contains("az sql db tde show"), "{message}");
    assert!(
        message.contains("permission"),
        "the message says what to do: {message}"
    );
    assert_eq!(
        status_of(&results, &db_id(SUB_A, "rg-sql", "sql-sm", "db-on")),
        "compliant"
    );
    assert_eq!(
        status_of(&results, &storage_id(SUB_A, "rg-data", "stcmknull")),
        "noncompliant"
    );
    // Not retried: authorization does not pass with time.
    assert_eq!(
        sim.calls()
            .iter()
            .filter(|c| c.join(" ").contains("tde show") && c.join(" ").contains("db-off"))
            .count(),
        1
    );
}

#[test]
fn a_failing_listing_is_reported_against_what_was_being_listed() {
    let mut world = edge_world();
    world["faults"] = json!([{
        "command": "sql db list", "argvContains": "sql-akv",
        "error": {"code": "ResourceNotFound", "exitCode": 3, "message": "The requested resource of type 'Microsoft.Sql/servers' with name 'sql-akv' was not found."}
    }]);
    let sim = Sim::new(&world);
    let out = sim
        .azbook()
        .args([
            "test",
            "--output",
            "json",
            "--playbook",
            "sql-database-tde-mmk",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let results = results_by_resource(&out.stdout);
    assert_eq!(
        status_of(&results, &server_id(SUB_A, "rg-sql", "sql-akv")),
        "error"
    );
    assert_eq!(
        status_of(&results, &db_id(SUB_A, "rg-sql", "sql-sm", "db-off")),
        "noncompliant"
    );
}

#[test]
fn throttling_is_retried_until_it_passes() {
    let mut world = edge_world();
    world["faults"] = json!([{
        "command": "storage account list", "times": 2,
        "error": {"code": "TooManyRequests", "exitCode": 1, "message": "The request is being throttled."}
    }]);
    let sim = Sim::new(&world);
    let out = sim
        .azbook()
        .args([
            "test",
            "--output",
            "json",
            "--playbook",
            "storage-account-mmk",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(results_by_resource(&out.stdout).len(), 9);
    assert_eq!(sim.calls_starting(&["storage", "account", "list"]).len(), 3);
}

#[test]
fn malformed_json_from_az_is_an_error_result() {
    let mut world = edge_world();
    world["faults"] = json!([{"command": "sql server tde-key show", "argvContains": "sql-sm", "malformed": true}]);
    let sim = Sim::new(&world);
    let out = sim
        .azbook()
        .args([
            "test",
            "--output",
            "json",
            "--playbook",
            "sql-server-tde-protector-mmk",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let results = results_by_resource(&out.stdout);
    let bad = &results[&server_id(SUB_A, "rg-sql", "sql-sm").to_lowercase()];
    assert_eq!(bad["status"], "error");
    assert!(
        bad["message"].as_str().unwrap().contains("not JSON"),
        "{}",
        bad["message"]
    );
    assert_eq!(
        status_of(&results, &server_id(SUB_A, "rg-sql", "sql-akv")),
        "noncompliant"
    );
}

#[test]
fn a_hung_az_is_killed_at_the_timeout() {
    let mut world = edge_world();
    world["faults"] = json!([{"command": "sql server tde-key show", "argvContains": "sql-akv", "hangSeconds": 120}]);
    let sim = Sim::new(&world);
    let out = sim
        .azbook()
        .args([
            "--read-timeout",
            "1",
            "test",
            "--output",
            "json",
            "--playbook",
            "sql-server-tde-protector-mmk",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let results = results_by_resource(&out.stdout);
    let hung = &results[&server_id(SUB_A, "rg-sql", "sql-akv").to_lowercase()];
    assert_eq!(hung["status"], "error");
    assert!(
        hung["message"].as_str().unwrap().contains("killed"),
        "{}",
        hung["message"]
    );
    assert_eq!(
        status_of(&results, &server_id(SUB_A, "rg-sql", "sql-sm")),
        "compliant"
    );
}

#[test]
fn not_signed_in_is_one_clear_message() {
    let mut world = edge_world();
    world["settings"]["signedIn"] = json!(false);
    let sim = Sim::new(&world);
    let out = sim
        .azbook()
        .args(["test", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no results when nothing ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("az login").count(),
        2,
        "one error and one hint: {stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
    // Stopped at `az account show`: no resource was read.
    assert_eq!(sim.calls().len(), 1);
}

#[test]
fn az_missing_from_path_says_how_to_fix_it() {
    let sim = Sim::new(&edge_world());
    let out = sim
        .azbook()
        .env("PATH", "/nonexistent")
        .args(["test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot run `az`: not found"), "{stderr}");
    assert!(stderr.contains("--az"), "{stderr}");
    let not_executable = sim.dir.path().join("az-not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let out = sim
        .azbook()
        .arg("--az")
        .arg(&not_executable)
        .arg("test")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not executable"));
}

#[test]
fn table_output_is_aligned_and_plain_when_piped() {
    let sim = Sim::new(&edge_world());
    let out = sim
        .azbook()
        .args(["test", "--playbook", "sql-server-tde-protector-mmk"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains('\x1b'), "no colour when piped");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("STATUS"));
    let col = lines[0].find("RESOURCE").unwrap();
    assert_eq!(&lines[1][col..col + 11], "rg-sql/sql-");
    assert!(
        stdout.contains("noncompliant  sql-server-tde-protector-mmk  rg-sql/sql-akv"),
        "{stdout}"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("signed in as ops@contoso.com"),
        "the scope is printed: {stderr}"
    );
    assert!(stderr.contains("1 compliant, 1 noncompliant"), "{stderr}");

    let quiet = sim
        .azbook()
        .args(["-q", "test", "--playbook", "sql-server-tde-protector-mmk"])
        .output()
        .unwrap();
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let coloured = sim
        .azbook()
        .args([
            "--color",
            "always",
            "test",
            "--playbook",
            "sql-server-tde-protector-mmk",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&coloured.stdout).contains("\x1b[31mnoncompliant"));
}

#[test]
fn all_compliant_exits_zero() {
    let sim = Sim::new(&edge_world());
    sim.azbook()
        .args([
            "test",
            "--name",
            "stmmk",
            "--playbook",
            "storage-account-mmk",
        ])
        .assert()
        .code(0);
}

#[test]
fn unknown_playbook_suggests_the_near_one() {
    let sim = Sim::new(&edge_world());
    let out = sim
        .azbook()
        .args(["test", "--playbook", "storage-acount-mmk"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Did you mean `storage-account-mmk`?"),
        "{stderr}"
    );
    assert!(sim.calls().is_empty());
}
