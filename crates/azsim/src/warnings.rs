//! az's warnings on stderr. knack prints them unless `--only-show-errors` was given; the CLI face
//! sets that once per call, and any command handler may warn.

use std::sync::atomic::{AtomicBool, Ordering};

static ONLY_ERRORS: AtomicBool = AtomicBool::new(false);

/// Records whether this call asked for `--only-show-errors`.
pub fn set_only_errors(only_errors: bool) {
    ONLY_ERRORS.store(only_errors, Ordering::Relaxed);
}

/// Prints an az warning to stderr unless `--only-show-errors` was given.
pub fn warn(message: &str) {
    if !ONLY_ERRORS.load(Ordering::Relaxed) {
        eprintln!("WARNING: {message}");
    }
}
