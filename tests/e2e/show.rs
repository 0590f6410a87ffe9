//! Plans people can read and tie to approvals: `azbook show FILE` (and `apply FILE --dry-run`)
//! checks a saved plan exactly as apply would and renders it, changing nothing; the plan's
//! sha256 is in the change record, in apply's first line and in the change log; `azbook man`
//! has the pages azbook(1) refers to.

use crate::harness::*;
use serde_json::Value;

fn saved_plan(sim: &Sim) -> (std::path::PathBuf, String) {
    let path = sim.dir.path().join("change-1234.json");
    sim.azbook()
        .args(["plan", "--playbook", "storage-account-mmk", "--out"])
        .arg(&path)
        .assert()
        .code(0);
    let digest = {
        use sha2::Digest;
        let bytes = std::fs::read(&path).unwrap();
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    (path, digest)
}

#[test]
fn show_checks_a_saved_plan_as_apply_would_and_changes_nothing() {
    let sim = Sim::new(&edge_world());
    let (path, digest) = saved_plan(&sim);
    let out = sim.azbook().arg("show").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("storage account update"), "{stdout}");
    assert!(stderr.contains(&digest), "{stderr}");
    assert!(stderr.contains("is valid here and now"), "{stderr}");
    let markdown = sim
        .azbook()
        .arg("show")
        .arg(&path)
        .args(["--output", "markdown"])
        .output()
        .unwrap();
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        markdown.contains(&format!("sha256 `{digest}`")),
        "{markdown}"
    );
    let dry = sim
        .azbook()
        .arg("apply")
        .arg(&path)
        .args(["--dry-run", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0));
    let shown = sim
        .azbook()
        .arg("show")
        .arg(&path)
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        json_out(&dry),
        json_out(&shown),
        "apply FILE --dry-run is show FILE"
    );
    // An edited plan is refused by show as by apply.
    let mut plan: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    plan["changes"][0]["backout"][0][2] = "delete".into();
    std::fs::write(&path, serde_json::to_vec(&plan).unwrap()).unwrap();
    let out = sim.azbook().arg("show").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the file was edited"));
    assert!(sim.mutating_calls().is_empty());
    assert!(
        !sim.dir.path().join("xdg-state/azbook/runs").exists(),
        "no run was recorded"
    );
}

#[test]
fn the_plans_sha256_is_in_applys_first_line_the_log_and_the_change_record() {
    let sim = Sim::new(&edge_world());
    let (path, digest) = saved_plan(&sim);
    let out = sim
        .azbook()
        .arg("apply")
        .arg(&path)
        .args(["--yes", "--output", "markdown"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let first = stderr.lines().next().unwrap();
    assert!(first.contains(&format!("sha256 {digest}")), "{first}");
    let record = String::from_utf8_lossy(&out.stdout);
    assert!(record.contains(&format!("sha256 `{digest}`")), "{record}");
    let runs = sim.azbook_json(&["runs", "--output", "json"], 0);
    let run = runs[0]["id"].as_str().unwrap();
    let log = sim.azbook_json(&["log", run, "--output", "json"], 0);
    assert_eq!(log["entries"][0]["scope"]["planSha256"], digest.as_str());
}

#[test]
fn man_has_every_page_azbook_1_refers_to() {
    let sim = Sim::without_azure();
    let main = sim.azbook().arg("man").output().unwrap();
    let main = String::from_utf8_lossy(&main.stdout);
    for command in ["test", "plan", "apply", "backout", "show", "runs", "log"] {
        assert!(
            main.contains(&format!("azbook\\-{command}(1)")),
            "{command}"
        );
        let page = sim.azbook().args(["man", command]).output().unwrap();
        assert_eq!(page.status.code(), Some(0), "{command}");
        let page = String::from_utf8_lossy(&page.stdout);
        assert!(page.contains(&format!(".TH azbook-{command} 1")), "{page}");
    }
    let out = sim.azbook().args(["man", "nosuch"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
