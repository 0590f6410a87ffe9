//! The parts of a listed resource that a run reads, as a tree of field names.
//!
//! A storage account as `az storage account list` prints it is several kilobytes of JSON, of
//! which the storage playbook reads a handful of fields; ten thousand of them held whole were
//! most of a large run's memory. Discovery keeps of each item only the paths in this tree.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldTree {
    /// The whole value.
    All,
    /// Only these fields of an object (of each object, in a list), each trimmed in turn.
    Only(BTreeMap<String, FieldTree>),
}

impl Default for FieldTree {
    /// Nothing yet: paths are inserted into it.
    fn default() -> Self {
        FieldTree::Only(BTreeMap::new())
    }
}

impl FieldTree {
    /// Keeps `path` whole; an empty path keeps everything.
    pub fn insert<S: AsRef<str>>(&mut self, path: &[S]) {
        let Some((first, rest)) = path.split_first() else {
            *self = FieldTree::All;
            return;
        };
        if let FieldTree::Only(fields) = self {
            fields
                .entry(first.as_ref().to_string())
                .or_default()
                .insert(rest);
        }
    }

    /// Keeps what either tree keeps.
    pub fn merge(&mut self, other: FieldTree) {
        match (&mut *self, other) {
            (FieldTree::All, _) => {}
            (_, FieldTree::All) => *self = FieldTree::All,
            (FieldTree::Only(mine), FieldTree::Only(theirs)) => {
                for (name, tree) in theirs {
                    mine.entry(name).or_default().merge(tree);
                }
            }
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, FieldTree::All)
    }

    /// The top-level names kept (everything: `None`).
    #[cfg(test)]
    pub fn top_level(&self) -> Option<Vec<&str>> {
        match self {
            FieldTree::All => None,
            FieldTree::Only(fields) => Some(fields.keys().map(String::as_str).collect()),
        }
    }

    /// `value` with only the kept fields. A list is trimmed item by item with the same tree
    /// (`a.b` of a list of objects keeps `b` of each), and a value that is not an object or a
    /// list (null where an object was expected) is kept as it is, so that trimming never turns
    /// a value into one the full output would not have given.
    pub fn trim(&self, value: Value) -> Value {
        let FieldTree::Only(fields) = self else {
            return value;
        };
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter_map(|(k, v)| fields.get(&k).map(|tree| (k, tree.trim(v))))
                    .collect::<Map<String, Value>>(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.trim(v)).collect()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree(paths: &[&str]) -> FieldTree {
        let mut t = FieldTree::default();
        for p in paths {
            t.insert(&p.split('.').collect::<Vec<_>>());
        }
        t
    }

    #[test]
    fn keeps_only_the_paths_and_whole_values_below_them() {
        let account = json!({
            "id": "/a", "name": "a", "big": [1, 2],
            "encryption": {
                "keySource": "Microsoft.Keyvault",
                "keyVaultProperties": {"keyName": "k", "keyVersion": null},
                "services": {"blob": {"enabled": true}}
            }
        });
        assert_eq!(
            tree(&[
                "id",
                "encryption.keySource",
                "encryption.keyVaultProperties"
            ])
            .trim(account),
            json!({"id": "/a", "encryption": {
                "keySource": "Microsoft.Keyvault",
                "keyVaultProperties": {"keyName": "k", "keyVersion": null}
            }})
        );
    }

    #[test]
    fn a_shorter_path_wins_in_either_order() {
        let v = json!({"a": {"b": 1, "c": 2}});
        assert_eq!(tree(&["a.b", "a"]).trim(v.clone()), v);
        assert_eq!(tree(&["a", "a.b"]).trim(v.clone()), v);
        let mut merged = tree(&["a.b"]);
        merged.merge(tree(&["a"]));
        assert_eq!(merged.trim(v.clone()), v);
        let mut merged = tree(&["a.b"]);
        merged.merge(tree(&["a.c", "d"]));
        assert_eq!(merged, tree(&["a.b", "a.c", "d"]));
    }

    #[test]
    fn lists_are_trimmed_item_by_item_and_other_values_kept() {
        let t = tree(&["a.b"]);
        assert_eq!(
            t.trim(json!({"a": [{"b": 1, "x": 2}, {"x": 3}, 4]})),
            json!({"a": [{"b": 1}, {}, 4]})
        );
        assert_eq!(t.trim(json!({"a": null})), json!({"a": null}));
        assert_eq!(FieldTree::All.trim(json!({"z": 1})), json!({"z": 1}));
    }
}
