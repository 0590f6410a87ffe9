//! Waivers: waived targets are reported with reason and approver and never changed.

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
    // The default place: azbook.toml beside the state directory.
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
    let report = json_out(&out);
    assert_eq!(report["summary"]["waived"], 2);

    let plan = json_out(
        &sim.azbook()
            .args(["plan", "--output", "json"])
            .output()
            .unwrap(),
    );
    assert!(!plan["changes"].to_string().contains("stcmkpinned"));
    assert_eq!(plan["waived"].as_array().unwrap().len(), 2);
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
