//! Dotted field paths (`encryption.keyVaultProperties.keyName`) into the JSON that `az` prints.
//!
//! Evidence, recorded state and predicted after-states are all keyed by such paths, so that a
//! playbook author writes the same spelling everywhere and the change log stays readable.

use serde_json::{Map, Value};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// Parses `a.b.c`; each segment is an identifier as JMESPath spells an unquoted field, or,
    /// after the first, `*`: every key of a map (see [`FieldPath::project`]).
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        if text.is_empty() {
            return Err("empty field path".into());
        }
        let mut segments = Vec::new();
        for (i, segment) in text.split('.').enumerate() {
            if segment == EVERY_KEY && i > 0 {
                segments.push(segment.to_string());
                continue;
            }
            let valid = segment
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "`{text}` is not a field path: each part must be a name of letters, digits and `_` (found `{segment}`)"
                ));
            }
            segments.push(segment.to_string());
        }
        Ok(FieldPath(segments))
    }

    pub fn from_segments(segments: Vec<String>) -> FieldPath {
        FieldPath(segments)
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    pub fn first(&self) -> &str {
        &self.0[0]
    }

    /// The path without its first segment (the root it names), if anything is left.
    pub fn rest(&self) -> Option<FieldPath> {
        (self.0.len() > 1).then(|| FieldPath(self.0[1..].to_vec()))
    }

    /// True when `self` equals `other` or lies below it.
    pub fn starts_with(&self, other: &FieldPath) -> bool {
        self.0.len() >= other.0.len() && self.0[..other.0.len()] == other.0[..]
    }

    /// The value at this path, or null when any part of it is missing: az prints absent and
    /// unset attributes alike, and a verdict treats both as unset.
    pub fn get<'v>(&self, value: &'v Value) -> &'v Value {
        let mut current = value;
        for segment in &self.0 {
            match current.get(segment) {
                Some(next) => current = next,
                None => return &Value::Null,
            }
        }
        current
    }

    /// Writes `leaf` at this path, creating objects on the way.
    pub fn set(&self, target: &mut Value, leaf: Value) {
        let mut current = target;
        for (i, segment) in self.0.iter().enumerate() {
            if !current.is_object() {
                *current = Value::Object(Map::new());
            }
            let map = current.as_object_mut().expect("made an object above");
            if i + 1 == self.0.len() {
                map.insert(segment.clone(), leaf);
                return;
            }
            current = map.entry(segment.clone()).or_insert(Value::Null);
        }
    }

    /// A document holding only these paths, each with its value in `source` (null if absent):
    /// what a playbook's `record` list keeps of a resource's state. A `*` segment keeps every
    /// key of the map there, each with only what the rest of the path names (`keys.*` keeps
    /// the keys alone, each with `{}`): a map keyed by data (a database's key URIs) is then
    /// recorded and compared by its keys, not by attributes the service sets on each entry
    /// (a key's creation date).
    pub fn project(paths: &[FieldPath], source: &Value) -> Value {
        let mut out = Value::Object(Map::new());
        for path in paths {
            match path.0.iter().position(|s| s == EVERY_KEY) {
                None => path.set(&mut out, path.get(source).clone()),
                Some(at) => {
                    let map = FieldPath(path.0[..at].to_vec());
                    let rest = FieldPath(path.0[at + 1..].to_vec());
                    let kept = every_key(map.get(source), &rest);
                    let mut current = map.get(&out).clone();
                    merge(&mut current, kept);
                    map.set(&mut out, current);
                }
            }
        }
        out
    }

    /// Whether the path keeps every key of a map (`*`): such a path is for `record` only.
    pub fn has_every_key(&self) -> bool {
        self.0.iter().any(|s| s == EVERY_KEY)
    }
}

/// The segment that stands for every key of a map.
const EVERY_KEY: &str = "*";

/// `map`'s keys, each with what `rest` keeps of its value; null when `map` is not an object.
fn every_key(map: &Value, rest: &FieldPath) -> Value {
    let Some(entries) = map.as_object() else {
        return Value::Null;
    };
    let kept = entries.iter().map(|(k, v)| {
        let value = if rest.0.is_empty() {
            Value::Object(Map::new())
        } else {
            FieldPath::project(std::slice::from_ref(rest), v)
        };
        (k.clone(), value)
    });
    Value::Object(kept.collect())
}

/// Merges `more` into `into`, object by object (two record paths under one map).
fn merge(into: &mut Value, more: Value) {
    match (into, more) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, more) => *slot = more,
    }
}

/// Equality of recorded fields (ARCHITECTURE.md, "Equality rules"), for drift, verification and
/// a saved plan's recheck. Strings (ARM ids, enum values, Key Vault URIs, key names) compare
/// case-insensitively and ignore one trailing `/`: Azure's own canonical casing, or the slash
/// az leaves on a vault URI, is never a difference. Null and `""` are one unset state (a
/// versionless key either way), but a pinned version differs from both. Lists compare as sets
/// and objects key by key, under the same rule, so that a map keyed by identity ids matches
/// whatever casing Azure returns them in.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => same_text(x, y),
        (Value::Null, Value::String(s)) | (Value::String(s), Value::Null) => s.is_empty(),
        (Value::Array(x), Value::Array(y)) => {
            x.iter().all(|v| y.iter().any(|w| same_value(v, w)))
                && y.iter().all(|w| x.iter().any(|v| same_value(v, w)))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.iter().all(|(k, v)| same_value(v, value_of(y, k)))
                && y.iter().all(|(k, w)| same_value(value_of(x, k), w))
        }
        _ => a == b,
    }
}

/// The value of `key` in `map` under the same rule, or null.
fn value_of<'m>(map: &'m Map<String, Value>, key: &str) -> &'m Value {
    map.iter()
        .find(|(k, _)| same_text(k, key))
        .map_or(&Value::Null, |(_, v)| v)
}

fn same_text(a: &str, b: &str) -> bool {
    let trim = |s: &'_ str| s.strip_suffix('/').unwrap_or(s).to_string();
    trim(a).eq_ignore_ascii_case(&trim(b))
}

/// The paths on which two states differ, under [`same_value`], as `path: a -> b` lines.
pub fn differences(paths: &[FieldPath], a: &Value, b: &Value) -> Vec<String> {
    paths
        .iter()
        .filter(|p| !same_value(p.get(a), p.get(b)))
        .map(|p| format!("{p}: {} -> {}", p.get(a), p.get(b)))
        .collect()
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_rejects_what_is_not_a_plain_path() {
        assert!(FieldPath::parse("a.b").is_ok());
        for bad in ["", "a..b", "a.", ".a", "a b", "a[0]", "1a", "a-b", "a.'b'"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn get_returns_null_for_missing_parts_and_through_null() {
        let doc = json!({"encryption": null, "a": {"b": ""}});
        let p = |s| FieldPath::parse(s).unwrap();
        assert_eq!(p("encryption.keySource").get(&doc), &Value::Null);
        assert_eq!(p("a.b").get(&doc), &json!(""));
        assert_eq!(p("missing").get(&doc), &Value::Null);
    }

    #[test]
    fn project_keeps_null_and_empty_distinct() {
        let doc = json!({"kv": {"keyVersion": "", "other": 1}, "x": 2});
        let paths = vec![
            FieldPath::parse("kv.keyVersion").unwrap(),
            FieldPath::parse("kv.keyName").unwrap(),
        ];
        assert_eq!(
            FieldPath::project(&paths, &doc),
            json!({"kv": {"keyVersion": "", "keyName": null}})
        );
    }

    #[test]
    fn every_key_keeps_a_map_by_its_keys() {
        let doc = json!({"db": {"keys": {
            "https://kv/keys/a/1": {"creationDate": "2024", "type": "AzureKeyVault"},
            "https://kv/keys/b": {"creationDate": "2025", "type": "AzureKeyVault"}
        }, "identity": null}});
        let p = |s| FieldPath::parse(s).unwrap();
        assert!(p("db.keys.*").has_every_key());
        assert_eq!(
            FieldPath::project(&[p("db.keys.*")], &doc),
            json!({"db": {"keys": {"https://kv/keys/a/1": {}, "https://kv/keys/b": {}}}})
        );
        assert_eq!(
            FieldPath::project(&[p("db.keys.*.type"), p("db.identity.*")], &doc),
            json!({"db": {"keys": {"https://kv/keys/a/1": {"type": "AzureKeyVault"},
                                   "https://kv/keys/b": {"type": "AzureKeyVault"}},
                          "identity": null}})
        );
        assert!(FieldPath::parse("*.a").is_err(), "a root is a name");
    }

    #[test]
    fn same_value_ignores_case_and_unset() {
        assert!(same_value(
            &json!("Microsoft.Keyvault"),
            &json!("microsoft.keyvault")
        ));
        assert!(same_value(&json!(null), &json!("")));
        assert!(!same_value(&json!("Enabled"), &json!("Disabled")));
        assert!(!same_value(&json!(null), &json!("x")));
        assert!(same_value(&json!(true), &json!(true)));
        let p = vec![
            FieldPath::parse("a").unwrap(),
            FieldPath::parse("b").unwrap(),
        ];
        assert_eq!(
            differences(&p, &json!({"a": "X", "b": 1}), &json!({"a": "x", "b": 2})),
            ["b: 1 -> 2"]
        );
    }

    #[test]
    fn uris_ids_and_collections_compare_under_azures_rules() {
        let vault = json!("https://kv-a.vault.azure.net/");
        assert!(same_value(&vault, &json!("https://KV-A.vault.azure.net")));
        assert!(!same_value(&vault, &json!("https://kv-b.vault.azure.net/")));
        assert!(
            !same_value(&vault, &json!("https://kv-a.vault.azure.net//")),
            "one trailing slash only"
        );
        assert!(
            !same_value(&json!("0a1b2c"), &json!("")),
            "pinned vs versionless"
        );
        assert!(
            !same_value(&json!("0a1b2c"), &json!(null)),
            "pinned vs versionless"
        );
        assert!(
            !same_value(&json!("0a1b2c"), &json!("ffff")),
            "another version"
        );
        assert!(same_value(
            &json!(["/subscriptions/S/uai-1", "/subscriptions/S/UAI-2"]),
            &json!(["/subscriptions/s/uai-2", "/subscriptions/s/uai-1"])
        ));
        assert!(!same_value(&json!(["/a", "/b"]), &json!(["/a"])));
        assert!(same_value(
            &json!({"/subscriptions/S/UAI-1": {"clientId": "C"}}),
            &json!({"/subscriptions/s/uai-1": {"clientId": "c"}})
        ));
        assert!(!same_value(
            &json!({"/uai-1": {}}),
            &json!({"/uai-1": {}, "/uai-2": {}})
        ));
        assert!(
            same_value(&json!({"a": null}), &json!({})),
            "absent is unset"
        );
        assert!(!same_value(&json!(1), &json!("1")));
    }

    #[test]
    fn starts_with_is_segmentwise() {
        let p = |s| FieldPath::parse(s).unwrap();
        assert!(p("a.b.c").starts_with(&p("a.b")));
        assert!(p("a.b").starts_with(&p("a.b")));
        assert!(!p("a.bc").starts_with(&p("a.b")));
    }
}
