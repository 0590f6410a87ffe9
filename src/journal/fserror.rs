//! What a failed file-system call in the state directory means for the person running azbook:
//! the cause (not writable, full, a file in the way) and what to do about it.

use std::fs;
use std::io;
use std::path::Path;

/// "`action` `path`: `err`; what to do about it".
pub(super) fn fs_failure(action: &str, path: &Path, err: &io::Error, root: &Path) -> String {
    let choose = "choose another state directory with --state-dir (or AZBOOK_STATE_DIR)";
    let hint = match err.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => format!(
            "the state directory {} is not writable: {choose}",
            root.display()
        ),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => format!(
            "the disk holding {} is full: free space, or {choose}",
            root.display()
        ),
        io::ErrorKind::NotADirectory | io::ErrorKind::AlreadyExists => match blocking_file(path) {
            Some(file) => format!(
                "{} is a regular file, not a directory: {choose}, or move that file",
                file.display()
            ),
            None => format!("part of the path is not a directory: {choose}"),
        },
        _ => format!("check the state directory {}, or {choose}", root.display()),
    };
    format!("{action} {}: {err}; {hint}", path.display())
}

/// The first existing ancestor of `path` (itself included) that is not a directory.
fn blocking_file(path: &Path) -> Option<&Path> {
    path.ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .find_map(|p| fs::metadata(p).ok().map(|m| (p, m)))
        .and_then(|(p, m)| (!m.is_dir()).then_some(p))
}
