//! Credentials never reach what azbook writes: change logs, plan files, reports.

use crate::harness::*;
use serde_json::json;

const SECRETS: &[&str] = &[
    "SECRETACCOUNTKEY0123",
    "SECRETSIGNATURE4567",
    "hunter2-password",
];

#[test]
fn credentials_recorded_by_a_playbook_never_reach_a_file_or_report() {
    let mut world = edge_world();
    for a in world["storageAccounts"].as_array_mut().unwrap() {
        if a["name"] == "stcmkpinned" {
            a["tags"] = json!({
                "connection": "DefaultEndpointsProtocol=https;AccountName=stcmkpinned;AccountKey=SECRETACCOUNTKEY0123==",
                "sasToken": "sv=2022-11-02&se=2030-01-01&sig=SECRETSIGNATURE4567",
                "adminPassword": "hunter2-password",
                "owner": "ops-team"
            });
        }
    }
    let sim = Sim::new(&world);
    // A playbook of one's own that records (and shows as evidence) the whole `tags` object.
    let builtin = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/playbooks/storage-account-mmk.toml"
    ))
    .unwrap();
    let custom = builtin
        .replace("id = \"storage-account-mmk\"", "id = \"storage-with-tags\"")
        .replace("evidence = [\n", "evidence = [\n  \"tags\",\n")
        .replace("record = [\n", "record = [\n  \"tags\",\n");
    assert!(
        custom.contains("\"tags\",\n  \"encryption.keySource\""),
        "the edit took"
    );
    let playbook = sim.dir.path().join("storage-with-tags.toml");
    std::fs::write(&playbook, custom).unwrap();
    let p = playbook.to_str().unwrap();
    let plan_file = sim.dir.path().join("plan.json");

    let mut printed = Vec::new();
    for args in [
        vec![
            "test",
            "--playbook",
            p,
            "--output",
            "json",
            "--report",
            "audit.md",
            "--report",
            "results.xml",
            "--evidence-dir",
            "evidence",
        ],
        vec!["test", "--playbook", p],
        vec![
            "plan",
            "--playbook",
            p,
            "--output",
            "json",
            "--out",
            plan_file.to_str().unwrap(),
        ],
        vec!["apply", "--playbook", p, "--yes", "--output", "json"],
        vec!["backout", "--yes", "--output", "json"],
    ] {
        let out = sim.azbook().args(&args).output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed.push(String::from_utf8_lossy(&out.stdout).into_owned());
        printed.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let runs = sim.dir.path().join("xdg-state/azbook");
    let mut files = vec![
        plan_file.clone(),
        sim.dir.path().join("audit.md"),
        sim.dir.path().join("results.xml"),
    ];
    let mut stack = vec![runs, sim.dir.path().join("evidence")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path)
            } else {
                files.push(path)
            }
        }
    }
    assert!(
        files.iter().any(|f| f.ends_with("journal.jsonl")),
        "{files:?}"
    );
    let mut journal_text = String::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for secret in SECRETS {
            assert!(!text.contains(secret), "{} holds {secret}", file.display());
        }
        if file.ends_with("journal.jsonl") {
            journal_text.push_str(&text);
        }
    }
    for text in &printed {
        for secret in SECRETS {
            assert!(!text.contains(secret), "output holds {secret}: {text}");
        }
    }
    // What is not a credential, and the Key Vault references backout needs, are kept.
    assert!(journal_text.contains("ops-team"));
    assert!(journal_text.contains("https://kv-finance.vault.azure.net/"));
    assert!(journal_text.contains("0123456789abcdef0123456789abcdef"));
    assert!(
        printed[0].contains("[redacted by azbook]"),
        "the evidence says it was redacted"
    );
}
