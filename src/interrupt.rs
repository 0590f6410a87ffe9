//! Ctrl-C and SIGTERM. A signal is only counted here; what it means is decided where the work
//! is (README.md, "Exit codes"): the first stops a change run from starting new changes while
//! the running ones finish and are recorded, and stops a read run at once; the second kills
//! every az still running. A count lives in a static because a signal handler can touch nothing
//! else; the logic reads it through an [`Interrupt`] handed down like any other option, so that
//! tests use a counter of their own.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// Runners (az layers) alive: while there are none, nothing needs care and a signal ends the
/// process at once, as it would any other program.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// A person is being asked to confirm: Ctrl-C there means no, at once.
static ASKING: AtomicBool = AtomicBool::new(false);

/// How many times the run has been asked to stop.
#[derive(Clone, Copy, Debug)]
pub struct Interrupt {
    signals: &'static AtomicUsize,
}

extern "C" fn count_signal(_: libc::c_int) {
    if ACTIVE.load(Ordering::SeqCst) == 0 || ASKING.load(Ordering::SeqCst) {
        // SAFETY: _exit(2) is async-signal-safe; nothing is running that a signal could leave
        // half done (no az, no change log being written).
        unsafe { libc::_exit(crate::exit::INTERRUPTED) };
    }
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

impl Interrupt {
    /// Counts this process's SIGINT and SIGTERM from now on, instead of dying at once: `main`
    /// calls it once.
    pub fn install() -> Interrupt {
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only increments an atomic, which is async-signal-safe; the
            // sigaction struct is zeroed and then filled as sigaction(2) requires.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
        Interrupt { signals: &SIGNALS }
    }

    /// A run that no signal reaches (library tests).
    pub fn never() -> Interrupt {
        static NEVER: AtomicUsize = AtomicUsize::new(0);
        Interrupt { signals: &NEVER }
    }

    /// A counter a test raises by hand.
    #[cfg(test)]
    pub fn counted_by(signals: &'static AtomicUsize) -> Interrupt {
        Interrupt { signals }
    }

    /// Signals received so far.
    pub fn count(&self) -> usize {
        self.signals.load(Ordering::SeqCst)
    }

    /// From now until the guard drops, a signal is counted rather than ending the process:
    /// an az layer holds it for as long as it may run az.
    pub fn active(&self) -> Active {
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        Active(())
    }

    /// While the guard lives, a person is asked to confirm, and a signal ends the process at
    /// once (nothing has changed yet).
    pub fn asking(&self) -> Asking {
        ASKING.store(true, Ordering::SeqCst);
        Asking(())
    }
}

/// See [`Interrupt::active`].
pub struct Active(());

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// See [`Interrupt::asking`].
pub struct Asking(());

impl Drop for Asking {
    fn drop(&mut self) {
        ASKING.store(false, Ordering::SeqCst);
    }
}
