//! Database-level customer keys through the CLI face: `az sql db show --expand-keys`,
//! `az sql db update` with its per-database key arguments (az's grammar, its client-side rules
//! and nargs='+' options) and `az sql db tde key revert`, on the demo fleet's `customers`
//! (sql-web-prod) and `orders` (sql-payments-prod).

use crate::harness::{Sim, text};
use serde_json::{Value, json};

const PROD: &str = "7d2f8a41-3c6b-4e19-9a5d-1b0e6f4c2a87";
const CUSTOMERS: &str = "-n customers -s sql-web-prod -g rg-web";
const ORDERS: &str = "-n orders -s sql-payments-prod -g rg-payments";
const KEY: &str =
    "https://kv-web-prod.vault.azure.net/keys/sql-customers-cmk/c6f0a3e9d2b74c1e8a5f9b0d3e7c2a61";
const OLD_KEY: &str =
    "https://kv-web-prod.vault.azure.net/keys/sql-customers-cmk/1a7d4c9e2f5b48e3a0c6d1f8b3e9a572";

fn uai(group_segment: &str, name: &str) -> String {
    format!(
        "/subscriptions/{PROD}/{group_segment}/rg-identity/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

fn demo() -> Sim {
    Sim::seeded("--fleet demo")
}

/// Exit code and the whole stderr of a failing call.
fn failure(sim: &Sim, line: &str) -> (Option<i32>, String) {
    let out = sim.az(line);
    assert!(out.stdout.is_empty(), "{line}: {}", text(&out.stdout));
    (out.status.code(), text(&out.stderr))
}

fn service_error(code: &str, message: &str) -> String {
    format!("ERROR: ({code}) {message}\nCode: {code}\nMessage: {message}\n")
}

#[test]
fn show_prints_the_keys_only_when_expanded() {
    let sim = demo();
    let plain = sim.json(&format!("sql db show {CUSTOMERS}"));
    assert_eq!(plain["keys"], Value::Null, "no $expand: no keys");
    assert_eq!(plain["encryptionProtector"], KEY);
    assert_eq!(plain["encryptionProtectorAutoRotation"], Value::Null);
    assert_eq!(plain["federatedClientId"], Value::Null);
    let identity = &plain["identity"];
    assert_eq!(identity["type"], "UserAssigned");
    assert_eq!(identity["tenantId"], Value::Null);
    let ids = identity["userAssignedIdentities"].as_object().expect("map");
    let id = uai("resourcegroups", "id-sql-customers-cmk");
    let entra = ids
        .get(&id)
        .expect("the id as given, lower-case resourcegroups");
    assert_eq!(
        entra.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["clientId", "principalId"]
    );
    for flag in ["--expand-keys", "--expand-keys true", "--expand-keys=TRUE"] {
        let expanded = sim.json(&format!("sql db show {CUSTOMERS} {flag}"));
        let keys = expanded["keys"].as_object().expect("a map");
        assert_eq!(keys.keys().collect::<Vec<_>>(), [OLD_KEY, KEY], "{flag}");
        let mut key = keys[KEY].clone();
        assert_eq!(key["thumbprint"].as_str().map(str::len), Some(40));
        key["thumbprint"] = json!("T");
        assert_eq!(
            key,
            json!({"creationDate": "2024-01-01T00:00:00+00:00", "keyVersion": null,
                   "subregion": null, "thumbprint": "T", "type": "AzureKeyVault"})
        );
        let mut rest = expanded.clone();
        rest["keys"] = Value::Null;
        assert_eq!(rest, plain, "{flag}: only keys differ");
    }
    let not_expanded = sim.json(&format!("sql db show {CUSTOMERS} --expand-keys false"));
    assert_eq!(not_expanded, plain);
    let filtered = sim.json(&format!(
        "sql db show {CUSTOMERS} --expand-keys --keys-filter 2024-06-01T00:00:00Z"
    ));
    assert_eq!(filtered["keys"].as_object().map(|k| k.len()), Some(2));
    let listed = sim.json("sql db list -s sql-web-prod -g rg-web");
    let from_list = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "customers")
        .unwrap();
    assert_eq!(from_list, &plain, "list prints what show prints");

    let orders = sim.json(&format!("sql db show {ORDERS}"));
    assert_eq!(orders["encryptionProtectorAutoRotation"], true);
    assert_eq!(
        orders["federatedClientId"],
        "d7b2e9a4-6c1f-4e83-b5a0-3f8c2d6e9b14"
    );
    let (code, err) = failure(
        &sim,
        &format!("sql db show {CUSTOMERS} --expand-keys maybe"),
    );
    assert_eq!(code, Some(2));
    assert!(err.starts_with("ERROR: az sql db show: 'maybe' is not a valid value for '--expand-keys'. Allowed values: true, false.\n"), "{err}");
    assert_eq!(
        failure(&sim, &format!("sql db show {CUSTOMERS} -e")).0,
        Some(2)
    );
}

#[test]
fn revert_moves_to_the_server_key_and_update_brings_it_back() {
    let sim = demo();
    let start = sim.dump();
    let revert = "sql db tde key revert -d customers -s sql-web-prod -g rg-web";
    let out = sim.az(revert);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "az prints nothing"
    );
    let reverted = sim.json(&format!("sql db show {CUSTOMERS} --expand-keys"));
    assert_eq!(reverted["encryptionProtector"], Value::Null);
    assert_eq!(reverted["keys"], Value::Null, "keys emptied");
    assert_eq!(
        reverted["identity"]["type"], "UserAssigned",
        "identity kept"
    );

    let id = uai("resourcegroups", "id-sql-customers-cmk");
    let restored = sim.json(&format!(
        "sql db update {CUSTOMERS} --encryption-protector {KEY} --keys {OLD_KEY} {KEY} -i --umi {id}"
    ));
    assert_eq!(restored["encryptionProtector"], KEY);
    assert_eq!(
        restored["keys"],
        Value::Null,
        "az prints the final GET: no keys"
    );
    assert_eq!(sim.dump(), start, "the world is as it was");

    let orders_revert = "sql db tde key revert --database orders --server sql-payments-prod --resource-group rg-payments";
    assert!(sim.az(orders_revert).status.success());
    let orders = sim.json(&format!("sql db show {ORDERS}"));
    assert_eq!(orders["encryptionProtectorAutoRotation"], Value::Null);
    assert_eq!(
        orders["federatedClientId"], "d7b2e9a4-6c1f-4e83-b5a0-3f8c2d6e9b14",
        "the federated client id belongs to the database"
    );
}

#[test]
fn revert_errors_as_the_service_answers() {
    let sim = demo();
    let at =
        |db: &str, server: &str| format!("sql db tde key revert -d {db} -s {server} -g rg-web");
    assert!(sim.az(&at("customers", "sql-web-prod")).status.success());
    assert_eq!(
        failure(&sim, &at("customers", "sql-web-prod")),
        (
            Some(1),
            service_error(
                "DatabaseEncryptionProtectorNotSet",
                "The database 'customers' has no database-level encryption protector to revert: it already uses the server's."
            )
        )
    );
    assert_eq!(
        failure(&sim, &at("master", "sql-web-prod")),
        (
            Some(1),
            service_error(
                "OperationNotSupportedOnSystemDatabase",
                "The encryption protector cannot be changed on the system database 'master'."
            )
        )
    );
    assert_eq!(
        failure(&sim, &at("nosuch", "sql-web-prod")),
        (
            Some(3),
            service_error(
                "ResourceNotFound",
                "The requested resource of type 'Microsoft.Sql/servers/databases' with name 'nosuch' was not found."
            )
        )
    );
    assert_eq!(failure(&sim, &at("web", "sql-nosuch")).0, Some(3));
    assert_eq!(
        failure(&sim, "sql db tde key revert -s sql-web-prod -d web"),
        (
            Some(1),
            "ERROR: (--resource-group | --ids) are required\n".to_string()
        )
    );
    let id = format!(
        "/subscriptions/{PROD}/resourceGroups/rg-payments/providers/Microsoft.Sql/servers/sql-payments-prod/databases/orders"
    );
    assert!(
        sim.az(&format!("sql db tde key revert --ids {id}"))
            .status
            .success()
    );
    assert_eq!(
        sim.json(&format!("sql db show --ids {id}"))["encryptionProtector"],
        Value::Null
    );
}

#[test]
fn update_follows_az_client_side_rules() {
    let sim = demo();
    let new_id = uai("resourceGroups", "id-new");
    // --umi without -i is ignored, as custom.py's db_update does.
    let before = sim.json(&format!("sql db show {ORDERS}"));
    let same = sim.json(&format!("sql db update {ORDERS} --umi {new_id}"));
    assert_eq!(same["identity"], before["identity"]);
    assert_eq!(
        same, before,
        "an update that changes nothing prints the database as it was"
    );
    // nargs='+': the keys run to the next option.
    let k1 = "https://kv-orders-new.vault.azure.net/keys/k1/0a0b";
    let k2 = "https://kv-orders-new.vault.azure.net/keys/k2";
    let updated = sim.json(&format!(
        "sql db update {ORDERS} --keys {k1} {k2} -i --umi {new_id} --epauto false --federated-client-id f1"
    ));
    assert_eq!(updated["encryptionProtectorAutoRotation"], false);
    assert_eq!(updated["federatedClientId"], "f1");
    let ids = updated["identity"]["userAssignedIdentities"]
        .as_object()
        .unwrap();
    assert_eq!(
        ids.keys().collect::<Vec<_>>(),
        [&new_id],
        "-i --umi replaces the identity"
    );
    let keys = |sim: &Sim| -> Vec<String> {
        let shown = sim.json(&format!("sql db show {ORDERS} --expand-keys"));
        shown["keys"].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(
        keys(&sim).len(),
        4,
        "keys merge: the two kept and the two added"
    );
    let out = sim.az(&format!(
        "sql db update {ORDERS} --keys-to-remove {k1} {k2} --no-wait"
    ));
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "--no-wait prints nothing"
    );
    assert_eq!(keys(&sim).len(), 2);
    // -i alone changes nothing (custom.py needs --umi too).
    assert_eq!(
        sim.json(&format!("sql db update {ORDERS} -i"))["identity"],
        updated["identity"]
    );
}

#[test]
fn update_refusals_as_the_service_answers() {
    let sim = demo();
    let before = sim.json(&format!("sql db show {ORDERS}"));

    let protector = before["encryptionProtector"].as_str().unwrap();
    assert_eq!(
        failure(
            &sim,
            &format!("sql db update {ORDERS} --keys-to-remove {protector}")
        ),
        (
            Some(1),
            service_error(
                "InvalidDatabaseKeysToRemove",
                &format!(
                    "The key '{protector}' is the database's encryption protector and cannot be removed."
                )
            )
        )
    );
    assert_eq!(
        failure(
            &sim,
            &format!("sql db update {ORDERS} --encryption-protector https://example.com/k")
        ),
        (
            Some(1),
            service_error(
                "AzureKeyVaultInvalidUri",
                "An invalid response from Azure Key Vault. Please use a valid Azure Key Vault URI."
            )
        )
    );
    assert_eq!(
        failure(
            &sim,
            "sql db update -n master -s sql-web-prod -g rg-web --keys-to-remove x"
        )
        .0,
        Some(1)
    );
    assert_eq!(
        failure(&sim, "sql db update -n nosuch -s sql-web-prod -g rg-web").0,
        Some(3)
    );
}

#[test]
fn update_grammar_as_azure_cli() {
    let sim = demo();
    let examples = "\nExamples from command's help:\n\
        az sql db update -g mygroup -s myserver -n mydb --max-size 500GB\nUpdate database with increased max size\n\n\
        az sql db update -g mygroup -s myserver -n mydb -z\nUpdate database with zone redundancy enabled\n\n\
        az sql db update -g mygroup -s myserver -n mydb -z false\nUpdate database with zone redundancy explicitly disabled\n\n\
        https://aka.ms/cli_ref\nRead more about the command in reference docs\n";
    let footer = "\nhttps://aka.ms/cli_ref\nRead more about the command in reference docs\n";
    let cases = [
        ("--keys", "ERROR: argument --keys: expected at least one argument\n".to_string() + examples),
        ("--keys-to-remove -i", "ERROR: argument --keys-to-remove: expected at least one argument\n".to_string() + examples),
        ("--umi", "ERROR: argument --user-assigned-identity-id/--umi: expected at least one argument\n".to_string() + examples),
        ("--encryption-protector", "ERROR: argument --encryption-protector: expected one argument\n".to_string() + examples),
        ("-i maybe", "ERROR: az sql db update: 'maybe' is not a valid value for '--assign-identity'. Allowed values: true, false.\n".to_string() + examples),
        ("--epauto maybe", "ERROR: az sql db update: 'maybe' is not a valid value for '--encryption-protector-auto-rotation'. Allowed values: true, false.\n".to_string() + examples),
        ("-d orders", "ERROR: unrecognized arguments: -d orders\n".to_string() + footer),
        ("--max-size 10GB", "ERROR: unrecognized arguments: --max-size 10GB\n".to_string() + footer),
    ];
    for (args, want) in cases {
        assert_eq!(
            failure(&sim, &format!("sql db update {ORDERS} {args}")),
            (Some(2), want),
            "{args}"
        );
    }
    let (code, err) = failure(&sim, &format!("sql db update {ORDERS} --set tags.a=b"));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--set, --add and --remove are not simulated"),
        "{err}"
    );
    assert!(
        sim.az(&format!("sql db update {ORDERS} --force-string"))
            .status
            .success()
    );
    assert_eq!(
        failure(&sim, "sql db update -s sql-web-prod -g rg-web"),
        (
            Some(1),
            "ERROR: (--name | --ids) are required\n".to_string()
        )
    );
    let id = format!(
        "/subscriptions/{PROD}/resourceGroups/rg-web/providers/Microsoft.Sql/servers/sql-web-prod/databases/customers"
    );
    let by_id = sim.json(&format!("sql db update --ids {id} --epauto"));
    assert_eq!(by_id["encryptionProtectorAutoRotation"], true);
    let help = sim.az("sql db update --help");
    assert!(text(&help.stdout).contains("--keys-to-remove"));
    assert!(
        text(&help.stdout).contains(
            "--encryption-protector-auto-rotation --epauto  Allowed values: false, true."
        )
    );
}
