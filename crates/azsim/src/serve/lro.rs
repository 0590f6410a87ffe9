//! Long-running operations, as the SQL resource provider runs its changes: a PUT answers 202
//! with `Azure-AsyncOperation` and `Location` URLs; polling the first says `InProgress` a set
//! number of times, then `Succeeded` (or `Failed` with the error); az then GETs the resource.
//! The change itself is made (or refused) in the store when the PUT arrives, so the resource
//! az reads after `Succeeded` shows it.

use crate::synth;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The outcome of the change: the resource's wire body, or an error code and message.
pub type Outcome = Result<Value, (String, String)>;

#[derive(Debug, Clone)]
pub struct Operation {
    pub id: String,
    pub start_time: String,
    pub outcome: Outcome,
    polls_left: u32,
}

impl Operation {
    pub fn new(outcome: Outcome) -> Operation {
        Operation {
            id: String::new(),
            start_time: synth::now_iso().replace("+00:00", "Z"),
            outcome,
            polls_left: 0,
        }
    }
}

/// What one poll sees.
#[derive(Debug, Clone, PartialEq)]
pub struct Poll {
    /// `InProgress`, `Succeeded` or `Failed`.
    pub status: String,
    pub start_time: String,
    pub outcome: Outcome,
}

/// The operations of one `azsim serve` process.
pub struct Operations {
    in_progress_polls: u32,
    next: AtomicU64,
    ops: Mutex<HashMap<String, Operation>>,
}

impl Operations {
    /// `in_progress_polls`: how many polls of each operation answer `InProgress` first.
    pub fn new(in_progress_polls: u32) -> Operations {
        Operations {
            in_progress_polls,
            next: AtomicU64::new(1),
            ops: Mutex::new(HashMap::new()),
        }
    }

    /// Registers an operation and returns it with its id.
    pub fn start(&self, mut op: Operation) -> Operation {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        op.id = synth::guid(&format!(
            "operation|{}|{n}|{}",
            std::process::id(),
            op.start_time
        ));
        op.polls_left = self.in_progress_polls;
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        ops.insert(op.id.clone(), op.clone());
        op
    }

    /// One poll: `InProgress` while the operation has in-progress polls left, then its result.
    pub fn poll(&self, id: &str) -> Option<Poll> {
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let op = ops
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(id))
            .map(|(_, op)| op)?;
        let status = if op.polls_left > 0 {
            op.polls_left -= 1;
            "InProgress"
        } else if op.outcome.is_ok() {
            "Succeeded"
        } else {
            "Failed"
        };
        Some(Poll {
            status: status.to_string(),
            start_time: op.start_time.clone(),
            outcome: op.outcome.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn in_progress_then_done() {
        let ops = Operations::new(2);
        let ok = ops.start(Operation::new(Ok(json!({"x": 1}))));
        let failed = ops.start(Operation::new(Err((
            "ServerKeyNotFound".into(),
            "gone".into(),
        ))));
        assert_ne!(ok.id, failed.id);
        let statuses: Vec<String> = (0..4).map(|_| ops.poll(&ok.id).unwrap().status).collect();
        assert_eq!(
            statuses,
            ["InProgress", "InProgress", "Succeeded", "Succeeded"]
        );
        ops.poll(&failed.id);
        ops.poll(&failed.id);
        let last = ops.poll(&failed.id.to_ascii_uppercase()).unwrap();
        assert_eq!(last.status, "Failed");
        assert_eq!(
            last.outcome,
            Err(("ServerKeyNotFound".into(), "gone".into()))
        );
        assert!(ops.poll("nope").is_none());
    }
}
