//! Durable file writes: what is written here is on disk when the call returns, or the call failed.
//!
//! A crash must leave either the old file or the new one, never a half-written one, and a file
//! that was reported written must still exist after a power cut. That takes three fsyncs that
//! `std::fs::write` does not do: the data, the rename, and the directory entry.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename, fsync the directory.
///
/// The temp file lives next to the target because `rename` is atomic only within one file
/// system. On failure the temp file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let (temp_path, mut file) = create_temp(dir, &name.to_string_lossy())?;
    let result = write_synced(&mut file, bytes)
        .and_then(|()| fs::rename(&temp_path, path))
        .and_then(|()| sync_dir(dir));
    if result.is_err() {
        // After a successful rename the temp name is gone and this fails harmlessly.
        let _ = fs::remove_file(&temp_path);
    }
    result
}

/// Writes all of `bytes` and waits until they and the file's metadata are on disk.
pub fn write_synced(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the entries of `dir` (files created, renamed or removed in it) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory holding `path`: `.` for a bare file name.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A new, exclusively created temp file in `dir`. The name starts with `.` so that listings of
/// the directory (such as the run list) pass over a temp file a crash left behind.
/// Fails now, with the reason, if `write_atomic(path, ..)` could not succeed later: `path` is a
/// directory, or its directory does not exist or takes no new file. A run checks its report
/// destinations so before it changes anything, rather than failing after.
pub fn check_writable(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            format!("{} is a directory", path.display()),
        ));
    }
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let (temp_path, file) = create_temp(parent_dir(path), &name.to_string_lossy())?;
    drop(file);
    fs::remove_file(temp_path)
}

fn create_temp(dir: &Path, name: &str) -> io::Result<(std::path::PathBuf, File)> {
    let pid = std::process::id();
    let mut attempt = 0u32;
    loop {
        let temp_path = dir.join(format!(".{name}.{pid}.{attempt}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
        {
            Ok(file) => return Ok((temp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_is_checked_without_leaving_anything() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(&dir.path().join("report.md")).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(check_writable(dir.path()).is_err(), "a directory");
        assert!(check_writable(&dir.path().join("no/such/dir/report.md")).is_err());
    }

    #[test]
    fn writes_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.toml");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("copy.toml")]);
    }

    #[test]
    fn skips_a_temp_name_left_by_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir
            .path()
            .join(format!(".copy.toml.{}.0.tmp", std::process::id()));
        fs::write(&stale, b"left over").unwrap();
        let path = dir.path().join("copy.toml");
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read(&stale).unwrap(), b"left over");
    }

    #[test]
    fn a_parent_that_is_a_file_is_an_error_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, b"x").unwrap();
        let err = write_atomic(&file.join("copy.toml"), b"data").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory);
        assert_eq!(fs::read(&file).unwrap(), b"x");
    }

    #[test]
    fn a_full_disk_is_reported_not_swallowed() {
        // /dev/full accepts the open and fails every write with ENOSPC, as a full disk does.
        let mut full = OpenOptions::new().write(true).open("/dev/full").unwrap();
        let err = write_synced(&mut full, b"anything").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("copy.toml")), Path::new("."));
        assert_eq!(parent_dir(Path::new("a/copy.toml")), Path::new("a"));
    }
}
