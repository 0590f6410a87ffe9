//! Waivers: an approved, dated exception for a resource that must not be changed (its policy
//! requires a customer-managed key, say). A waived target is reported `waived`, with the reason
//! and the approver, and is never changed; an expired waiver is ignored with a warning.
//!
//! ```toml
//! [[waiver]]
//! resource = "/subscriptions/*/resourceGroups/rg-hsm/providers/Microsoft.Storage/storageAccounts/*"
//! playbook = "storage-account-mmk"      # or "*" for every playbook
//! reason = "regulator requires customer-held keys (ticket SEC-1234)"
//! approver = "ciso@contoso.com"
//! expires = "2027-03-31"                # ISO 8601 date: the waiver ends at the end of that day, UTC
//! ```

use crate::timefmt;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};
use toml::Spanned;

#[derive(Clone, Debug, PartialEq)]
pub struct Waiver {
    pub resource: glob::Pattern,
    pub playbook: String,
    pub reason: String,
    pub approver: String,
    /// As written, for messages.
    pub expires: String,
    /// The first instant the waiver no longer holds (the start of the next day, UTC).
    pub ends: SystemTime,
    /// Where it is, for messages: `azbook.toml:12: waiver 3`, the line of its `[[waiver]]`.
    pub at: String,
    /// Its place in the file (1 for the first), and the line of its `playbook =`, where a
    /// misspelt id is corrected.
    number: usize,
    playbook_line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    waiver: Vec<Spanned<RawWaiver>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    resource: String,
    playbook: Spanned<String>,
    reason: String,
    approver: String,
    /// A TOML date (`2027-03-31`) or the same as a string.
    expires: toml::Value,
}

const CASE_INSENSITIVE: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// The waivers of one file: those in effect now, and those that have expired (ignored, each
/// with a warning).
#[derive(Debug, Default)]
pub struct Waivers {
    /// The file they came from, as people read it (`./azbook.toml`); None: no waivers file.
    pub source: Option<String>,
    pub active: Vec<Waiver>,
    pub expired: Vec<Waiver>,
    /// The resource type each known playbook targets, by id: what tells that a waiver for the
    /// storage account playbook also covers the encryption scopes under that account.
    types: BTreeMap<String, String>,
}

/// The 1-based line of a byte offset in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

impl Waivers {
    /// Reads the waivers file at `path`; `shown` is how messages and the scope line name it.
    pub fn load(path: &Path, shown: &str, now: SystemTime) -> Result<Waivers> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the waivers file {shown}"))?;
        Self::parse(&text, shown, now)
    }

    pub fn parse(text: &str, name: &str, now: SystemTime) -> Result<Waivers> {
        let file: File = toml::from_str(text).map_err(|e| {
            let line = line_of(text, e.span().map(|s| s.start).unwrap_or(0));
            anyhow::anyhow!("{name}:{line}: {}", e.message().trim())
        })?;
        let mut waivers = Waivers {
            source: Some(name.to_string()),
            ..Waivers::default()
        };
        for (i, raw) in file.waiver.into_iter().enumerate() {
            let at = format!(
                "{name}:{}: waiver {}",
                line_of(text, raw.span().start),
                i + 1
            );
            let raw = raw.into_inner();
            let playbook_line = line_of(text, raw.playbook.span().start);
            let playbook = raw.playbook.into_inner();
            let label = format!("{at} ({} for {playbook})", raw.resource);
            for (field, value) in [
                ("reason", &raw.reason),
                ("approver", &raw.approver),
                ("playbook", &playbook),
            ] {
                if value.trim().is_empty() {
                    bail!(
                        "{label}: `{field}` must not be empty: a waiver says why, who approved it, and for which playbook"
                    );
                }
            }
            let resource = glob::Pattern::new(&raw.resource)
                .map_err(|e| anyhow::anyhow!("{label}: `resource` is not a valid glob: {e}"))?;
            let date = match &raw.expires {
                toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => {
                    d.date.map(|d| d.to_string())
                }
                toml::Value::String(s) if s.len() == 10 => Some(s.clone()),
                _ => None,
            };
            let start = date
                .as_deref()
                .and_then(|d| timefmt::parse_rfc3339(&format!("{d}T00:00:00Z")))
                .with_context(|| {
                    format!("{label}: `expires` must be a date such as 2027-03-31 (the waiver ends at the end of that day, UTC)")
                })?;
            let date = date.unwrap_or_default();
            let waiver = Waiver {
                resource,
                playbook,
                reason: raw.reason,
                approver: raw.approver,
                expires: date.to_string(),
                ends: start + Duration::from_secs(86_400),
                at,
                number: i + 1,
                playbook_line,
            };
            if now >= waiver.ends {
                waivers.expired.push(waiver);
            } else {
                waivers.active.push(waiver);
            }
        }
        Ok(waivers)
    }

    /// A warning for each expired waiver, which is ignored.
    pub fn expiry_warnings(&self) -> Vec<String> {
        self.expired
            .iter()
            .map(|w| format!("{} expired on {}; it is ignored", w.label(), w.expires))
            .collect()
    }

    /// Refuses waivers (expired ones too) that name a playbook not in `known`, the ids that are
    /// built in or loaded in this run: such a waiver protects nothing, so the resource it was
    /// meant for would be changed. `*` is every playbook.
    pub fn check_playbooks(&self, known: &[&str]) -> Result<()> {
        let name = self.source.as_deref().unwrap_or_default();
        let problems: Vec<String> = self
            .active
            .iter()
            .chain(&self.expired)
            .filter(|w| w.playbook != "*" && !known.contains(&w.playbook.as_str()))
            .map(|w| {
                let near = crate::playbook::closest(&w.playbook, known)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                format!(
                    "{name}:{}: waiver {} names the playbook `{}`, which is neither built in nor loaded in this run{near}; known: {}, or \"*\" for every playbook",
                    w.playbook_line,
                    w.number,
                    w.playbook,
                    known.join(", ")
                )
            })
            .collect();
        if problems.is_empty() {
            return Ok(());
        }
        bail!(
            "{}\n  hint: a waiver for an unknown playbook protects nothing; correct the id, or load the playbook with --playbook FILE",
            problems.join("\n")
        )
    }

    /// The active waivers that match none of `targets` (playbook id and resource id of every
    /// target the run found, whatever its status). Only waivers this run could have used are
    /// judged: for one of its `playbooks` (or `*`), and not naming a subscription outside
    /// `subscriptions`.
    pub fn unmatched<'w, 't>(
        &'w self,
        targets: impl IntoIterator<Item = (&'t str, &'t str)> + Clone,
        playbooks: &[&str],
        subscriptions: &[String],
    ) -> Vec<&'w Waiver> {
        self.active
            .iter()
            .filter(|w| w.playbook == "*" || playbooks.contains(&w.playbook.as_str()))
            .filter(|w| !w.names_another_subscription(subscriptions))
            .filter(|w| {
                !targets
                    .clone()
                    .into_iter()
                    .any(|(playbook, resource)| w.matches(playbook, resource, &self.types))
            })
            .collect()
    }

    /// The active waiver for this resource and playbook, if any.
    pub fn find(&self, playbook: &str, resource: &str) -> Option<&Waiver> {
        self.active
            .iter()
            .find(|w| w.matches(playbook, resource, &self.types))
    }

    /// Tells the waivers which resource type each playbook targets (`Playbook::resource_type`),
    /// so that a waiver on a resource covers the resources under it (README.md, "Waivers").
    pub fn know_types<'a>(&mut self, types: impl IntoIterator<Item = (&'a str, &'a str)>) {
        self.types.extend(
            types
                .into_iter()
                .map(|(id, t)| (id.to_string(), t.to_string())),
        );
    }

    /// For the scope line: which file, and how many of its waivers hold.
    pub fn describe_source(&self) -> String {
        match &self.source {
            Some(source) => format!(
                "waivers: {source} ({} active, {} expired)",
                self.active.len(),
                self.expired.len()
            ),
            None => "no waivers file".to_string(),
        }
    }
}

impl Waiver {
    pub fn describe(&self) -> String {
        format!(
            "waived: {} (approved by {}, until {})",
            self.reason, self.approver, self.expires
        )
    }

    /// `azbook.toml:12: waiver 3 (*/servers/sql-akv for *)`
    pub fn label(&self) -> String {
        format!(
            "{} ({} for {})",
            self.at,
            self.resource.as_str(),
            self.playbook
        )
    }

    /// A waiver covers the resources its pattern matches, for the playbook it names (or all),
    /// and the resources under them (a storage account's encryption scopes, a SQL server's
    /// databases): for the same playbooks, and for the playbooks of those child resources when
    /// it names the parent's playbook.
    fn matches(&self, playbook: &str, resource: &str, types: &BTreeMap<String, String>) -> bool {
        let names = self.playbook == "*" || self.playbook == playbook;
        if names && self.resource.matches_with(resource, CASE_INSENSITIVE) {
            return true;
        }
        let parent_playbook = match (types.get(&self.playbook), types.get(playbook)) {
            (Some(parent), Some(child)) => is_child_type(parent, child),
            _ => false,
        };
        (names || parent_playbook)
            && crate::armid::ancestors(resource)
                .any(|a| self.resource.matches_with(a, CASE_INSENSITIVE))
    }

    /// True when the pattern names, literally, a subscription not in `subscriptions`: it is
    /// for another run, not a mistake this run can see.
    fn names_another_subscription(&self, subscriptions: &[String]) -> bool {
        let pattern = self.resource.as_str();
        let Some(rest) = pattern
            .get(..15)
            .filter(|p| p.eq_ignore_ascii_case("/subscriptions/"))
            .map(|_| &pattern[15..])
        else {
            return false;
        };
        let sub = rest.split('/').next().unwrap_or_default();
        !sub.contains(['*', '?', '[']) && !subscriptions.iter().any(|s| s.eq_ignore_ascii_case(sub))
    }
}

/// `Microsoft.Storage/storageAccounts/encryptionScopes` is a child of
/// `Microsoft.Storage/storageAccounts`.
fn is_child_type(parent: &str, child: &str) -> bool {
    child.len() > parent.len() + 1
        && child.is_char_boundary(parent.len())
        && child[..parent.len()].eq_ignore_ascii_case(parent)
        && child[parent.len()..].starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
[[waiver]]
resource = "/subscriptions/*/resourceGroups/rg-hsm/providers/Microsoft.Storage/storageAccounts/*"
playbook = "storage-account-mmk"
reason = "regulator requires customer-held keys"
approver = "ciso@contoso.com"
expires = "2027-03-31"

[[waiver]]
resource = "*/servers/sql-old"
playbook = "*"
reason = "decommissioned next week"
approver = "ops-lead@contoso.com"
expires = 2026-01-31
"#;

    fn at(s: &str) -> SystemTime {
        timefmt::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn active_waivers_match_case_insensitively_and_expired_ones_warn() {
        let w = Waivers::parse(TEXT, "azbook.toml", at("2026-11-29T08:00:00Z")).unwrap();
        assert_eq!(w.active.len(), 1);
        let warnings = w.expiry_warnings();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("azbook.toml:9: waiver 2 (*/servers/sql-old for *)")
                && warnings[0].contains("expired on 2026-01-31"),
            "{warnings:?}"
        );
        let id = "/subscriptions/S/resourcegroups/RG-HSM/providers/Microsoft.Storage/storageAccounts/st1";
        assert!(w.find("storage-account-mmk", id).is_some());
        assert!(w.find("sql-server-tde-protector-mmk", id).is_none());
        assert!(w.find("storage-account-mmk", "/subscriptions/S/resourceGroups/rg-other/providers/Microsoft.Storage/storageAccounts/st1").is_none());
        assert!(
            w.find("storage-account-mmk", id)
                .unwrap()
                .describe()
                .contains("ciso@contoso.com")
        );
    }

    #[test]
    fn a_waiver_holds_until_the_end_of_its_day_utc() {
        let last_second = Waivers::parse(TEXT, "w", at("2027-03-31T23:59:59Z")).unwrap();
        assert_eq!(last_second.active.len(), 1);
        let next_day = Waivers::parse(TEXT, "w", at("2027-04-01T00:00:00Z")).unwrap();
        assert!(next_day.active.is_empty());
        assert_eq!(next_day.expiry_warnings().len(), 2);
    }

    #[test]
    fn incomplete_or_malformed_waivers_are_refused() {
        let missing = TEXT.replace("approver = \"ciso@contoso.com\"\n", "");
        assert!(
            Waivers::parse(&missing, "w", SystemTime::now())
                .unwrap_err()
                .to_string()
                .contains("approver")
        );
        let empty = TEXT.replace("ciso@contoso.com", "");
        assert!(
            Waivers::parse(&empty, "w", SystemTime::now())
                .unwrap_err()
                .to_string()
                .contains("must not be empty")
        );
        let datetime = TEXT.replace("expires = \"2027-03-31\"", "expires = 2027-03-31T10:00:00Z");
        assert!(
            Waivers::parse(&datetime, "w", SystemTime::now())
                .unwrap_err()
                .to_string()
                .contains("date")
        );
    }

    const BUILTIN: [&str; 5] = [
        "storage-account-mmk",
        "storage-encryption-scope-mmk",
        "sql-server-tde-protector-mmk",
        "sql-managed-instance-tde-protector-mmk",
        "sql-database-tde-mmk",
    ];

    #[test]
    fn a_waiver_for_an_unknown_playbook_is_refused_at_its_line_with_the_nearest_id() {
        let misspelt = TEXT.replace("\"storage-account-mmk\"", "\"storage-acount-mmk\"");
        let w = Waivers::parse(&misspelt, "azbook.toml", at("2026-11-29T08:00:00Z")).unwrap();
        let e = w.check_playbooks(&BUILTIN).unwrap_err().to_string();
        assert!(
            e.starts_with("azbook.toml:4: waiver 1 names the playbook `storage-acount-mmk`"),
            "{e}"
        );
        assert!(e.contains("did you mean `storage-account-mmk`?"), "{e}");
        // `*` is every playbook, and a known id (built in or loaded) is accepted.
        let w = Waivers::parse(TEXT, "w", at("2026-11-29T08:00:00Z")).unwrap();
        w.check_playbooks(&BUILTIN).unwrap();
        // An expired waiver is checked too: a typo is a typo.
        let expired = TEXT.replace("playbook = \"*\"", "playbook = \"sql-db-tde\"");
        let w = Waivers::parse(&expired, "w", at("2026-11-29T08:00:00Z")).unwrap();
        let e = w.check_playbooks(&BUILTIN).unwrap_err().to_string();
        assert!(
            e.contains("w:11: waiver 2 names the playbook `sql-db-tde`"),
            "{e}"
        );
        assert!(!e.contains("did you mean"), "nothing is near enough: {e}");
        // An id only a `--playbook FILE` loads is known when that file is loaded.
        let custom = TEXT.replace("\"storage-account-mmk\"", "\"keyvault-purge-protection\"");
        let w = Waivers::parse(&custom, "w", at("2026-11-29T08:00:00Z")).unwrap();
        assert!(w.check_playbooks(&BUILTIN).is_err());
        let mut loaded = BUILTIN.to_vec();
        loaded.push("keyvault-purge-protection");
        w.check_playbooks(&loaded).unwrap();
    }

    #[test]
    fn an_active_waiver_that_matches_no_target_of_the_run_is_reported() {
        let text = format!(
            "{TEXT}{}",
            r#"
[[waiver]]
resource = "/subscriptions/S/resourceGroups/rg-gone/*"
playbook = "*"
reason = "r"
approver = "a"
expires = 2099-01-01

[[waiver]]
resource = "/subscriptions/OTHER/resourceGroups/rg-x/*"
playbook = "storage-account-mmk"
reason = "another subscription's"
approver = "a"
expires = 2099-01-01
"#
        );
        let w = Waivers::parse(&text, "w", at("2026-11-29T08:00:00Z")).unwrap();
        let storage = "/subscriptions/S/resourceGroups/RG-HSM/providers/Microsoft.Storage/storageAccounts/st1";
        let subs = vec!["s".to_string()];
        let unmatched = |targets: &[(&str, &str)], playbooks: &[&str]| -> Vec<String> {
            w.unmatched(targets.iter().copied(), playbooks, &subs)
                .iter()
                .map(|w| w.at.clone())
                .collect()
        };
        // A compliant target counts as much as a noncompliant one: only ids are compared.
        assert_eq!(
            unmatched(&[("storage-account-mmk", storage)], &BUILTIN),
            ["w:16: waiver 3"],
            "the expired waiver 2 is not judged, nor waiver 4 for a subscription outside the run"
        );
        // The storage waiver matches nothing when its playbook found only other accounts.
        let other = storage.replace("RG-HSM", "rg-data");
        assert_eq!(
            unmatched(&[("storage-account-mmk", &other)], &BUILTIN),
            ["w:2: waiver 1", "w:16: waiver 3"]
        );
        // A waiver for a playbook this run does not use is not judged.
        assert_eq!(
            unmatched(&[], &["sql-server-tde-protector-mmk"]),
            ["w:16: waiver 3"]
        );
        // Waiver 4 is judged once its subscription is in the run.
        let both = vec!["S".to_string(), "other".to_string()];
        assert_eq!(
            w.unmatched([("storage-account-mmk", storage)], &BUILTIN, &both)
                .len(),
            2
        );
    }

    #[test]
    fn the_scope_line_names_the_file_or_says_there_is_none() {
        assert_eq!(Waivers::default().describe_source(), "no waivers file");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("azbook.toml");
        std::fs::write(&path, TEXT).unwrap();
        let w = Waivers::load(&path, "./azbook.toml", at("2026-11-29T08:00:00Z")).unwrap();
        assert_eq!(
            w.describe_source(),
            "waivers: ./azbook.toml (1 active, 1 expired)"
        );
    }

    #[test]
    fn a_waiver_on_an_account_covers_its_scopes() {
        let text = r#"
[[waiver]]
resource = "*/storageAccounts/sthsm"
playbook = "storage-account-mmk"
reason = "r"
approver = "a"
expires = 2099-01-01

[[waiver]]
resource = "*/servers/sql-old"
playbook = "*"
reason = "r"
approver = "a"
expires = 2099-01-01
"#;
        let mut w = Waivers::parse(text, "w", at("2026-11-29T08:00:00Z")).unwrap();
        w.know_types([
            ("storage-account-mmk", "Microsoft.Storage/storageAccounts"),
            (
                "storage-encryption-scope-mmk",
                "Microsoft.Storage/storageAccounts/encryptionScopes",
            ),
            ("sql-server-tde-protector-mmk", "Microsoft.Sql/servers"),
            ("sql-database-tde-mmk", "Microsoft.Sql/servers/databases"),
        ]);
        let account =
            "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sthsm";
        let scope = format!("{account}/encryptionScopes/customer");
        assert!(w.find("storage-account-mmk", account).is_some());
        assert!(w.find("storage-encryption-scope-mmk", &scope).is_some());
        // Not a scope of another account whose name starts the same.
        let other = scope.replace("sthsm/", "sthsm2/");
        assert!(w.find("storage-encryption-scope-mmk", &other).is_none());
        // A waiver for the account playbook says nothing about SQL.
        let db = "/subscriptions/S/resourceGroups/rg/providers/Microsoft.Sql/servers/sql-old/databases/d";
        assert!(
            w.find("sql-database-tde-mmk", db).is_some(),
            "`*` covers what is under"
        );
        assert!(
            w.find("sql-database-tde-mmk", &db.replace("sql-old", "sql-new"))
                .is_none()
        );
    }
}
