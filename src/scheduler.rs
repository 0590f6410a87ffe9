//! A fixed pool of workers running jobs that may spawn further jobs.
//!
//! A run's `az` calls form chains (a server list, then each server's databases, then each
//! database's state). Each job makes at most one call and spawns the jobs that depend on it, so
//! a database is read as soon as its server's list is in, across playbooks and subscriptions,
//! while `jobs` bounds the `az` processes alive at once. The newest job runs first: it finishes
//! the chains already started (results sooner, fewer partial states held in memory) before
//! opening new ones.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

type Job<'s> = Box<dyn FnOnce(&Spawner<'s>) + Send + 's>;

struct State<'s> {
    queue: VecDeque<Job<'s>>,
    running: usize,
}

pub struct Spawner<'s> {
    state: Mutex<State<'s>>,
    wake: Condvar,
}

impl<'s> Spawner<'s> {
    pub fn spawn(&self, job: impl FnOnce(&Spawner<'s>) + Send + 's) {
        let mut state = self.state.lock().expect("scheduler lock");
        state.queue.push_back(Box::new(job));
        drop(state);
        self.wake.notify_one();
    }

    fn next(&self) -> Option<Job<'s>> {
        let mut state = self.state.lock().expect("scheduler lock");
        loop {
            if let Some(job) = state.queue.pop_back() {
                state.running += 1;
                return Some(job);
            }
            if state.running == 0 {
                self.wake.notify_all();
                return None;
            }
            state = self.wake.wait(state).expect("scheduler lock");
        }
    }

    fn done(&self) {
        let mut state = self.state.lock().expect("scheduler lock");
        state.running -= 1;
        let idle = state.running == 0 && state.queue.is_empty();
        drop(state);
        if idle {
            self.wake.notify_all();
        }
    }
}

/// Runs `first` and everything it spawns on `workers` threads; returns when all are done.
pub fn run<'s>(workers: usize, first: impl FnOnce(&Spawner<'s>)) {
    let spawner = Spawner {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            running: 0,
        }),
        wake: Condvar::new(),
    };
    first(&spawner);
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| {
                while let Some(job) = spawner.next() {
                    job(&spawner);
                    spawner.done();
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_every_spawned_job_once() {
        let count = AtomicUsize::new(0);
        run(4, |s| {
            for _ in 0..10 {
                s.spawn(|s| {
                    count.fetch_add(1, Ordering::SeqCst);
                    for _ in 0..10 {
                        s.spawn(|_| {
                            count.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                });
            }
        });
        assert_eq!(count.load(Ordering::SeqCst), 110);
    }

    #[test]
    fn never_runs_more_jobs_at_once_than_workers() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        run(3, |s| {
            for _ in 0..30 {
                s.spawn(|_| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=3).contains(&peak), "peak {peak}");
    }

    #[test]
    fn returns_with_nothing_to_do() {
        run(2, |_| {});
    }
}
