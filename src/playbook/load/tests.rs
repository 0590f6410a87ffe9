//! The loader's unit tests: the built-in playbooks, and each rule with a playbook that breaks it.

use super::*;
use serde_json::json;

fn by_id<'a>(all: &'a [Playbook], id: &str) -> &'a Playbook {
    all.iter()
        .find(|p| p.id == id)
        .expect("a built-in playbook")
}

#[test]
fn builtin_playbooks_load() {
    let all = builtin();
    let ids: Vec<&str> = all.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "storage-account-mmk",
            "storage-encryption-scope-mmk",
            "sql-server-tde-protector-mmk",
            "sql-managed-instance-tde-protector-mmk",
            "sql-database-tde-mmk"
        ]
    );
}

#[test]
fn storage_backout_restores_key_version_exactly() {
    let all = builtin();
    let storage = &all[0];
    let Action::Az(argv) = &storage.backout[0].action else {
        panic!("backout is an az step")
    };
    let ctx = |version: serde_json::Value| {
        json!({"target": {"name": "st1", "resourceGroup": "-rg"},
               "before": {"encryption": {"keySource": "Microsoft.Keyvault",
                   "keyVaultProperties": {"keyVaultUri": "https://kv.vault.azure.net/", "keyName": "k", "keyVersion": version},
                   "encryptionIdentity": {"encryptionUserAssignedIdentity": null, "encryptionFederatedIdentityClientId": null}}}})
    };
    let null = argv.render(&ctx(json!(null))).unwrap();
    assert!(
        !null
            .iter()
            .any(|a| a.starts_with("--encryption-key-version"))
    );
    let empty = argv.render(&ctx(json!(""))).unwrap();
    assert!(empty.contains(&"--encryption-key-version=".to_string()));
    let pinned = argv.render(&ctx(json!("abc"))).unwrap();
    assert!(pinned.contains(&"--encryption-key-version=abc".to_string()));
    assert!(pinned.contains(&"--resource-group=-rg".to_string()));
}

#[test]
fn discovery_keeps_only_the_fields_the_playbooks_read() {
    let all = builtin();
    let names = |tree: crate::fieldtree::FieldTree| -> Vec<String> {
        tree.top_level()
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect()
    };
    assert_eq!(
        names(all[0].level_fields(0)),
        ["encryption", "id", "name", "resourceGroup", "tags"]
    );
    // Of the account's `encryption`, only the paths the playbook reads.
    let account = serde_json::json!({
        "name": "a",
        "primaryEndpoints": {"blob": "https://a.blob.core.windows.net/"},
        "encryption": {
            "keySource": "Microsoft.Keyvault",
            "keyVaultProperties": {"keyName": "k", "keyVaultUri": "https://v/", "lastKeyRotationTimestamp": "t"},
            "services": {"blob": {"enabled": true, "keyType": "Account"}},
            "requireInfrastructureEncryption": false
        }
    });
    assert_eq!(
        all[0].level_fields(0).trim(account),
        serde_json::json!({"name": "a", "encryption": {
            "keySource": "Microsoft.Keyvault",
            "keyVaultProperties": {"keyName": "k", "keyVaultUri": "https://v/"}
        }})
    );
    assert_eq!(
        names(by_id(&all, "sql-database-tde-mmk").level_fields(0)),
        ["id", "name", "resourceGroup", "tags"]
    );
    // The database list also serves the verdict's database-level key (`target.` fields).
    assert_eq!(
        names(by_id(&all, "sql-database-tde-mmk").level_fields(1)),
        [
            "encryptionProtector",
            "encryptionProtectorAutoRotation",
            "id",
            "kind",
            "name",
            "resourceGroup",
            "sku",
            "tags"
        ]
    );
}

/// GOOD with named reads whose verdict also reads the listed item as `target`.
fn named_reads(refresh: bool) -> String {
    let show = r#"["az", "storage", "account", "show", "--name={target.name}", "--resource-group={target.resourceGroup}"]"#;
    let refresh = if refresh {
        format!("refresh = {show}\n")
    } else {
        String::new()
    };
    GOOD.replace(
        "compliant = \"encryption.keySource == 'Microsoft.Storage'\"",
        "compliant = \"target.encryption.keySource == 'Microsoft.Storage' && shown.name != ''\"",
    )
    .replace(
        r#"record = ["encryption.keySource"]"#,
        r#"record = ["target.encryption.keySource"]"#,
    )
    .replace(&format!("refresh = {show}\n"), "")
    .replace("[test]\n", &format!("[test]\n{refresh}"))
        + &format!(
            "[test.reads]\nshown = {show}\n[[implement]]\nname = \"n\"\nargv = [\"az\", \"storage\", \"account\", \"update\", \"--name={{target.name}}\", \"--encryption-key-source=Microsoft.Storage\"]\n"
        )
}

#[test]
fn named_reads_see_the_listed_target_and_keep_its_fields() {
    let playbook = parse("p.toml", &named_reads(true), "p.toml").unwrap();
    // What a read-back after a change may take from the recorded state instead of reading.
    assert!(playbook.test.verdict_is_recorded("target"));
    assert!(
        !playbook.test.verdict_is_recorded("shown"),
        "shown.name is not recorded"
    );
    let keep = playbook.level_fields(0);
    assert!(
        keep.top_level().unwrap().contains(&"encryption"),
        "{keep:?}"
    );
    let e = errors(&named_reads(false));
    assert!(e[0].message.contains("needs `refresh`"), "{}", e[0].message);
    let e = errors(&named_reads(true).replace("shown = [", "target = ["));
    assert!(
        e.iter().any(|e| e.message.contains("not a read name")),
        "{e:?}"
    );
}

fn errors(text: &str) -> Vec<LoadError> {
    parse("p.toml", text, "p.toml").unwrap_err().0
}

const GOOD: &str = r#"
schema = 1
id = "x"
title = "t"
resource_type = "Microsoft.Storage/storageAccounts"
[control]
id = "1"
title = "c"
[[discover]]
name = "account"
argv = ["az", "storage", "account", "list"]
[test]
compliant = "encryption.keySource == 'Microsoft.Storage'"
record = ["encryption.keySource"]
refresh = ["az", "storage", "account", "show", "--name={target.name}", "--resource-group={target.resourceGroup}"]
"#;

#[test]
fn judged_fields_are_the_controlled_ones_and_all_backout_writes() {
    let judged = |id: &str| -> Vec<String> {
        let p = builtin().into_iter().find(|p| p.id == id).unwrap();
        p.judged().iter().map(|f| f.to_string()).collect()
    };
    assert_eq!(
        judged("storage-account-mmk"),
        [
            "encryption.keySource",
            "encryption.keyVaultProperties.keyVaultUri",
            "encryption.keyVaultProperties.keyName",
            "encryption.keyVaultProperties.keyVersion",
            "encryption.encryptionIdentity.encryptionUserAssignedIdentity",
            "encryption.encryptionIdentity.encryptionFederatedIdentityClientId",
        ],
        "the key a precheck reads (currentVersionedKeyIdentifier) is computed, not written"
    );
    assert_eq!(
        judged("sql-server-tde-protector-mmk"),
        ["serverKeyType", "uri"],
        "autoRotationEnabled is written but declared not compared; serverKeyName is computed"
    );
}

#[test]
fn not_compared_needs_a_recorded_field_that_is_not_controlled_and_a_reason() {
    let with = |entry: &str| {
        GOOD.replace(
            "record = [\"encryption.keySource\"]",
            &format!("record = [\"encryption.keySource\", \"encryption.keyVaultProperties.keyName\"]\ncontrolled = [\"encryption.keySource\"]\nnot_compared = [{entry}]"),
        )
    };
    let ok = with(r#"{ field = "encryption.keyVaultProperties.keyName", reason = "r" }"#);
    assert!(parse("p.toml", &ok, "p.toml").is_ok());
    for (entry, says) in [
        (
            r#"{ field = "encryption.requireInfrastructureEncryption", reason = "r" }"#,
            "not in `record`",
        ),
        (
            r#"{ field = "encryption.keySource", reason = "r" }"#,
            "is controlled",
        ),
        (
            r#"{ field = "encryption.keyVaultProperties.keyName", reason = " " }"#,
            "say why",
        ),
    ] {
        let e = errors(&with(entry));
        assert!(e[0].message.contains(says), "{entry}: {}", e[0].message);
        assert_eq!(e[0].line, 16, "{entry}");
    }
}

#[test]
fn a_minimal_playbook_loads() {
    assert!(parse("p.toml", GOOD, "p.toml").is_ok());
}

#[test]
fn unknown_key_is_located() {
    let e = errors(&GOOD.replace("title = \"t\"", "title = \"t\"\ncolour = 1"));
    assert_eq!((e[0].line, e[0].column), (5, 1));
    assert!(e[0].message.contains("colour"), "{}", e[0].message);
}

#[test]
fn misspelt_field_in_verdict_is_located_inside_the_string() {
    let e = errors(&GOOD.replace("encryption.keySource ==", "encryption.keySorce =="));
    assert_eq!(e[0].line, 13);
    assert_eq!(e[0].column, 14);
    assert!(
        e[0].message.contains("did you mean `keySource`"),
        "{}",
        e[0].message
    );
}

#[test]
fn a_program_other_than_az_is_refused() {
    let e = errors(&GOOD.replace(r#"["az", "storage""#, r#"["bash", "storage""#));
    assert!(e[0].message.contains("only `az`"), "{}", e[0].message);
    assert_eq!(e[0].line, 11);
}

#[test]
fn placeholder_must_follow_a_flag() {
    let text = format!(
        "{GOOD}[[implement]]\nname = \"n\"\nargv = [\"az\", \"storage\", \"account\", \"update\", \"{{target.name}}\"]\n"
    );
    let e = errors(&text);
    assert!(e[0].message.contains("--flag="), "{}", e[0].message);
    assert_eq!(e[0].line, 18);
}

#[test]
fn next_marker_must_be_a_long_option() {
    let paged = GOOD.replace(
        "argv = [\"az\", \"storage\", \"account\", \"list\"]\n",
        "argv = [\"az\", \"storage\", \"account\", \"list\"]\nnext_marker = \"--marker\"\n",
    );
    let p = parse("p.toml", &paged, "p.toml").unwrap();
    assert_eq!(p.discover[0].next_marker.as_deref(), Some("--marker"));
    let e = errors(&paged.replace("\"--marker\"", "\"marker x\""));
    assert!(e[0].message.contains("long option"), "{}", e[0].message);
    assert_eq!(e[0].line, 12);
}

/// GOOD with a backout step whose `--keys` lists the recorded tags' names.
fn with_list_argument(each: &str) -> String {
    format!(
        "{}[[backout]]\nname = \"n\"\nargv = [\"az\", \"storage\", \"account\", \"update\", \"--name={{target.name}}\", {{ arg = \"--keys\", each = \"{each}\" }}]\n",
        GOOD.replace(
            "record = [\"encryption.keySource\"]",
            "record = [\"encryption.keySource\", \"tags\"]"
        )
    )
}

#[test]
fn a_list_argument_gives_its_option_then_one_argument_per_value() {
    let p = parse(
        "p.toml",
        &with_list_argument("keys(before.tags || `{}`)"),
        "p",
    )
    .unwrap();
    let Action::Az(argv) = &p.backout[0].action else {
        panic!("an az step")
    };
    let ctx = |tags: Value| json!({"target": {"name": "st1"}, "before": {"tags": tags}});
    assert_eq!(
        argv.render(&ctx(json!({"a": "1", "b": "2"}))).unwrap(),
        [
            "az",
            "storage",
            "account",
            "update",
            "--name=st1",
            "--keys",
            "a",
            "b"
        ]
    );
    // Nothing to give: not even the option.
    assert_eq!(argv.render(&ctx(json!(null))).unwrap().len(), 5);
    // A value az would read as an option is refused, never passed.
    let e = argv
        .render(&ctx(json!({"--subscription": "x"})))
        .unwrap_err();
    assert!(e.contains("as an option"), "{e}");
    // The judged fields include what the list reads.
    assert!(p.backout_writes().iter().any(|f| f.to_string() == "tags"));
}

#[test]
fn a_list_argument_is_checked_when_the_playbook_loads() {
    let e = errors(&with_list_argument("keys(before.tagz || `{}`)"));
    assert!(e[0].message.contains("cannot exist"), "{}", e[0].message);
    let e = errors(&with_list_argument("keys(before.tags").replace("\"--keys\"", "\"--keys=x\""));
    assert!(!e.is_empty());
    let e = errors(
        &with_list_argument("keys(before.tags || `{}`)")
            .replace("\"--keys\"", "\"--keys={target.name}\""),
    );
    assert!(
        e[0].message.contains("long option alone"),
        "{}",
        e[0].message
    );
    let bare = with_list_argument("x").replace(", each = \"x\"", "");
    let e = errors(&bare);
    assert!(
        e[0].message.contains("`when`") && e[0].message.contains("`each`"),
        "{}",
        e[0].message
    );
}

#[test]
fn a_conditional_read_names_a_read_and_fields_that_exist() {
    let reads = named_reads(true);
    let with = |when: &str| format!("{reads}[test.read_when]\nshown = \"{when}\"\n");
    assert!(parse("p.toml", &with("target.name != 'x'"), "p").is_ok());
    let e = errors(&with("target.nme != 'x'"));
    assert!(e[0].message.contains("cannot exist"), "{}", e[0].message);
    let e = errors(&with("true").replace("read_when]\nshown", "read_when]\nshwn"));
    assert!(e[0].message.contains("not a read"), "{}", e[0].message);
    let e = errors(&format!("{GOOD}[test.read_when]\nx = \"true\"\n"));
    assert!(e[0].message.contains("has none"), "{}", e[0].message);
}

#[test]
fn long_running_belongs_to_an_az_step_and_says_why() {
    let step = |extra: &str| {
        format!(
            "{GOOD}[[implement]]\nname = \"n\"\nargv = [\"az\", \"storage\", \"account\", \"update\", \"--name={{target.name}}\"]\n{extra}"
        )
    };
    let p = parse("p.toml", &step("long_running = \"minutes\"\n"), "p").unwrap();
    assert_eq!(p.implement[0].long_running.as_deref(), Some("minutes"));
    let e = errors(&step("long_running = \" \"\n"));
    assert!(e[0].message.contains("long_running"), "{}", e[0].message);
}

#[test]
fn destructive_commands_are_known_by_their_words() {
    for (command, expected) in [
        ("group delete", Some("deletes")),
        ("storage account delete", Some("deletes")),
        ("sql server key delete", Some("deletes")),
        ("storage blob delete-batch", Some("deletes")),
        ("keyvault delete-policy", Some("deletes")),
        ("keyvault key purge", Some("purges")),
        ("keyvault purge", Some("purges")),
        ("storage account network-rule remove", Some("removes")),
        ("storage message clear", Some("removes")),
        ("storage account revoke-delegation-keys", Some("revokes")),
        ("disk revoke-access", Some("revokes")),
        (
            "storage account keys renew",
            Some("regenerates keys or credentials"),
        ),
        (
            "cosmosdb keys regenerate",
            Some("regenerates keys or credentials"),
        ),
        (
            "redis regenerate-keys",
            Some("regenerates keys or credentials"),
        ),
        (
            "iot hub policy renew-key",
            Some("regenerates keys or credentials"),
        ),
        (
            "ad sp credential reset",
            Some("regenerates keys or credentials"),
        ),
        ("role assignment create", Some("grants access")),
        ("keyvault role assignment create", Some("grants access")),
        ("ad app permission grant", Some("grants access")),
        ("keyvault set-policy", Some("grants access")),
        ("sql server ad-admin create", Some("grants access")),
        ("ad group member add", Some("grants access")),
        ("Group Delete", Some("deletes")),
        // What the built-in playbooks and their reads run.
        ("sql server key create", None),
        ("sql server key list", None),
        ("sql server tde-key set", None),
        ("sql db tde set", None),
        ("storage account update", None),
        ("storage account list", None),
        ("keyvault key show", None),
        ("role assignment list", None),
        ("keyvault key rotate", None),
    ] {
        let words: Vec<&str> = command.split(' ').collect();
        assert_eq!(destructive_command(&words), expected, "az {command}");
    }
}

#[test]
fn no_step_or_read_of_a_builtin_playbook_is_destructive() {
    for p in builtin() {
        let mut argvs: Vec<&Argv> = p.discover.iter().map(|l| &l.argv).collect();
        match &p.test.reads {
            Reads::None => {}
            Reads::One(argv) => argvs.push(argv),
            Reads::Named(named) => argvs.extend(named.iter().map(|r| &r.argv)),
        }
        argvs.extend(&p.test.refresh);
        argvs.extend(p.prechecks.iter().map(|c| &c.read));
        for step in p.implement.iter().chain(&p.backout) {
            if let Action::Az(argv) = &step.action {
                argvs.push(argv);
            }
            argvs.extend(step.skip_if.as_ref().map(|s| &s.read));
        }
        assert!(argvs.len() >= 4, "{}", p.id);
        for argv in argvs {
            assert_eq!(
                argv.destructive(),
                None,
                "{}: az {}",
                p.id,
                argv.command_words().join(" ")
            );
        }
    }
}

/// GOOD with one implement step running `argv` (a TOML array), with `extra` lines.
fn with_step(table: &str, argv: &str, extra: &str) -> String {
    format!("{GOOD}[[{table}]]\nname = \"n\"\nargv = {argv}\n{extra}")
}

const DELETE: &str = r#"["az", "storage", "account", "delete", "--name={target.name}", "--resource-group={target.resourceGroup}", "--yes"]"#;

#[test]
fn a_destructive_step_must_say_it_cannot_be_undone_and_why() {
    let e = errors(&with_step("implement", DELETE, ""));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].line, e[0].column), (18, 8), "at the step's argv");
    for says in [
        "`az storage account delete` deletes",
        "`reversible = false` and a `warning`",
        "--allow-destructive",
    ] {
        assert!(e[0].message.contains(says), "{says}: {}", e[0].message);
    }
    let e = errors(&with_step("implement", DELETE, "reversible = false\n"));
    assert!(
        !e[0].message.contains("`reversible = false`"),
        "{}",
        e[0].message
    );
    assert!(e[0].message.contains("a `warning`"), "{}", e[0].message);
    let e = errors(&with_step(
        "implement",
        DELETE,
        "warning = \"the data is gone\"\n",
    ));
    assert!(
        e[0].message.contains("`reversible = false`"),
        "{}",
        e[0].message
    );
    assert!(!e[0].message.contains("a `warning`"), "{}", e[0].message);
    let e = errors(&with_step(
        "implement",
        DELETE,
        "reversible = false\nwarning = \"  \"\n",
    ));
    assert!(e[0].message.contains("a `warning`"), "{}", e[0].message);
    let e = errors(&with_step(
        "implement",
        DELETE,
        "reversible = true\nwarning = \"the data is gone\"\n",
    ));
    assert!(
        e[0].message.contains("`reversible = false`"),
        "{}",
        e[0].message
    );
    // A command word that is conditional counts as well.
    let hidden = DELETE.replace(r#""delete""#, r#"{ arg = "delete", when = "`true`" }"#);
    let e = errors(&with_step("implement", &hidden, ""));
    assert!(e[0].message.contains("deletes"), "{}", e[0].message);

    let declared = with_step(
        "implement",
        DELETE,
        "reversible = false\nwarning = \"the account and its data are gone\"\n",
    );
    let playbook = parse("p.toml", &declared, "p.toml").unwrap();
    let step = &playbook.implement[0];
    assert!(!step.reversible);
    let Action::Az(argv) = &step.action else {
        panic!("an az step")
    };
    assert_eq!(argv.destructive(), Some("deletes"));
}

#[test]
fn a_destructive_backout_step_must_declare_itself_too() {
    let grant = r#"["az", "role", "assignment", "create", "--assignee=ops@contoso.com", "--role=Owner", "--scope={target.id}"]"#;
    let e = errors(&with_step("backout", grant, ""));
    assert_eq!(e[0].line, 18);
    assert!(
        e[0].message
            .contains("`az role assignment create` grants access"),
        "{}",
        e[0].message
    );
    let renew = r#"["az", "storage", "account", "keys", "renew", "--account-name={target.name}", "--key=primary"]"#;
    let e = errors(&with_step("backout", renew, ""));
    assert!(
        e[0].message.contains("regenerates keys"),
        "{}",
        e[0].message
    );
    let ok = with_step(
        "backout",
        renew,
        "reversible = false\nwarning = \"every client using the primary key stops working\"\n",
    );
    assert!(parse("p.toml", &ok, "p.toml").is_ok());
    let create = r#"["az", "sql", "server", "key", "create", "--server={target.name}", "--resource-group={target.resourceGroup}", "--kid=https://kv/keys/k"]"#;
    assert!(parse("p.toml", &with_step("backout", create, ""), "p.toml").is_ok());
}

#[test]
fn a_read_may_never_be_destructive() {
    let text = GOOD.replace(
        r#"refresh = ["az", "storage", "account", "show""#,
        r#"refresh = ["az", "storage", "account", "delete""#,
    );
    let e = errors(&text);
    assert_eq!((e[0].line, e[0].column), (15, 11), "{e:?}");
    assert!(e[0].message.contains("a read"), "{}", e[0].message);
    let text = format!(
        "{GOOD}[[precheck]]\nname = \"p\"\nread = [\"az\", \"keyvault\", \"key\", \"purge\", \"--name=k\"]\nwarning = \"w\"\n"
    );
    let e = errors(&text);
    assert_eq!(e[0].line, 18);
    assert!(e[0].message.contains("purges"), "{}", e[0].message);
}

#[test]
fn before_is_limited_to_recorded_fields() {
    let text = format!(
        "{GOOD}[[backout]]\nname = \"n\"\nargv = [\"az\", \"storage\", \"account\", \"update\", \"--name={{before.name}}\"]\n"
    );
    let e = errors(&text);
    assert!(e[0].message.contains("record"), "{}", e[0].message);
}

#[test]
fn every_key_of_a_map_is_for_record_only_and_only_on_a_map() {
    let with = |field: &str, list: &str| {
        GOOD.replace(
            "record = [\"encryption.keySource\"]",
            &format!("record = [\"encryption.keySource\"]\n{list} = [\"{field}\"]"),
        )
        .replace("record = [\"encryption.keySource\"]\nrecord", "record")
    };
    assert!(parse("p.toml", &with("tags.*", "record"), "p").is_ok());
    let e = errors(&with("tags.*", "evidence"));
    assert!(
        e[0].message.contains("for `record` only"),
        "{}",
        e[0].message
    );
    let e = errors(&with("encryption.*", "record"));
    assert!(e[0].message.contains("cannot exist"), "{}", e[0].message);
}
