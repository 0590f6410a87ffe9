//! ARM resource ids and Key Vault key identifiers: building them as Azure prints them, and taking
//! them apart as azure-cli does (`parse_resource_id`, `_get_server_key_name_from_uri`).

/// The parts of an ARM id that `--ids` can fill.
#[derive(Debug, Default, PartialEq)]
pub struct IdParts {
    pub subscription: Option<String>,
    pub resource_group: Option<String>,
    pub name: Option<String>,
    pub child_name_1: Option<String>,
}

/// Parses `/subscriptions/S/resourceGroups/G/providers/NS/type/name[/childType/childName...]`;
/// segment names compare case-insensitively. Missing parts stay `None`, so a malformed id ends in
/// az's "(... | --ids) are required" error rather than a guess.
pub fn parse(id: &str) -> IdParts {
    let segs: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    let mut parts = IdParts::default();
    let mut i = 0;
    while i + 1 < segs.len() {
        let (key, value) = (segs[i].to_ascii_lowercase(), segs[i + 1].to_string());
        match key.as_str() {
            "subscriptions" => parts.subscription = Some(value),
            "resourcegroups" => parts.resource_group = Some(value),
            "providers" => {
                // providers/NS/type/name, then pairs of childType/childName.
                let rest = &segs[i + 2..];
                parts.name = rest.get(1).map(|s| s.to_string());
                parts.child_name_1 = rest.get(3).map(|s| s.to_string());
                break;
            }
            _ => {}
        }
        i += 2;
    }
    parts
}

pub fn resource_id(sub: &str, rg: &str, provider_type: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider_type}/{name}")
}

pub fn storage_id(sub: &str, rg: &str, name: &str) -> String {
    resource_id(sub, rg, "Microsoft.Storage/storageAccounts", name)
}

pub fn encryption_scope_id(sub: &str, rg: &str, account: &str, name: &str) -> String {
    format!("{}/encryptionScopes/{name}", storage_id(sub, rg, account))
}

pub fn server_id(sub: &str, rg: &str, name: &str) -> String {
    resource_id(sub, rg, "Microsoft.Sql/servers", name)
}

pub fn managed_instance_id(sub: &str, rg: &str, name: &str) -> String {
    resource_id(sub, rg, "Microsoft.Sql/managedInstances", name)
}

pub fn database_id(sub: &str, rg: &str, server: &str, name: &str) -> String {
    format!("{}/databases/{name}", server_id(sub, rg, server))
}

/// The Key Vault host suffixes azure-cli's SQL module accepts in a key id.
const VAULT_SUFFIXES: &[&str] = &[
    "managedhsm.azure.net",
    "managedhsm-preview.azure.net",
    "vault.azure.net",
    "vault-int.azure-int.net",
    "vault.azure.cn",
    "managedhsm.azure.cn",
    "vault.usgovcloudapi.net",
    "managedhsm.usgovcloudapi.net",
    "vault.microsoftazure.de",
    "managedhsm.microsoftazure.de",
    "vault.cloudapi.eaglex.ic.gov",
    "vault.cloudapi.microsoft.scloud",
    "mdep.azure.net",
];

/// The server key name SQL requires for a Key Vault key id, derived as azure-cli 2.91's
/// `_get_server_key_name_from_uri` does: `vault_key_version`, or `vault_key` for a versionless
/// id (`.../keys/key` or `.../keys/key/`); None when the id does not match its pattern
/// `^https://(?!.*\.\.)[a-zA-Z0-9][a-zA-Z0-9.-]+[a-zA-Z0-9]\.(suffixes)(:443)?/keys/[^/]+(/[0-9a-zA-Z]+|/|)$`.
pub fn server_key_name(kid: &str) -> Option<String> {
    let rest = kid.strip_prefix("https://")?;
    if rest.contains("..") {
        return None;
    }
    let (host, path) = rest.split_once('/')?;
    let host = host.strip_suffix(":443").unwrap_or(host);
    let label = VAULT_SUFFIXES
        .iter()
        .find_map(|s| host.strip_suffix(s)?.strip_suffix('.'))?;
    let label_ok = label.len() >= 3
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && label.starts_with(|c: char| c.is_ascii_alphanumeric())
        && label.ends_with(|c: char| c.is_ascii_alphanumeric());
    let key_path = path.strip_prefix("keys/")?;
    let (key, tail) = key_path.split_once('/').unwrap_or((key_path, ""));
    let tail_ok = tail.is_empty() || tail.chars().all(|c| c.is_ascii_alphanumeric());
    if !label_ok || key.is_empty() || !tail_ok {
        return None;
    }
    // azure-cli: vault = uri.split('.')[0].split('/')[-1]; version = uri.split('/')[-1],
    // versionless when empty or equal to the key name.
    let vault = kid.split('.').next()?.rsplit('/').next()?;
    let version = kid.rsplit('/').next().unwrap_or_default();
    Some(if version.is_empty() || version == key {
        format!("{vault}_{key}")
    } else {
        format!("{vault}_{key}_{version}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_ids() {
        let p = parse(
            "/subscriptions/s/resourceGroups/-rg.ops(1)/providers/Microsoft.Sql/servers/srv/databases/db1",
        );
        assert_eq!(p.subscription.as_deref(), Some("s"));
        assert_eq!(p.resource_group.as_deref(), Some("-rg.ops(1)"));
        assert_eq!(p.name.as_deref(), Some("srv"));
        assert_eq!(p.child_name_1.as_deref(), Some("db1"));
        assert_eq!(parse("not an id"), IdParts::default());
    }

    #[test]
    fn server_key_names_as_azure_cli_derives_them() {
        assert_eq!(
            server_key_name(
                "https://kv1.vault.azure.net/keys/sqlkey/0123456789abcdef0123456789abcdef"
            )
            .as_deref(),
            Some("kv1_sqlkey_0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            server_key_name("https://kv1.vault.azure.net:443/keys/k/v1").as_deref(),
            Some("kv1_k_v1")
        );
        // azure-cli 2.91 accepts versionless key ids.
        assert_eq!(
            server_key_name("https://kv1.vault.azure.net/keys/k").as_deref(),
            Some("kv1_k")
        );
        assert_eq!(
            server_key_name("https://kv1.vault.azure.net/keys/k/").as_deref(),
            Some("kv1_k")
        );
        assert_eq!(
            server_key_name("https://eus.hsm1.managedhsm.azure.net/keys/k/v2").as_deref(),
            Some("eus_k_v2")
        );
        assert_eq!(
            server_key_name("https://kv1.vault.azure.net/keys/k/v-1"),
            None
        );
        assert_eq!(
            server_key_name("https://kv..1.vault.azure.net/keys/k/v1"),
            None
        );
        assert_eq!(server_key_name("https://k.vault.azure.net/keys/k/v1"), None);
        assert_eq!(
            server_key_name("https://kv1.vault.azure.net/secrets/k/v1"),
            None
        );
        assert_eq!(server_key_name("https://kv1.example.com/keys/k/v1"), None);
        assert_eq!(
            server_key_name("http://kv1.vault.azure.net/keys/k/v1"),
            None
        );
    }
}
