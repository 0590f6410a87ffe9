//! A saved plan (`azbook plan --out FILE`) read back for `azbook apply FILE`. A plan file is
//! input, not a script: it is refused whole unless it belongs here (tenant, subscriptions,
//! playbooks and their hashes), now (`--max-age`, and not from the future), and every field of
//! every change is what the playbook derives from the plan's own recorded target and state, for
//! a target inside the plan's own recorded scope. Whether the resource still holds that state
//! is decided at apply time, per target (`apply::execute`).

use crate::account::Account;
use crate::discover::Filters;
use crate::model::Change;
use crate::plan::{self, PlanFile};
use crate::playbook::{self, Playbook};
use crate::timefmt;
use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use sha2::Digest;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The largest plan file azbook reads: far beyond any real plan, small enough to refuse junk.
const MAX_PLAN_BYTES: u64 = 64 * 1024 * 1024;

/// How far ahead of this machine's clock a plan's `createdAt` may be (another machine's clock).
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The plan and the sha256 of the file's bytes (lower-case hex), which ties what was approved
/// to what is applied.
pub(super) fn read(path: &Path) -> Result<(PlanFile, String)> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read the plan file {}", path.display()))?
        .len();
    if size > MAX_PLAN_BYTES {
        bail!(
            "the plan file {} is {size} bytes; azbook reads at most {MAX_PLAN_BYTES}",
            path.display()
        );
    }
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the plan file {}", path.display()))?;
    let digest: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let file = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not an azbook plan file", path.display()))?;
    Ok((file, digest))
}

/// The playbooks a saved plan names: built-in by id, others from the file they were loaded from.
pub(super) fn playbooks(file: &PlanFile) -> Result<Vec<Playbook>> {
    let builtins = playbook::builtin();
    let mut out = Vec::new();
    for wanted in &file.playbooks {
        let value = if builtins.iter().any(|b| b.id == wanted.id) {
            wanted.id.clone()
        } else {
            wanted.origin.clone()
        };
        out.extend(playbook::select(&[value])?);
    }
    Ok(out)
}

/// Refuses a saved plan that does not belong here, now, with these playbooks, or whose changes
/// are not what the playbooks derive from its own recorded state within its own scope.
pub(super) fn check(
    file: &PlanFile,
    account: &Account,
    visible: &[String],
    playbooks: &[Playbook],
    max_age: Duration,
) -> Result<()> {
    if file.schema_version != 1 {
        bail!(
            "not an azbook plan of schema version 1: schemaVersion {}",
            file.schema_version
        );
    }
    check_place(file, account, visible)?;
    check_age(file, max_age, SystemTime::now())?;
    check_playbooks(file, playbooks)?;
    let scope = recorded_filters(&file.scope)?;
    for change in &file.changes {
        check_change(change, playbooks)?;
        check_in_scope(change, &scope)?;
    }
    Ok(())
}

/// The plan's tenant is the signed-in one, and every subscription it changes is its own and
/// visible to the signed-in identity.
fn check_place(file: &PlanFile, account: &Account, visible: &[String]) -> Result<()> {
    if !file.tenant_id.eq_ignore_ascii_case(&account.tenant_id) {
        bail!(
            "the plan was made for tenant {}, but az is signed in to tenant {}: sign in to the plan's tenant (az login --tenant {})",
            file.tenant_id,
            account.tenant_id,
            file.tenant_id
        );
    }
    for sub in file
        .subscriptions
        .iter()
        .chain(file.changes.iter().map(|c| &c.subscription))
    {
        if !file
            .subscriptions
            .iter()
            .any(|s| s.eq_ignore_ascii_case(sub))
        {
            bail!(
                "the plan changes subscription {sub}, which it does not name as its own: the file was edited"
            );
        }
        if !visible.iter().any(|s| s.eq_ignore_ascii_case(sub)) {
            bail!(
                "the plan is for subscription {sub}, which the signed-in identity ({}) cannot see",
                account.user
            );
        }
    }
    Ok(())
}

fn check_age(file: &PlanFile, max_age: Duration, now: SystemTime) -> Result<()> {
    let created = timefmt::parse_rfc3339(&file.created_at)
        .with_context(|| format!("the plan's createdAt {:?} is not a time", file.created_at))?;
    if let Ok(ahead) = created.duration_since(now)
        && ahead > MAX_CLOCK_SKEW
    {
        bail!(
            "the plan says it was made {} from now ({}): a clock is wrong or the file was edited; make a new plan",
            human_duration(ahead),
            file.created_at
        );
    }
    let age = now.duration_since(created).unwrap_or(Duration::ZERO);
    if age > max_age {
        bail!(
            "the plan was made {} ago, longer than --max-age ({}): make a new plan (azbook plan --out FILE)",
            human_duration(age),
            human_duration(max_age)
        );
    }
    Ok(())
}

/// Every playbook the plan names is here, unchanged since the plan was made.
fn check_playbooks(file: &PlanFile, playbooks: &[Playbook]) -> Result<()> {
    for wanted in &file.playbooks {
        let Some(p) = playbooks.iter().find(|p| p.id == wanted.id) else {
            bail!(
                "the plan uses playbook {}, which is not available",
                wanted.id
            );
        };
        if p.sha256() != wanted.sha256 {
            bail!(
                "playbook {} has changed since the plan was made (sha256 {} then, {} now): make a new plan",
                p.id,
                wanted.sha256,
                p.sha256()
            );
        }
    }
    Ok(())
}

/// Every field of a change that its recorded target and state determine (the resource id, the
/// subscription, the steps and their argv, the predicted after-state, the backout argv) must be
/// what the playbook derives from them; the first that is not is named.
fn check_change(change: &Change, playbooks: &[Playbook]) -> Result<()> {
    let edited = |field: &str| {
        anyhow!(
            "the plan's change for {}: its `{field}` is not what playbook {} derives from the plan's own recorded target and state, so the file was edited. A plan file is input, not a script: make a new plan",
            change.resource,
            change.playbook
        )
    };
    let Some(p) = playbooks.iter().find(|p| p.id == change.playbook) else {
        bail!(
            "the plan changes {} with playbook {}, which the plan does not name",
            change.resource,
            change.playbook
        );
    };
    let resource = change.context["target"]["id"]
        .as_str()
        .ok_or_else(|| edited("context"))?;
    let derived = plan::derive(
        p,
        resource,
        &change.subscription,
        &change.context,
        &change.before,
    )
    .map_err(|e| anyhow!("cannot derive the change for {}: {e}", change.resource))?;
    if derived.resource != change.resource {
        return Err(edited("resource"));
    }
    if subscription_of(resource).is_none_or(|s| !s.eq_ignore_ascii_case(&change.subscription)) {
        return Err(edited("subscription"));
    }
    if derived.steps != change.steps {
        return Err(edited("steps"));
    }
    if derived.after != change.after {
        return Err(edited("after"));
    }
    if derived.backout != change.backout {
        return Err(edited("backout"));
    }
    Ok(())
}

/// `/subscriptions/<id>/...` gives `<id>`.
fn subscription_of(id: &str) -> Option<&str> {
    let mut parts = id
        .split('/')
        .skip_while(|p| !p.eq_ignore_ascii_case("subscriptions"));
    parts.next()?;
    parts.next().filter(|s| !s.is_empty())
}

/// The filters the plan was made with, as it recorded them (`scope`).
fn recorded_filters(scope: &Value) -> Result<Filters> {
    let strings = |key: &str| -> Vec<String> {
        scope[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let globs = |key: &str| -> Result<Vec<glob::Pattern>> {
        strings(key)
            .iter()
            .map(|g| Filters::parse_glob(g).map_err(|e| anyhow!("the plan's scope: {e}")))
            .collect()
    };
    let tags = strings("tags")
        .iter()
        .map(|t| Filters::parse_tag(t).map_err(|e| anyhow!("the plan's scope: {e}")))
        .collect::<Result<_>>()?;
    Ok(Filters {
        resource_group: scope["resourceGroup"].as_str().map(String::from),
        tags,
        names: globs("names")?,
        excludes: globs("excludes")?,
    })
}

/// A change copied in from another plan names a target outside this plan's recorded scope.
fn check_in_scope(change: &Change, scope: &Filters) -> Result<()> {
    if let Some(filter) = scope.excluding(&change.resource, &change.context) {
        bail!(
            "the plan changes {}, which its own scope leaves out ({filter}): the change was copied in from elsewhere. A plan file is input, not a script: make a new plan",
            change.resource
        );
    }
    Ok(())
}

pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan_made(created_at: &str) -> PlanFile {
        serde_json::from_value(json!({
            "schemaVersion": 1, "kind": "azbook-plan", "azbookVersion": "0", "createdAt": created_at,
            "tenantId": "t", "user": "u", "subscriptions": [], "playbooks": [], "scope": {},
            "changes": []
        }))
        .unwrap()
    }

    #[test]
    fn a_plan_from_the_future_is_refused_beyond_clock_skew() {
        let now = timefmt::parse_rfc3339("2026-12-07T10:00:00Z").unwrap();
        let day = Duration::from_secs(86_400);
        assert!(check_age(&plan_made("2026-12-07T10:04:00Z"), day, now).is_ok());
        let e = check_age(&plan_made("2026-12-07T10:06:00Z"), day, now).unwrap_err();
        assert!(e.to_string().contains("from now"), "{e}");
        let e = check_age(&plan_made("2026-12-05T10:00:00Z"), day, now).unwrap_err();
        assert!(e.to_string().contains("longer than --max-age"), "{e}");
    }

    #[test]
    fn subscriptions_come_from_the_arm_id() {
        assert_eq!(
            subscription_of("/subscriptions/S1/resourceGroups/rg/providers/x/y/n"),
            Some("S1")
        );
        assert_eq!(subscription_of("/providers/x"), None);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(Duration::from_secs(3 * 86_400)), "3d");
        assert_eq!(human_duration(Duration::from_secs(90)), "90s");
    }
}
