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
use std::path::Path;
use std::time::{Duration, SystemTime};

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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    waiver: Vec<RawWaiver>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    resource: String,
    playbook: String,
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

/// The waivers in effect now, and a warning for each one that has expired.
#[derive(Debug, Default)]
pub struct Waivers {
    pub active: Vec<Waiver>,
    pub warnings: Vec<String>,
}

impl Waivers {
    pub fn load(path: &Path, now: SystemTime) -> Result<Waivers> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the waivers file {}", path.display()))?;
        Self::parse(&text, &path.display().to_string(), now)
    }

    pub fn parse(text: &str, name: &str, now: SystemTime) -> Result<Waivers> {
        let file: File = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            let line = text[..at.min(text.len())].matches('\n').count() + 1;
            anyhow::anyhow!("{name}:{line}: {}", e.message().trim())
        })?;
        let mut waivers = Waivers::default();
        for (i, raw) in file.waiver.into_iter().enumerate() {
            let label = format!(
                "{name}: waiver {} ({} for {})",
                i + 1,
                raw.resource,
                raw.playbook
            );
            for (field, value) in [
                ("reason", &raw.reason),
                ("approver", &raw.approver),
                ("playbook", &raw.playbook),
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
                playbook: raw.playbook,
                reason: raw.reason,
                approver: raw.approver,
                expires: date.to_string(),
                ends: start + Duration::from_secs(86_400),
            };
            if now >= waiver.ends {
                waivers.warnings.push(format!(
                    "{label} expired on {}; it is ignored",
                    waiver.expires
                ));
            } else {
                waivers.active.push(waiver);
            }
        }
        Ok(waivers)
    }

    /// The active waiver for this resource and playbook, if any.
    pub fn find(&self, playbook: &str, resource: &str) -> Option<&Waiver> {
        self.active.iter().find(|w| {
            (w.playbook == "*" || w.playbook == playbook)
                && w.resource.matches_with(resource, CASE_INSENSITIVE)
        })
    }
}

impl Waiver {
    pub fn describe(&self) -> String {
        format!(
            "waived: {} (approved by {}, until {})",
            self.reason, self.approver, self.expires
        )
    }
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
        assert_eq!(w.warnings.len(), 1);
        assert!(
            w.warnings[0].contains("waiver 2") && w.warnings[0].contains("expired on 2026-01-31"),
            "{:?}",
            w.warnings
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
        assert_eq!(next_day.warnings.len(), 2);
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
}
