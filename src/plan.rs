//! The changes a run would make (README.md, "Remediation"): per noncompliant target, the exact argv of
//! every step, the recorded prior state, the predicted after-state and the backout argvs.
//!
//! Deriving a change is a pure function of the playbook, the target's recorded context and its
//! recorded prior state, so that `apply FILE` can derive it again and refuse a plan file whose
//! argvs differ: a plan file is input, not a script.

use crate::az::Az;
use crate::evaluate::Finding;
use crate::fieldpath::FieldPath;
use crate::journal::PlaybookRef;
use crate::model::{Change, ChangeStatus, PlannedStep, Status, StepKind, TestResult};
use crate::playbook::{Action, Playbook};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A saved plan (`plan --out FILE`), bound to where and by whom it was made.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanFile {
    pub schema_version: u32,
    pub kind: PlanKind,
    pub azbook_version: String,
    pub created_at: String,
    pub tenant_id: String,
    pub user: String,
    pub subscriptions: Vec<String>,
    pub playbooks: Vec<PlaybookRef>,
    pub scope: Value,
    pub changes: Vec<Change>,
}

/// What a saved plan says it is, so that another JSON file is not taken for one.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanKind {
    #[serde(rename = "azbook-plan")]
    AzbookPlan,
}

fn with_before(context: &Value, before: &Value) -> Value {
    let mut ctx = context.clone();
    if let Value::Object(map) = &mut ctx {
        map.insert("before".into(), before.clone());
    }
    ctx
}

/// Derives the change for one target from its context and recorded prior state.
pub fn derive(
    playbook: &Playbook,
    resource: &str,
    subscription: &str,
    context: &Value,
    before: &Value,
) -> Result<Change, String> {
    let ctx = with_before(context, before);
    let mut steps = Vec::new();
    let mut after = before.clone();
    for (index, step) in playbook.implement.iter().enumerate() {
        if let Some(when) = &step.when
            && !when.test(&ctx)?
        {
            continue;
        }
        let (kind, argv, instructions) = match &step.action {
            Action::Az(argv) => {
                for (path, value) in &step.after {
                    path.set(&mut after, value.clone());
                }
                (
                    StepKind::Az,
                    Az::full_argv(&argv.render(&ctx)?, Some(subscription)),
                    None,
                )
            }
            Action::Manual(text) => (StepKind::Manual, Vec::new(), Some(text.render(&ctx)?)),
        };
        steps.push(PlannedStep {
            index,
            name: step.name.clone(),
            kind,
            argv,
            instructions,
            reversible: step.reversible,
            warning: step.warning.clone(),
            long_running: step.long_running.clone(),
        });
    }
    let backout = backout_steps(playbook, subscription, context, before)?
        .into_iter()
        .map(|(_, argv)| argv)
        .collect();
    let status = if steps.iter().any(|s| s.kind == StepKind::Az) {
        ChangeStatus::Pending
    } else {
        ChangeStatus::Manual
    };
    let message = if steps.is_empty() {
        "no step of the playbook applies to this state: fix it by hand".to_string()
    } else {
        String::new()
    };
    Ok(Change {
        playbook: playbook.id.clone(),
        resource: resource.to_string(),
        subscription: subscription.to_string(),
        steps,
        before: before.clone(),
        after,
        backout,
        status,
        message,
        warnings: Vec::new(),
        context: context.clone(),
        differences: Vec::new(),
    })
}

/// The backout steps that apply to a recorded prior state, with their full argvs, in order.
pub fn backout_steps(
    playbook: &Playbook,
    subscription: &str,
    context: &Value,
    before: &Value,
) -> Result<Vec<(usize, Vec<String>)>, String> {
    let ctx = with_before(context, before);
    let mut out = Vec::new();
    for (index, step) in playbook.backout.iter().enumerate() {
        if let Some(when) = &step.when
            && !when.test(&ctx)?
        {
            continue;
        }
        if let Action::Az(argv) = &step.action {
            out.push((
                index,
                Az::full_argv(&argv.render(&ctx)?, Some(subscription)),
            ));
        }
    }
    Ok(out)
}

/// The changes for every noncompliant target of an assessment, and the results no change is
/// derived for: errors (including a change that could not be derived) and waived targets.
/// Consumes the findings, so that each target's state is freed as soon as its change exists:
/// a large tenant's plan never holds both in full.
pub fn from_findings(findings: Vec<Finding<'_>>) -> (Vec<Change>, Vec<TestResult>) {
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    for outcome in findings {
        match outcome.assessment.status {
            Status::Error | Status::Waived => errors.push(outcome.to_result()),
            Status::Noncompliant => {
                let (Some(target), Some(state)) = (&outcome.target, &outcome.state) else {
                    continue;
                };
                let playbook = outcome.playbook;
                let before = playbook.test.recorded(state);
                let context = crate::redact::redact(&FieldPath::project(
                    &playbook.context_fields(),
                    &target.context(None),
                ));
                match derive(
                    playbook,
                    &outcome.resource,
                    &target.subscription,
                    &context,
                    &before,
                ) {
                    Ok(change) => changes.push(change),
                    Err(message) => {
                        let mut result = outcome.to_result();
                        result.status = Status::Error;
                        result.message = format!("no change can be derived: {message}");
                        errors.push(result);
                    }
                }
            }
            _ => {}
        }
    }
    (changes, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::builtin;
    use serde_json::json;

    fn playbook(id: &str) -> Playbook {
        builtin().into_iter().find(|p| p.id == id).unwrap()
    }

    #[test]
    fn storage_change_shows_argv_prediction_and_backout() {
        let p = playbook("storage-account-mmk");
        let context = json!({"target": {"id": "/s/x", "name": "st1", "resourceGroup": "-rg"}});
        let before = json!({"encryption": {"keySource": "Microsoft.Keyvault",
            "keyVaultProperties": {"keyVaultUri": "https://kv.vault.azure.net/", "keyName": "k", "keyVersion": ""},
            "encryptionIdentity": {"encryptionUserAssignedIdentity": "/uai", "encryptionFederatedIdentityClientId": null}}});
        let change = derive(&p, "/s/x", "sub", &context, &before).unwrap();
        assert_eq!(change.status, ChangeStatus::Pending);
        assert_eq!(
            change.steps[0].argv,
            [
                "az",
                "storage",
                "account",
                "update",
                "--name=st1",
                "--resource-group=-rg",
                "--encryption-key-source=Microsoft.Storage",
                "--subscription=sub",
                "--output=json"
            ]
        );
        assert!(
            change.steps[0]
                .warning
                .as_deref()
                .is_some_and(|w| w.contains("removes the customer's control of the key"))
        );
        assert_eq!(change.after["encryption"]["keySource"], "Microsoft.Storage");
        assert_eq!(
            change.before["encryption"]["keySource"],
            "Microsoft.Keyvault"
        );
        assert_eq!(
            change.backout,
            [vec![
                "az",
                "storage",
                "account",
                "update",
                "--name=st1",
                "--resource-group=-rg",
                "--encryption-key-source=Microsoft.Keyvault",
                "--encryption-key-vault=https://kv.vault.azure.net/",
                "--encryption-key-name=k",
                "--encryption-key-version=",
                "--key-vault-user-identity-id=/uai",
                "--subscription=sub",
                "--output=json"
            ]]
        );
    }

    /// A database's own key as `az sql db show --expand-keys` prints it (`dbkey`), with the
    /// list item's protector (`target`).
    fn own_key(identity_type: &str) -> Value {
        let key = "https://kv.vault.azure.net/keys/k/1";
        json!({"tde": {"state": "Enabled", "status": null},
               "target": {"encryptionProtector": key, "encryptionProtectorAutoRotation": true},
               "dbkey": {"encryptionProtector": key, "encryptionProtectorAutoRotation": true,
                         "keys": {key: {"type": "AzureKeyVault"}, "https://kv.vault.azure.net/keys/k2": {}},
                         "identity": {"type": identity_type, "userAssignedIdentities": {"/uai/one": {}, "/uai/two": {}}},
                         "federatedClientId": "fc-1"}})
    }

    #[test]
    fn database_with_its_own_key_is_reverted_and_restored_with_every_key_field() {
        let p = playbook("sql-database-tde-mmk");
        let context = json!({"target": {"id": "/d", "name": "db1", "resourceGroup": "rg"}, "server": {"name": "sql1", "resourceGroup": "rg"}});
        let change = derive(&p, "/d", "sub", &context, &own_key("UserAssigned")).unwrap();
        assert_eq!(change.status, ChangeStatus::Pending);
        assert_eq!(change.steps.len(), 1);
        assert_eq!(
            change.steps[0].argv[..6],
            ["az", "sql", "db", "tde", "key", "revert"]
        );
        assert_eq!(
            change.backout.len(),
            1,
            "TDE was on: only the key comes back"
        );
        let restore = &change.backout[0];
        assert_eq!(restore[..4], ["az", "sql", "db", "update"]);
        let after = |flag: &str| -> Vec<&str> {
            let at = restore.iter().position(|a| a == flag).expect(flag);
            restore[at + 1..]
                .iter()
                .take_while(|a| !a.starts_with("--"))
                .map(String::as_str)
                .collect()
        };
        let mut keys = after("--keys");
        keys.sort();
        assert_eq!(
            keys,
            [
                "https://kv.vault.azure.net/keys/k/1",
                "https://kv.vault.azure.net/keys/k2"
            ]
        );
        assert_eq!(
            after("--user-assigned-identity-id"),
            ["/uai/one", "/uai/two"]
        );
        for arg in [
            "--encryption-protector=https://kv.vault.azure.net/keys/k/1",
            "--assign-identity=true",
            "--federated-client-id=fc-1",
            "--encryption-protector-auto-rotation=true",
        ] {
            assert!(restore.contains(&arg.to_string()), "{arg} in {restore:?}");
        }
    }

    #[test]
    fn database_key_setup_az_cannot_restore_stays_manual() {
        let p = playbook("sql-database-tde-mmk");
        let context = json!({"target": {"id": "/d", "name": "db1", "resourceGroup": "rg"}, "server": {"name": "sql1", "resourceGroup": "rg"}});
        let change = derive(&p, "/d", "sub", &context, &own_key("SystemAssigned")).unwrap();
        assert_eq!(change.status, ChangeStatus::Manual);
        assert_eq!(change.steps.len(), 1);
        assert!(change.steps[0].argv.is_empty());
        assert!(!change.steps[0].reversible);
        let text = change.steps[0].instructions.as_ref().unwrap();
        assert!(
            text.contains("https://kv.vault.azure.net/keys/k/1") && text.contains("SystemAssigned")
        );

        let off = json!({"tde": {"state": "Disabled", "status": null}, "target": {"encryptionProtector": null, "encryptionProtectorAutoRotation": null}, "dbkey": null});
        let change = derive(&p, "/d", "sub", &context, &off).unwrap();
        assert_eq!(change.status, ChangeStatus::Pending);
        assert!(
            change.steps[0]
                .argv
                .contains(&"--status=Enabled".to_string())
        );
        assert_eq!(
            change.backout.len(),
            1,
            "no key of its own: no key to restore"
        );
        assert!(change.backout[0].contains(&"--status=Disabled".to_string()));
    }

    #[test]
    fn server_backout_registers_the_key_then_restores_rotation() {
        let p = playbook("sql-server-tde-protector-mmk");
        let context = json!({"target": {"id": "/srv", "name": "sql1", "resourceGroup": "rg"}});
        let before = json!({"serverKeyType": "AzureKeyVault", "serverKeyName": "kv_k_1",
                            "uri": "https://kv.vault.azure.net/keys/k/1", "autoRotationEnabled": true});
        let change = derive(&p, "/srv", "sub", &context, &before).unwrap();
        assert_eq!(change.backout.len(), 2);
        assert!(
            change.backout[0].contains(&"--kid=https://kv.vault.azure.net/keys/k/1".to_string())
        );
        assert_eq!(
            change.backout[0][..5],
            ["az", "sql", "server", "key", "create"]
        );
        assert!(change.backout[1].contains(&"--auto-rotation-enabled=true".to_string()));
        let no_rotation = json!({"serverKeyType": "AzureKeyVault", "serverKeyName": "kv_k_1",
                                 "uri": "https://kv.vault.azure.net/keys/k/1", "autoRotationEnabled": false});
        let change = derive(&p, "/srv", "sub", &context, &no_rotation).unwrap();
        assert!(
            !change.backout[1]
                .iter()
                .any(|a| a.starts_with("--auto-rotation"))
        );
    }

    #[test]
    fn context_fields_are_only_what_templates_read() {
        let p = playbook("sql-database-tde-mmk");
        let fields: Vec<String> = p.context_fields().iter().map(|f| f.to_string()).collect();
        // server.resourceGroup is read only by discovery, never by a step: not kept.
        assert_eq!(
            fields,
            [
                "server.name",
                "target.encryptionProtector",
                "target.id",
                "target.name",
                "target.resourceGroup"
            ]
        );
    }
}
