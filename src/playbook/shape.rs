//! What fields `az` prints for each command the playbooks use, so that a playbook naming a field
//! that cannot exist (a typo such as `encryption.keySorce`) fails when it loads, not halfway
//! through a change window.
//!
//! `shapes.json` was built from the outputs of azure-cli 2.91 in `tests/reference/az_cli_2.91/`
//! (every key az printed, merged over the captured resources; `*` marks maps with free keys such
//! as `tags`). The commands of encryption scopes and managed instances, and a database's `keys`
//! and `identity`, have no such capture: their entries were built from azsim's output, which
//! follows azure-cli 2.91's models (`DatabaseKey`, `DatabaseIdentity`, `EncryptionScope`,
//! `ManagedInstanceEncryptionProtector`) field by field. Commands not listed there have an
//! unknown shape and accept any field.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// Unknown: any field below is accepted.
    Any,
    /// A scalar (or a value az printed only as null): nothing below it.
    Leaf,
    Object(BTreeMap<String, Shape>),
    /// An object whose keys are data (tags, identities): any key, with this shape below.
    Map(Box<Shape>),
    List(Box<Shape>),
}

struct CommandShape {
    list: bool,
    item: Shape,
}

static SHAPES: LazyLock<BTreeMap<String, CommandShape>> = LazyLock::new(|| {
    let raw: BTreeMap<String, Value> =
        serde_json::from_str(include_str!("shapes.json")).expect("shapes.json is valid JSON");
    raw.into_iter()
        .map(|(command, v)| {
            let shape = CommandShape {
                list: v["list"].as_bool().unwrap_or(false),
                item: Shape::from_skeleton(&v["item"]),
            };
            (command, shape)
        })
        .collect()
});

impl Shape {
    fn from_skeleton(value: &Value) -> Shape {
        match value {
            Value::Object(map) if map.contains_key("*") => {
                Shape::Map(Box::new(Shape::from_skeleton(&map["*"])))
            }
            Value::Object(map) => Shape::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Shape::from_skeleton(v)))
                    .collect(),
            ),
            Value::Array(items) => Shape::List(Box::new(
                items
                    .first()
                    .map(Shape::from_skeleton)
                    .unwrap_or(Shape::Any),
            )),
            _ => Shape::Leaf,
        }
    }

    /// The shape of what `argv` prints (the whole output: a list for list commands).
    pub fn of_command(argv_words: &[&str]) -> Shape {
        let key = argv_words.join(" ");
        match SHAPES.get(&key) {
            Some(c) if c.list => Shape::List(Box::new(c.item.clone())),
            Some(c) => c.item.clone(),
            None => Shape::Any,
        }
    }

    /// The shape of one item of a list command's output (discovery's targets).
    pub fn of_list_item(argv_words: &[&str]) -> Shape {
        match Shape::of_command(argv_words) {
            Shape::List(item) => *item,
            other => other,
        }
    }

    pub fn object(fields: impl IntoIterator<Item = (String, Shape)>) -> Shape {
        Shape::Object(fields.into_iter().collect())
    }

    /// Follows `path`; `Err` names the first segment that cannot exist.
    pub fn lookup(&self, path: &[String]) -> Result<&Shape, String> {
        let mut current = self;
        for (i, segment) in path.iter().enumerate() {
            current = match current {
                Shape::Any => return Ok(current),
                Shape::Map(inner) => inner,
                Shape::Object(fields) => fields.get(segment).ok_or_else(|| {
                    let known: Vec<&str> = fields.keys().map(String::as_str).collect();
                    let near = closest(segment, &known);
                    format!(
                        "`{}` has no field `{segment}`{}",
                        if i == 0 {
                            "the document".to_string()
                        } else {
                            path[..i].join(".")
                        },
                        near.map(|n| format!(" (did you mean `{n}`?)"))
                            .unwrap_or_default()
                    )
                })?,
                Shape::Leaf => {
                    return Err(format!(
                        "`{}` is a single value, so it has no field `{segment}`",
                        path[..i].join(".")
                    ));
                }
                Shape::List(_) => {
                    return Err(format!(
                        "`{}` is a list: a field path cannot reach into it",
                        path[..i].join(".")
                    ));
                }
            };
        }
        Ok(current)
    }

    /// Keeps only the given paths (the `record` list): the shape of `before`.
    pub fn restrict(&self, paths: &[Vec<String>]) -> Shape {
        let mut out = Shape::Object(BTreeMap::new());
        for path in paths {
            let leaf = self.lookup(path).cloned().unwrap_or(Shape::Any);
            insert(&mut out, path, leaf);
        }
        out
    }
}

fn insert(shape: &mut Shape, path: &[String], leaf: Shape) {
    let every_key = path[0] == "*";
    match shape {
        Shape::Map(inner) if every_key => {
            if path.len() == 1 {
                **inner = leaf;
            } else {
                insert(inner, &path[1..], leaf);
            }
        }
        Shape::Object(fields) => {
            let empty = if path.get(1).is_some_and(|s| s == "*") {
                Shape::Map(Box::new(Shape::Object(BTreeMap::new())))
            } else {
                Shape::Object(BTreeMap::new())
            };
            if path.len() == 1 {
                fields.insert(path[0].clone(), leaf);
            } else {
                let child = fields.entry(path[0].clone()).or_insert(empty);
                insert(child, &path[1..], leaf);
            }
        }
        _ => {}
    }
}

/// The known name nearest to a misspelt one, if any is near enough to be a likely typo.
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(&name.to_lowercase(), &k.to_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<String> {
        s.split('.').map(String::from).collect()
    }

    #[test]
    fn storage_list_items_have_the_fields_az_prints() {
        let item = Shape::of_list_item(&["storage", "account", "list"]);
        for ok in [
            "encryption.keySource",
            "encryption.keyVaultProperties.keyVersion",
            "encryption.encryptionIdentity.encryptionFederatedIdentityClientId",
            "tags.data-classification",
            "resourceGroup",
            "id",
        ] {
            assert!(item.lookup(&path(ok)).is_ok(), "{ok}");
        }
        let err = item.lookup(&path("encryption.keySorce")).unwrap_err();
        assert!(err.contains("did you mean `keySource`"), "{err}");
        assert!(item.lookup(&path("name.first")).is_err());
    }

    #[test]
    fn unknown_commands_accept_anything() {
        let s = Shape::of_command(&["network", "vnet", "list"]);
        assert!(s.lookup(&path("a.b.c")).is_ok());
    }

    #[test]
    fn tde_shape_knows_the_legacy_status_field() {
        let s = Shape::of_command(&["sql", "db", "tde", "show"]);
        assert!(s.lookup(&path("state")).is_ok());
        assert!(s.lookup(&path("status")).is_ok());
    }

    #[test]
    fn restrict_keeps_only_recorded_paths() {
        let s = Shape::of_command(&["sql", "server", "tde-key", "show"]);
        let before = s.restrict(&[path("uri"), path("serverKeyType")]);
        assert!(before.lookup(&path("uri")).is_ok());
        assert!(before.lookup(&path("kind")).is_err());
    }
}
