//! Every report format, parsed rather than matched, and `report merge` of sharded runs.

use crate::harness::*;
use serde_json::Value;

#[test]
fn junit_is_valid_xml_with_a_case_per_result() {
    let sim = Sim::new(&edge_world());
    let out = sim
        .azbook()
        .args(["test", "--output", "junit"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let xml = String::from_utf8(out.stdout).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("valid XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 17);
    let failures = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    assert_eq!(failures, 9);
    let suites: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 5, "one suite per built-in playbook");
    let storage = suites
        .iter()
        .find(|s| s.attribute("name") == Some("storage-account-mmk"))
        .unwrap();
    assert_eq!(storage.attribute("failures"), Some("6"));
}

#[test]
fn csv_round_trips_one_row_per_result() {
    let sim = Sim::new(&edge_world());
    let out = sim
        .azbook()
        .args([
            "test",
            "--output",
            "csv",
            "--playbook",
            "storage-account-mmk",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "playbook,control,resource,subscription,resource_group,name,status,message,evidence"
    );
    assert_eq!(lines.len(), 10, "{text}");
    let pinned = lines.iter().find(|l| l.contains("stcmkpinned")).unwrap();
    assert!(pinned.contains(",noncompliant,"), "{pinned}");
    assert!(
        pinned.contains(SUB_A) && pinned.contains(",rg-data,"),
        "{pinned}"
    );
}

#[test]
fn markdown_reports_and_report_files() {
    let sim = Sim::new(&edge_world());
    let junit = sim.dir.path().join("out/results.xml");
    std::fs::create_dir_all(junit.parent().unwrap()).unwrap();
    let audit = sim.dir.path().join("audit.md");
    let out = sim
        .azbook()
        .args(["test", "--report"])
        .arg(&junit)
        .arg("--report")
        .arg(format!("markdown={}", audit.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("STATUS"),
        "stdout keeps the table"
    );
    roxmltree::Document::parse(&std::fs::read_to_string(&junit).unwrap())
        .expect("the JUnit file is XML");
    let md = std::fs::read_to_string(&audit).unwrap();
    assert!(
        md.contains("2.1.1.1.1") && md.contains("stcmkpinned") && md.contains("ops@contoso.com"),
        "{md}"
    );

    let record = sim
        .azbook()
        .args(["plan", "--output", "markdown"])
        .output()
        .unwrap();
    assert_eq!(record.status.code(), Some(0));
    let md = String::from_utf8(record.stdout).unwrap();
    for needle in [
        "az storage account update --name=stcmkpinned",
        "--encryption-key-source=Microsoft.Keyvault",
        "control of the key",
        "ops@contoso.com",
        "azbook test",
    ] {
        assert!(
            md.contains(needle),
            "the change record lacks {needle}:\n{md}"
        );
    }
    assert!(md.matches("```").count() >= 4, "commands are in fences");
    // csv and junit are audit formats: plan refuses them with a message.
    assert_eq!(
        sim.azbook()
            .args(["plan", "--output", "junit"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn sharded_reports_merge_into_one() {
    let sim = Sim::new(&edge_world());
    let shard = |sub: &str, name: &str| {
        let path = sim.dir.path().join(name);
        let out = sim
            .azbook()
            .args(["test", "--output", "json", "--subscription", sub])
            .output()
            .unwrap();
        std::fs::write(&path, &out.stdout).unwrap();
        path
    };
    let a = shard(SUB_A, "a.json");
    let b = shard(SUB_B, "b.json");
    let out = sim
        .azbook()
        .args(["report", "merge", "--output", "json"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = json_out(&out);
    let count = |p: &std::path::Path| {
        serde_json::from_slice::<Value>(&std::fs::read(p).unwrap()).unwrap()["results"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(
        merged["results"].as_array().unwrap().len(),
        count(&a) + count(&b)
    );
    assert_eq!(merged["summary"]["noncompliant"], 10);
    let junit = sim
        .azbook()
        .args(["report", "merge", "--output", "junit"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    roxmltree::Document::parse(&String::from_utf8(junit.stdout).unwrap())
        .expect("merged JUnit is XML");
    // Each shard says where, as whom and when; the merged report keeps it.
    let shard_a: Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    assert_eq!(shard_a["context"]["tenantId"], TENANT);
    assert_eq!(shard_a["context"]["user"], "ops@contoso.com");
    assert_eq!(
        shard_a["context"]["subscriptions"],
        serde_json::json!([SUB_A])
    );
    assert!(
        shard_a["context"]["generatedAt"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(merged["context"]["tenantId"], TENANT);
    assert_eq!(
        merged["context"]["subscriptions"],
        serde_json::json!([SUB_A, SUB_B])
    );
    let markdown = sim
        .azbook()
        .args(["report", "merge", "--output", "markdown"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    let markdown = String::from_utf8_lossy(&markdown.stdout);
    assert!(!markdown.contains("not recorded"), "{markdown}");
    assert!(markdown.contains(TENANT), "{markdown}");

    // The same resource with another verdict in two shards is an error naming both files.
    let mut changed: Value = serde_json::from_slice(&std::fs::read(&a).unwrap()).unwrap();
    changed["results"][0]["status"] = "compliant".into();
    let c = sim.dir.path().join("c.json");
    std::fs::write(&c, serde_json::to_vec(&changed).unwrap()).unwrap();
    let out = sim
        .azbook()
        .args(["report", "merge"])
        .arg(&a)
        .arg(&c)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a.json") && stderr.contains("c.json"),
        "{stderr}"
    );
}

#[test]
fn evidence_dir_holds_commands_raw_output_and_a_manifest() {
    use sha2::{Digest, Sha256};
    let sim = Sim::new(&edge_world());
    let dir = sim.dir.path().join("evidence");
    let out = sim
        .azbook()
        .args(["test", "--evidence-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["signedIn"]["user"], "ops@contoso.com");
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 17);
    for f in files {
        let bytes = std::fs::read(dir.join(f["file"].as_str().unwrap())).unwrap();
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            f["sha256"],
            sha.as_str(),
            "the manifest hash matches {}",
            f["file"]
        );
    }
    let db = files
        .iter()
        .find(|f| f["resource"].as_str().unwrap().ends_with("/db-off"))
        .unwrap();
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.join(db["file"].as_str().unwrap())).unwrap())
            .unwrap();
    let calls = doc["calls"].as_array().unwrap();
    let commands: Vec<String> = calls
        .iter()
        .map(|c| {
            c["argv"].as_array().unwrap()[1..4]
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert!(
        commands.contains(&"sql server list".to_string()),
        "{commands:?}"
    );
    assert!(
        commands.contains(&"sql db list".to_string()),
        "{commands:?}"
    );
    assert!(
        commands.iter().any(|c| c.starts_with("sql db tde")),
        "{commands:?}"
    );
    let tde = calls.iter().find(|c| c["argv"][3] == "tde").unwrap();
    assert_eq!(
        tde["output"]["state"], "Disabled",
        "the raw output az printed"
    );
    assert!(tde["time"].as_str().unwrap().ends_with('Z'));
    // The storage list is kept whole for evidence, not trimmed to the fields the verdict reads.
    let st = files
        .iter()
        .find(|f| f["resource"].as_str().unwrap().ends_with("/stcmkpinned"))
        .unwrap();
    let doc: Value =
        serde_json::from_slice(&std::fs::read(dir.join(st["file"].as_str().unwrap())).unwrap())
            .unwrap();
    assert!(
        doc["calls"][0]["output"].get("primaryEndpoints").is_some(),
        "{}",
        doc["calls"][0]["output"]
    );
}
