//! Credentials never reach a change log, a plan file or a report, even when a playbook records
//! a whole object: values under credential-like names, and values that look like credentials
//! (a connection string with a key, a SAS token), are replaced before anything is written.
//!
//! Key Vault references (vault URIs, key names, versions, key ids) are identifiers, not secrets:
//! backout needs them, so they are kept.

use serde_json::Value;

pub const REDACTED: &str = "[redacted by azbook]";

/// Field names (compared case-insensitively, ignoring `_` and `-`) whose values are credentials.
const SECRET_NAMES: &[&str] = &[
    "password",
    "administratorloginpassword",
    "secret",
    "clientsecret",
    "connectionstring",
    "primaryconnectionstring",
    "secondaryconnectionstring",
    "accountkey",
    "accesskey",
    "primarykey",
    "secondarykey",
    "primarymasterkey",
    "secondarymasterkey",
    "sastoken",
    "sas",
    "token",
    "accesstoken",
    "refreshtoken",
    "privatekey",
    "storageaccountaccesskey",
];

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_secret_name(name: &str) -> bool {
    let n = normalise(name);
    SECRET_NAMES.contains(&n.as_str()) || n.ends_with("password") || n.ends_with("secret")
}

/// A string that carries a credential whatever its field is called.
fn looks_like_a_credential(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.contains("accountkey=")
        || lower.contains("sharedaccesskey=")
        || lower.contains("password=")
        || lower.contains("pwd=")
        // A SAS token: a signature with its signed fields.
        || (lower.contains("sig=") && (lower.contains("sv=") || lower.contains("se=")))
        || lower.contains("-----begin") && lower.contains("private key")
}

/// Returns `value` with every credential replaced by [`REDACTED`]. Nulls stay null (that a
/// secret is unset is not a secret, and backout compares it).
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_secret_name(k) && !v.is_null() {
                        Value::String(REDACTED.into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(s) if looks_like_a_credential(s) => Value::String(REDACTED.into()),
        other => other.clone(),
    }
}

/// Redacts a value known only by its path (evidence keyed by `a.b.c`): the last segment names it.
pub fn redact_at(path: &str, value: &Value) -> Value {
    let name = path.rsplit('.').next().unwrap_or(path);
    if is_secret_name(name) && !value.is_null() {
        Value::String(REDACTED.into())
    } else {
        redact(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_go_key_vault_references_stay() {
        let doc = json!({
            "administratorLoginPassword": "hunter2",
            "keyVaultProperties": {"keyVaultUri": "https://kv.vault.azure.net/", "keyName": "k", "keyVersion": "abc",
                                   "currentVersionedKeyIdentifier": "https://kv.vault.azure.net/keys/k/abc"},
            "uri": "https://kv.vault.azure.net/keys/k/abc",
            "tags": {"note": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0", "owner": "ops"},
            "keys": [{"keyName": "key1", "value": "x", "primaryKey": "c2VjcmV0"}],
            "sasUrl": "https://a.blob.core.windows.net/c?sv=2021-08-06&se=2030&sig=abc%3D",
            "client_secret": "s",
            "password": null
        });
        let r = redact(&doc);
        assert_eq!(r["administratorLoginPassword"], REDACTED);
        assert_eq!(r["keyVaultProperties"], doc["keyVaultProperties"]);
        assert_eq!(r["uri"], doc["uri"]);
        assert_eq!(r["tags"]["note"], REDACTED);
        assert_eq!(r["tags"]["owner"], "ops");
        assert_eq!(r["keys"][0]["primaryKey"], REDACTED);
        assert_eq!(r["keys"][0]["keyName"], "key1");
        assert_eq!(r["sasUrl"], REDACTED);
        assert_eq!(r["client_secret"], REDACTED);
        assert_eq!(r["password"], Value::Null);
        assert!(!r.to_string().contains("hunter2") && !r.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn evidence_paths_are_redacted_by_their_last_name() {
        assert_eq!(
            redact_at("db.administratorLoginPassword", &json!("p")),
            REDACTED
        );
        assert_eq!(
            redact_at("encryption.keySource", &json!("Microsoft.Keyvault")),
            "Microsoft.Keyvault"
        );
    }
}
