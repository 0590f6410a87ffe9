//! The az commands azsim answers: each group's module defines its grammar ([`CommandSpec`]) next
//! to its handler, and this module resolves command words to a command as az's parser does.

mod account;
pub mod encryption_scope;
mod keyvault;
pub mod resource_group;
pub mod sql_db;
pub mod sql_db_keys;
pub mod sql_mi;
pub mod sql_server;
mod storage;

use crate::args::{CommandSpec, Param, Parsed};
use crate::errors::{self, CommandError};
use crate::store::{Db, Header, Store};
use crate::world::Subscription;
use serde_json::Value;

/// What a handler gets: the store, the tenant-wide header and the subscription the call
/// resolved (`--subscription`, an id from `--ids`, or the default one).
pub struct Ctx<'a> {
    pub store: &'a mut Store,
    pub header: &'a Header,
    pub subscription: Option<Subscription>,
}

impl Ctx<'_> {
    /// The subscription id of a resource command (resolved before the handler runs).
    pub fn sub(&self) -> String {
        self.subscription
            .as_ref()
            .map(|s| s.id.clone())
            .unwrap_or_default()
    }
}

pub type Handler = fn(&mut Ctx, &Parsed) -> Result<Value, CommandError>;

pub struct Command {
    pub spec: CommandSpec,
    pub run: Handler,
}

fn all() -> impl Iterator<Item = &'static Command> {
    account::COMMANDS
        .iter()
        .chain(storage::COMMANDS)
        .chain(encryption_scope::COMMANDS)
        .chain(sql_server::COMMANDS)
        .chain(sql_db::COMMANDS)
        .chain(sql_db_keys::COMMANDS)
        .chain(sql_mi::COMMANDS)
        .chain(keyvault::COMMANDS)
        .chain(resource_group::COMMANDS)
}

/// Where the leading words of an argv lead.
pub enum Resolution {
    /// A command, and how many words named it.
    Command(&'static Command, usize),
    /// A command group (words run out before a command): az prints the group's help.
    Group { name: String, children: Vec<String> },
    /// A word that is no command or group at that level: az's "misspelled" error.
    Unknown(CommandError),
}

/// Resolves command words the way az's nested subparsers do: one word per level, matched
/// exactly; an option-like word ends the command words.
pub fn resolve(tokens: &[String]) -> Resolution {
    let mut prefix: Vec<&str> = Vec::new();
    loop {
        if let Some(cmd) = all().find(|c| c.spec.words == prefix.as_slice()) {
            return Resolution::Command(cmd, prefix.len());
        }
        let mut children: Vec<&'static str> = all()
            .filter(|c| {
                c.spec.words.len() > prefix.len() && c.spec.words[..prefix.len()] == prefix[..]
            })
            .map(|c| c.spec.words[prefix.len()])
            .collect();
        children.sort_unstable();
        children.dedup();
        match tokens.get(prefix.len()) {
            Some(word) if !word.starts_with('-') => {
                match children.iter().find(|c| **c == word.as_str()) {
                    Some(child) => prefix.push(child),
                    None => return Resolution::Unknown(misspelled(word, &children)),
                }
            }
            _ => {
                let name = ["az"]
                    .iter()
                    .chain(&prefix)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
                let children = children.iter().map(|c| format!("{name} {c}")).collect();
                return Resolution::Group { name, children };
            }
        }
    }
}

/// az's CommandNotFoundError, with its "Did you mean" hint for a close match.
fn misspelled(word: &str, choices: &[&str]) -> CommandError {
    let close = choices.iter().find(|c| similar(word, c));
    let trailer = close
        .map(|c| format!("Did you mean '{c}' ?\n"))
        .unwrap_or_default();
    CommandError::Client {
        message: format!("'{word}' is misspelled or not recognized by the system."),
        trailer,
        exit: 2,
    }
}

/// A rough stand-in for difflib's 0.7 similarity cutoff: at most a third of the letters differ.
fn similar(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()] * 3 <= a.len().max(b.len())
}

// Shared argument definitions, in azure-cli's option order.
const fn group() -> Param {
    Param::one("resource_group", &["--resource-group", "-g"])
}

/// A resource group must exist before anything in it is looked at (ARM checks it first).
fn need_group(db: &Db, sub: &str, rg: &str) -> Result<(), CommandError> {
    if db.group_exists(sub, rg)? {
        Ok(())
    } else {
        Err(errors::group_not_found(rg))
    }
}

/// The value of a required argument (the parser has already enforced its presence).
fn arg<'p>(p: &'p Parsed, dest: &str) -> &'p str {
    p.one(dest).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn resolves_commands_groups_and_typos() {
        match resolve(&words("sql db tde show -d x")) {
            Resolution::Command(c, n) => assert_eq!(
                (c.spec.words.join(" "), n),
                ("sql db tde show".to_string(), 4)
            ),
            _ => panic!("not resolved"),
        }
        match resolve(&words("sql server")) {
            Resolution::Group { name, children } => {
                assert_eq!(name, "az sql server");
                assert!(children.contains(&"az sql server tde-key".to_string()));
            }
            _ => panic!("not a group"),
        }
        match resolve(&words("storage acount list")) {
            Resolution::Unknown(e) => {
                assert_eq!(
                    e.render(),
                    "ERROR: 'acount' is misspelled or not recognized by the system.\nDid you mean 'account' ?\n"
                );
            }
            _ => panic!("typo accepted"),
        }
    }

    #[test]
    fn every_command_has_a_unique_path() {
        let mut paths: Vec<String> = all().map(|c| c.spec.words.join(" ")).collect();
        let n = paths.len();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), n);
    }
}
