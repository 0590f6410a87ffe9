//! `test --evidence-dir DIR`: for each resource, the exact commands run, when, as whom, and the
//! raw JSON az printed (credentials removed), plus a manifest with each file's sha256, so that an
//! auditor can check a report against what Azure said and that nothing was edited since.

use crate::evaluate::Finding;
use crate::fsutil::write_atomic;
use crate::model::ReportContext;
use crate::redact::redact;
use anyhow::{Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::Path;

/// A file name for an ARM id: its parts after the subscription, joined, safe on every system.
fn file_name(playbook: &str, resource: &str) -> String {
    let tail: Vec<&str> = resource.split('/').filter(|p| !p.is_empty()).collect();
    let safe: String = format!("{playbook}__{}", tail.join("_"))
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Names are capped; the hash keeps two long ids that share a prefix apart.
    let hash: String = Sha256::digest(format!("{playbook}\n{resource}").as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}-{hash}.json", &safe[..safe.len().min(150)])
}

/// Writes one file per assessed resource and then the manifest; returns how many files.
pub fn write(dir: &Path, outcomes: &[Finding<'_>], ctx: &ReportContext) -> Result<usize> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the evidence directory {}", dir.display()))?;
    let mut manifest = Vec::new();
    for outcome in outcomes {
        let name = file_name(&outcome.playbook.id, &outcome.resource);
        let calls = outcome
            .target
            .as_ref()
            .map(|t| t.calls.clone())
            .unwrap_or_default();
        let doc = json!({
            "resource": outcome.resource,
            "playbook": outcome.playbook.id,
            "control": {"id": outcome.playbook.control.id, "title": outcome.playbook.control.title,
                        "benchmark": outcome.playbook.control.benchmark},
            "compliantWhen": outcome.playbook.test.compliant.source(),
            "status": outcome.assessment.status,
            "message": outcome.assessment.message,
            "evidence": outcome.assessment.evidence,
            "signedIn": {"user": ctx.user, "tenantId": ctx.tenant_id},
            "azbookVersion": ctx.azbook_version,
            "calls": calls,
        });
        let bytes = serde_json::to_vec_pretty(&redact(&doc))?;
        write_atomic(&dir.join(&name), &bytes)
            .with_context(|| format!("cannot write evidence for {}", outcome.resource))?;
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        manifest.push(json!({"file": name, "sha256": sha, "resource": outcome.resource, "playbook": outcome.playbook.id}));
    }
    let manifest = json!({
        "generatedAt": ctx.generated_at,
        "azbookVersion": ctx.azbook_version,
        "signedIn": {"user": ctx.user, "tenantId": ctx.tenant_id},
        "subscriptions": ctx.subscriptions,
        "scope": ctx.scope,
        "files": manifest,
    });
    write_atomic(
        &dir.join("manifest.json"),
        &serde_json::to_vec_pretty(&manifest)?,
    )
    .context("cannot write the evidence manifest")?;
    Ok(outcomes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        let a = file_name(
            "p",
            "/subscriptions/s/resourceGroups/-rg.ops(1)/providers/Microsoft.Sql/servers/x/databases/db",
        );
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{a}"
        );
        assert!(a.ends_with(".json"));
        assert_ne!(
            a,
            file_name(
                "p",
                "/subscriptions/s/resourceGroups/-rg.ops(1)/providers/Microsoft.Sql/servers/x/databases/dc"
            )
        );
        assert_ne!(file_name("p", "/a/b"), file_name("q", "/a/b"));
    }
}
