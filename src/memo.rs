//! One az read per run for reads that several jobs need: the first caller of a key runs it,
//! callers that come while it runs wait for it, later ones get its result.
//!
//! Discovery shares each subscription's SQL server list between the two SQL playbooks; apply
//! confirms a Key Vault key once however many resources use it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};

pub struct Memo<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
}

struct Entry<V> {
    cell: Arc<OnceLock<V>>,
    /// Callers still expected; the entry is dropped when the last one has come, so that a big
    /// result (a list of ten thousand accounts) is not kept for the rest of the run.
    left: usize,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Memo<K, V> {
    /// The value for `key`, made by `make` if no caller made it before. `callers` is how many
    /// callers of this key the run expects in all (the first caller's word counts); past that
    /// many the value is forgotten. `usize::MAX` keeps it for the whole run.
    pub fn get(&self, key: K, callers: usize, make: impl FnOnce() -> V) -> V {
        let cell = {
            let mut entries = self.entries.lock().expect("memo lock");
            let entry = entries.entry(key.clone()).or_insert_with(|| Entry {
                cell: Arc::default(),
                left: callers,
            });
            entry.left = entry.left.saturating_sub(1);
            let cell = entry.cell.clone();
            if entry.left == 0 {
                entries.remove(&key);
            }
            cell
        };
        cell.get_or_init(make).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn concurrent_callers_share_one_run_and_the_last_expected_one_frees_it() {
        let memo: Memo<&str, usize> = Memo::default();
        let runs = AtomicUsize::new(0);
        let make = || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            runs.fetch_add(1, Ordering::SeqCst) + 1
        };
        std::thread::scope(|s| {
            let a = s.spawn(|| memo.get("k", 3, make));
            let b = s.spawn(|| memo.get("k", 3, make));
            assert_eq!((a.join().unwrap(), b.join().unwrap()), (1, 1));
        });
        assert_eq!(
            memo.get("k", 3, make),
            1,
            "the third expected caller still shares it"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(
            memo.get("k", 3, make),
            2,
            "past the expected callers it runs again"
        );
        assert_eq!(memo.get("other", usize::MAX, make), 3);
        assert_eq!(memo.get("other", usize::MAX, make), 3);
    }
}
