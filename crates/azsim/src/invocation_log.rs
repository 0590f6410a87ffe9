//! The invocation log: one JSON line per CLI-face call, written before the command runs, so a
//! test can prove that a dry run changed nothing even when a call crashes or hangs.

use anyhow::{Context, Result};
use serde_json::json;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

/// `AZSIM_LOG` if set, else `$AZSIM_WORLD.calls.jsonl`.
pub fn path(world: &std::path::Path) -> PathBuf {
    match std::env::var_os("AZSIM_LOG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let mut p = OsString::from(world.as_os_str());
            p.push(".calls.jsonl");
            PathBuf::from(p)
        }
    }
}

/// Appends one line with a single `write` on an `O_APPEND` descriptor: the kernel places each
/// such write at the end of the file whole, so parallel callers never interleave.
pub fn append(log: &std::path::Path, ts: f64, argv: &[String], mutating: bool) -> Result<()> {
    write_line(log, &json!({"ts": ts, "argv": argv, "mutating": mutating}))
}

fn write_line(log: &std::path::Path, value: &serde_json::Value) -> Result<()> {
    let mut line = serde_json::to_string(value)?;
    line.push('\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open invocation log '{}'", log.display()))?;
    let written = file.write(line.as_bytes())?;
    if written != line.len() {
        // Only a full disk or a signal can cut a small regular-file write short.
        file.write_all(&line.as_bytes()[written..])?;
    }
    Ok(())
}

/// Appends one line for a request to the ARM face (`azsim serve`): `via: "arm"` marks it,
/// `argv` holds the method and the request target, `command` the az command the request
/// belongs to (null for sign-in, metadata and operation polls).
pub fn append_arm(
    log: &std::path::Path,
    ts: f64,
    method: &str,
    target: &str,
    command: Option<&str>,
    mutating: bool,
) -> Result<()> {
    let line = json!({"ts": ts, "argv": [method, target], "mutating": mutating, "via": "arm", "command": command});
    write_line(log, &line)
}

/// The log's lines, optionally only the mutating ones (for `azsim calls`).
pub fn read(log: &std::path::Path, only_mutating: bool) -> Result<Vec<String>> {
    let text = match std::fs::read_to_string(log) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read invocation log '{}'", log.display()));
        }
    };
    Ok(text
        .lines()
        .filter(|l| {
            !only_mutating
                || serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["mutating"] == true)
        })
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.jsonl");
        append(
            &log,
            1.5,
            &["storage".into(), "account".into(), "list".into()],
            false,
        )
        .unwrap();
        append(
            &log,
            2.0,
            &["sql".into(), "db".into(), "tde".into(), "set".into()],
            true,
        )
        .unwrap();
        assert_eq!(read(&log, false).unwrap().len(), 2);
        let mutating = read(&log, true).unwrap();
        assert_eq!(mutating.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&mutating[0]).unwrap();
        assert_eq!(v["argv"][3], "set");
        assert_eq!(v["ts"], 2.0);
    }

    #[test]
    fn arm_lines_are_marked() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.jsonl");
        append_arm(
            &log,
            3.0,
            "PATCH",
            "/subscriptions/s/x?api-version=1",
            Some("storage account update"),
            true,
        )
        .unwrap();
        append_arm(&log, 4.0, "POST", "/t/oauth2/v2.0/token", None, false).unwrap();
        let mutating = read(&log, true).unwrap();
        assert_eq!(mutating.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&mutating[0]).unwrap();
        assert_eq!(v["via"], "arm");
        assert_eq!(v["command"], "storage account update");
        assert_eq!(v["argv"][0], "PATCH");
        let all = read(&log, false).unwrap();
        let token: serde_json::Value = serde_json::from_str(&all[1]).unwrap();
        assert!(token["command"].is_null());
    }
}
