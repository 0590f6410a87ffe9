//! `az keyvault key show --id`: the one Key Vault read the playbooks make (a precheck that the
//! customer key backout needs still exists).
//!
//! azsim has no Key Vault model: every well-formed key identifier names an existing key, and a
//! missing or unreadable key is simulated with a fault (`"command": "keyvault key show"`).

use super::{Command, Ctx, arg};
use crate::args::{CommandSpec, Param, Parsed};
use crate::errors::CommandError;
use serde_json::{Value, json};

const ID: Param = Param::one("identifier", &["--id"]).required();

pub const COMMANDS: &[Command] = &[Command {
    spec: CommandSpec {
        words: &["keyvault", "key", "show"],
        summary: "Get a key's attributes and, if it's an asymmetric key, its public material.",
        examples: &[(
            "az keyvault key show --id https://myvault.vault.azure.net/keys/mykey",
            "Get a key's attributes.",
        )],
        params: &[ID],
        mutating: false,
        ids: false,
        subscription: true,
        validate: None,
    },
    run: show,
}];

/// `https://{vault}.vault.azure.net/keys/{name}[/{version}]` split into its parts.
fn parse_kid(kid: &str) -> Option<(&str, &str, Option<&str>)> {
    let rest = kid.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/')?;
    let vault = host.strip_suffix(".vault.azure.net")?;
    let mut parts = path.trim_end_matches('/').split('/');
    if parts.next()? != "keys" {
        return None;
    }
    let name = parts.next().filter(|n| !n.is_empty())?;
    let version = parts.next().filter(|v| !v.is_empty());
    if parts.next().is_some() || vault.is_empty() {
        return None;
    }
    Some((vault, name, version))
}

fn show(_: &mut Ctx, p: &Parsed) -> Result<Value, CommandError> {
    let kid = arg(p, "identifier");
    let (vault, name, version) = parse_kid(kid).ok_or_else(|| {
        CommandError::validation(format!(
            "argument --id: invalid key identifier '{kid}': expected https://<vault>.vault.azure.net/keys/<name>[/<version>]"
        ))
    })?;
    let version = version.map_or_else(
        || "0123456789abcdef0123456789abcdef".to_string(),
        str::to_string,
    );
    Ok(json!({
        "attributes": {
            "created": "2024-01-01T00:00:00+00:00",
            "enabled": true,
            "expires": null,
            "exportable": false,
            "notBefore": null,
            "recoverableDays": 90,
            "recoveryLevel": "Recoverable+Purgeable",
            "updated": "2024-01-01T00:00:00+00:00"
        },
        "key": {
            "crv": null, "d": null, "dp": null, "dq": null, "e": "AQAB", "k": null,
            "keyOps": ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"],
            "kid": format!("https://{vault}.vault.azure.net/keys/{name}/{version}"),
            "kty": "RSA", "n": null, "p": null, "q": null, "qi": null, "t": null, "x": null, "y": null
        },
        "managed": null,
        "releasePolicy": null,
        "tags": null
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_identifiers_parse() {
        assert_eq!(
            parse_kid("https://kv1.vault.azure.net/keys/k/0123"),
            Some(("kv1", "k", Some("0123")))
        );
        assert_eq!(
            parse_kid("https://kv1.vault.azure.net/keys/k"),
            Some(("kv1", "k", None))
        );
        assert_eq!(parse_kid("https://kv1.vault.azure.net/secrets/k"), None);
        assert_eq!(parse_kid("https://example.com/keys/k"), None);
        assert_eq!(parse_kid("https://kv1.vault.azure.net/keys/k/1/2"), None);
    }
}
