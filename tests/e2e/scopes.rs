//! Scopes that match nothing (issue 13, point 5): a resource group or subscription that is not
//! there is an `error` result (exit 3), never an empty green run; filters that leave no target
//! are named in a warning; subscription names become ids once, at the start.

use crate::harness::*;
use serde_json::{Value, json};
use std::process::Output;

fn run(sim: &Sim, args: &[&str]) -> Output {
    sim.azbook().args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn results(out: &Output) -> Vec<Value> {
    json_out(out)["results"].as_array().unwrap().clone()
}

/// The results with status `error`, as (playbook, resource, message).
fn errors(out: &Output) -> Vec<(String, String, String)> {
    results(out)
        .iter()
        .filter(|r| r["status"] == "error")
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap().to_string();
            (field("playbook"), field("resource"), field("message"))
        })
        .collect()
}

const PLAYBOOKS: [&str; 5] = [
    "storage-account-mmk",
    "storage-encryption-scope-mmk",
    "sql-server-tde-protector-mmk",
    "sql-managed-instance-tde-protector-mmk",
    "sql-database-tde-mmk",
];

#[test]
fn a_resource_group_that_does_not_exist_is_an_error_naming_it() {
    let sim = Sim::new(&edge_world());
    let out = run(&sim, &["test", "-g", "rg-doesnotexist", "--output", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let group = format!("/subscriptions/{SUB_A}/resourceGroups/rg-doesnotexist");
    let errors = errors(&out);
    assert_eq!(errors.len(), 5, "one per playbook: {errors:?}");
    for ((playbook, resource, message), expected) in errors.iter().zip(PLAYBOOKS) {
        assert_eq!((playbook.as_str(), resource), (expected, &group));
        assert!(
            message.starts_with(&format!(
                "resource group rg-doesnotexist does not exist in subscription {SUB_A} "
            )),
            "{message}"
        );
    }
    assert_eq!(results(&out).len(), 5, "nothing else");
    // Checked once, with the name as a value and the subscription's id.
    assert_eq!(
        sim.calls_starting(&["group", "exists"]),
        [[
            "group".to_string(),
            "exists".into(),
            "--name=rg-doesnotexist".into(),
            format!("--subscription={SUB_A}"),
            "--output=json".into()
        ]]
    );
    // The errors are the reason: no warning that the filters left nothing.
    assert!(
        !stderr(&out).contains("leave no target"),
        "{}",
        stderr(&out)
    );

    // plan: the same errors, exit 3.
    let out = run(&sim, &["plan", "-g", "rg-doesnotexist", "--output", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let plan = json_out(&out);
    assert_eq!(plan["changes"], json!([]));
    assert_eq!(plan["errors"].as_array().unwrap().len(), 5);
    assert_eq!(plan["errors"][0]["resource"], group.as_str());
}

#[test]
fn an_existing_resource_group_is_checked_and_then_tested() {
    let sim = Sim::new(&edge_world());
    // Case-insensitive, and a name that starts with `-`.
    for (group, expected) in [("RG-DATA", 8), ("-rg.ops(1)", 1)] {
        let out = run(
            &sim,
            &[
                "test",
                "--playbook",
                "storage-account-mmk",
                "-g",
                group,
                "--output",
                "json",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(results(&out).len(), expected, "{group}");
        assert!(errors(&out).is_empty(), "{group}: {:?}", errors(&out));
    }
    let checks = sim.calls_starting(&["group", "exists"]);
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[1][2], "--name=-rg.ops(1)");
}

/// Resource groups are per subscription: in a run over both, a group of one of them is an
/// error for the other only.
#[test]
fn a_resource_group_is_checked_in_every_subscription_of_the_run() {
    let sim = Sim::new(&edge_world());
    let out = run(
        &sim,
        &[
            "test",
            "--all-subscriptions",
            "--playbook",
            "storage-account-mmk",
            "-g",
            "rg-stage",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let by_resource = results_by_resource(&out.stdout);
    assert_eq!(by_resource.len(), 2, "{by_resource:?}");
    assert_eq!(
        by_resource[&storage_id(SUB_B, "rg-stage", "ststage").to_lowercase()]["status"],
        "noncompliant"
    );
    let missing = &by_resource[&format!("/subscriptions/{SUB_A}/resourcegroups/rg-stage")];
    assert_eq!(missing["status"], "error");
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains(&format!("rg-stage does not exist in subscription {SUB_A}")),
        "{missing}"
    );
    let mut checked: Vec<String> = sim
        .calls_starting(&["group", "exists"])
        .into_iter()
        .map(|c| c[3].clone())
        .collect();
    checked.sort();
    assert_eq!(
        checked,
        [
            format!("--subscription={SUB_A}"),
            format!("--subscription={SUB_B}")
        ]
    );
}

/// A check az cannot answer is an error too (the group may hold targets), and the run goes on.
#[test]
fn a_failed_group_check_is_an_error_naming_the_command() {
    let mut world = edge_world();
    world["faults"] = json!([{
        "command": "group exists",
        "error": {"code": "AuthorizationFailed", "exitCode": 1,
                  "message": "The client does not have authorization to perform action 'Microsoft.Resources/subscriptions/resourceGroups/read'."}
    }]);
    let sim = Sim::new(&world);
    let out = run(
        &sim,
        &[
            "test",
            "--playbook",
            "storage-account-mmk",
            "-g",
            "rg-data",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let errors = errors(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (_, resource, message) = &errors[0];
    assert_eq!(
        resource,
        &format!("/subscriptions/{SUB_A}/resourceGroups/rg-data")
    );
    assert!(
        message.contains("whether resource group rg-data exists")
            && message.contains("az group exists --name=rg-data")
            && message.contains("AuthorizationFailed"),
        "{message}"
    );
    assert_eq!(results(&out).len(), 9, "the group's 8 accounts were tested");
}

#[test]
fn a_subscription_that_is_not_there_is_an_error_and_never_called() {
    let sim = Sim::new(&edge_world());
    let out = run(
        &sim,
        &[
            "test",
            "--subscription",
            "Contoso Finanse",
            "--subscription",
            SUB_B,
            "--playbook",
            "storage-account-mmk",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let errors = errors(&out);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (playbook, resource, message) = &errors[0];
    assert_eq!(
        (playbook.as_str(), resource.as_str()),
        ("storage-account-mmk", "/subscriptions/Contoso Finanse")
    );
    assert!(
        message.starts_with("subscription \"Contoso Finanse\" is not among the enabled subscriptions the signed-in identity can see (`az account list`)"),
        "{message}"
    );
    assert_eq!(results(&out).len(), 2, "ststage was tested");
    assert!(
        sim.calls()
            .iter()
            .all(|c| !c.iter().any(|a| a.contains("Finanse"))),
        "no az call in a subscription that is not there"
    );
    let scope = stderr(&out);
    assert!(
        scope.contains(&format!(
            "in subscriptions {SUB_B} (Staging), \"Contoso Finanse\" (not an enabled subscription of this identity)"
        )),
        "{scope}"
    );
    assert_eq!(json_out(&out)["context"]["subscriptions"], json!([SUB_B]));
}

/// A disabled subscription is not among those `az account list` shows: it is refused as a scope
/// even by its id.
#[test]
fn a_disabled_subscription_is_not_a_scope() {
    let mut world = edge_world();
    world["subscriptions"][1]["state"] = json!("Disabled");
    let sim = Sim::new(&world);
    let out = run(&sim, &["test", "--subscription", SUB_B, "--output", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let errors = errors(&out);
    assert_eq!(errors.len(), 5, "one per built-in playbook: {errors:?}");
    assert!(
        errors
            .iter()
            .all(|(_, r, _)| *r == format!("/subscriptions/{SUB_B}"))
    );
    assert!(
        sim.calls_starting(&["storage", "account", "list"])
            .is_empty()
    );
}

#[test]
fn subscription_names_become_ids_in_every_call_and_the_scope_line() {
    let sim = Sim::new(&edge_world());
    let out = run(
        &sim,
        &[
            "test",
            "--subscription",
            "STAGING",
            "--playbook",
            "storage-account-mmk",
            "-g",
            "rg-stage",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let by_resource = results_by_resource(&out.stdout);
    assert_eq!(
        by_resource.keys().collect::<Vec<_>>(),
        [&storage_id(SUB_B, "rg-stage", "ststage").to_lowercase()]
    );
    let wanted = format!("--subscription={SUB_B}");
    let reads: Vec<Vec<String>> = sim
        .calls()
        .into_iter()
        .filter(|c| !c.starts_with(&["account".to_string()]))
        .collect();
    assert_eq!(reads.len(), 2, "the group check and the list: {reads:?}");
    for call in &reads {
        assert!(call.contains(&wanted), "{call:?}");
    }
    let scope = stderr(&out);
    assert!(
        scope.starts_with(&format!(
            "azbook test: storage-account-mmk in subscription {SUB_B} (Staging), signed in as"
        )),
        "{scope}"
    );
    assert_eq!(json_out(&out)["context"]["subscriptions"], json!([SUB_B]));
    // The same subscription by name and by id is one scope.
    let out = run(
        &sim,
        &[
            "test",
            "--subscription",
            "staging",
            "--subscription",
            SUB_B,
            "--playbook",
            "storage-account-mmk",
            "--output",
            "json",
        ],
    );
    assert_eq!(results(&out).len(), 1, "{}", stderr(&out));
}

#[test]
fn a_name_of_two_subscriptions_is_refused_listing_both() {
    let mut world = edge_world();
    world["subscriptions"][1]["name"] = json!("production");
    let sim = Sim::new(&world);
    let out = run(&sim, &["test", "--subscription", "Production"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains(&format!(
            "--subscription \"Production\" names 2 subscriptions: {SUB_A}, {SUB_B}"
        )),
        "{text}"
    );
    assert!(text.contains("give the subscription's id"), "{text}");
    assert!(
        sim.calls()
            .iter()
            .all(|c| c.starts_with(&["account".to_string()])),
        "nothing but az account show and list ran"
    );
    // By id, either is fine.
    let out = run(
        &sim,
        &[
            "test",
            "--subscription",
            SUB_B,
            "--playbook",
            "storage-account-mmk",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn filters_that_leave_no_target_are_named_in_a_warning() {
    let sim = Sim::new(&edge_world());
    let cases: [(&[&str], &str); 4] = [
        (&["--name", "nosuch*"], "(name nosuch*)"),
        (&["--exclude", "*"], "(excluding *)"),
        (&["--tag", "owner=nobody"], "(tag owner=nobody)"),
        (
            &["-g", "rg-sql", "--playbook", "storage-account-mmk"],
            "(resource group rg-sql)",
        ),
    ];
    for (filters, named) in cases {
        let out = sim
            .azbook()
            .args(["test", "--output", "json"])
            .args(filters)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{filters:?}: {}", stderr(&out));
        assert_eq!(results(&out), Vec::<Value>::new(), "{filters:?}");
        let text = stderr(&out);
        assert!(
            text.contains(&format!(
                "warning: the filters of this run {named} leave no target: nothing was tested"
            )),
            "{filters:?}: {text}"
        );
    }
    // A filter that leaves a target, or a skipped item, says nothing of the kind.
    for filters in [&["--name", "stmmk"][..], &["--name", "master"]] {
        let out = sim
            .azbook()
            .args(["test", "--output", "json"])
            .args(filters)
            .output()
            .unwrap();
        assert!(!results(&out).is_empty(), "{filters:?}");
        assert!(
            !stderr(&out).contains("leave no target"),
            "{filters:?}: {}",
            stderr(&out)
        );
    }
}

/// A listing that failed may have hidden the targets: the warning says so.
#[test]
fn the_warning_says_when_errors_may_have_hidden_a_target() {
    let mut world = edge_world();
    world["faults"] = json!([{
        "command": "sql server list",
        "error": {"code": "AuthorizationFailed", "exitCode": 1, "message": "no read"}
    }]);
    let sim = Sim::new(&world);
    let out = run(&sim, &["test", "--name", "db-nosuch", "--output", "json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "(name db-nosuch) leave no target (2 result(s) are errors, so a target may not have been seen)"
        ),
        "{}",
        stderr(&out)
    );
}
