//! The state directory: where it is, who may write it, its lock, run ids, and the creation of a
//! run.
//!
//! Everything that can go wrong with the state directory (none to be found, others able to write
//! it, a path through a regular file, no permission, a read-only or full disk) goes wrong here,
//! in `lock` or `create_run`, before apply or backout changes anything: both write and fsync
//! before they return.

use super::fserror::fs_failure;
use super::writer::Journal;
use super::{
    JOURNAL_FILE, LOCK_FILE, PLAYBOOKS_DIR, PlaybookRef, RUNS_DIR, RunKind, RunStart, is_safe_name,
    sha256_hex,
};
use crate::fsutil::{parent_dir, sync_dir, write_atomic};
use crate::timefmt::{compact_utc, now_rfc3339, parse_rfc3339};
use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions, Permissions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The state directory of azbook before it was kept per user: `.azbook` in the working
/// directory. One that exists is still used when no state directory is named.
pub const LEGACY_STATE_DIR: &str = ".azbook";

/// Where the state directory is, and how it was chosen. The command line and the environment
/// are read once, in `cli`; this gets what they said as plain paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateLocation {
    /// `--state-dir` or `AZBOOK_STATE_DIR`: chosen by someone, perhaps a team's shared directory.
    Named(PathBuf),
    /// `.azbook` in the working directory, left by an older azbook: still used, with a notice,
    /// so that no run recorded there is lost to backout. `per_user` is where it would go.
    Legacy {
        dir: PathBuf,
        per_user: Option<PathBuf>,
    },
    /// The default: `$XDG_STATE_HOME/azbook`, else `~/.local/state/azbook`, the same whatever
    /// the working directory.
    PerUser(PathBuf),
    /// Nothing named, no `.azbook` here, and neither XDG_STATE_HOME nor HOME set (or absolute).
    Unknown,
}

impl StateLocation {
    /// The state directory: `named` if given (and not empty), else `.azbook` if `legacy_here`
    /// (it is a directory in the working directory), else the per-user one from
    /// `xdg_state_home` or `home`, which must be absolute paths to count (as the XDG base
    /// directory specification says of XDG_STATE_HOME).
    pub fn choose(
        named: Option<PathBuf>,
        legacy_here: bool,
        xdg_state_home: Option<PathBuf>,
        home: Option<PathBuf>,
    ) -> StateLocation {
        if let Some(dir) = named.filter(|p| !p.as_os_str().is_empty()) {
            return StateLocation::Named(dir);
        }
        let absolute = |p: Option<PathBuf>| p.filter(|p| p.is_absolute());
        let per_user = absolute(xdg_state_home)
            .map(|state| state.join("azbook"))
            .or_else(|| absolute(home).map(|home| home.join(".local/state/azbook")));
        match per_user {
            _ if legacy_here => StateLocation::Legacy {
                dir: PathBuf::from(LEGACY_STATE_DIR),
                per_user,
            },
            Some(dir) => StateLocation::PerUser(dir),
            None => StateLocation::Unknown,
        }
    }

    /// The state directory, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            StateLocation::Named(dir)
            | StateLocation::Legacy { dir, .. }
            | StateLocation::PerUser(dir) => Some(dir),
            StateLocation::Unknown => None,
        }
    }

    /// The one line to show when the `.azbook` of an older azbook is used: how to move it.
    pub fn notice(&self) -> Option<String> {
        let StateLocation::Legacy { dir, per_user } = self else {
            return None;
        };
        let here = shell_word(dir);
        let keep = format!("or keep using it with `--state-dir {here}`");
        Some(match per_user.as_deref() {
            Some(to) => format!(
                "notice: using {here} in the working directory as the state directory, as older \
                 azbooks did; the default is now {} in every directory: move it there (`mkdir -p {} \
                 && mv {here} {}`, if that does not exist yet), {keep}",
                to.display(),
                shell_word(parent_dir(to)),
                shell_word(to),
            ),
            None => format!(
                "notice: using {here} in the working directory as the state directory, as older \
                 azbooks did; {keep}"
            ),
        })
    }
}

impl From<PathBuf> for StateLocation {
    fn from(dir: PathBuf) -> StateLocation {
        StateLocation::Named(dir)
    }
}

impl From<&Path> for StateLocation {
    fn from(dir: &Path) -> StateLocation {
        StateLocation::Named(dir.to_path_buf())
    }
}

impl From<&PathBuf> for StateLocation {
    fn from(dir: &PathBuf) -> StateLocation {
        StateLocation::Named(dir.clone())
    }
}

impl From<std::ffi::OsString> for StateLocation {
    fn from(dir: std::ffi::OsString) -> StateLocation {
        StateLocation::Named(dir.into())
    }
}

impl From<&StateLocation> for StateLocation {
    fn from(location: &StateLocation) -> StateLocation {
        location.clone()
    }
}

/// A path as a POSIX shell reads it back, for the commands messages suggest.
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,".contains(c))
    {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

pub struct StateDir {
    root: PathBuf,
    /// The per-user default: azbook makes it 0700, so a group that can write it is refused too.
    private: bool,
    /// There is no state directory (`StateLocation::Unknown`): everything that would write or
    /// list it refuses first, and `root` is the `.azbook` that is not there.
    missing: bool,
}

impl StateDir {
    /// The state directory at `location`; a path is a named one.
    pub fn new(location: impl Into<StateLocation>) -> StateDir {
        let location = location.into();
        StateDir {
            private: matches!(location, StateLocation::PerUser(_)),
            missing: location.path().is_none(),
            root: location
                .path()
                .map_or_else(|| PathBuf::from(LEGACY_STATE_DIR), Path::to_path_buf),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn runs_dir(&self) -> PathBuf {
        self.root.join(RUNS_DIR)
    }

    /// Fails, saying what to do, when there is no state directory: nothing was named and
    /// neither XDG_STATE_HOME nor HOME says where the per-user one is.
    pub fn available(&self) -> Result<()> {
        if self.missing {
            bail!(
                "there is no state directory: none was named, and neither XDG_STATE_HOME nor \
                 HOME is set to an absolute path, so the per-user one ($XDG_STATE_HOME/azbook, \
                 else ~/.local/state/azbook) cannot be found; name one with --state-dir DIR (or \
                 AZBOOK_STATE_DIR), or set HOME"
            );
        }
        Ok(())
    }

    /// What in the state directory others can write: the directory itself, `runs`, and the
    /// directory and change log of `run` (of every run when None). World-writable always
    /// counts; group-writable too in the per-user directory. Whoever can write there can edit
    /// the records backout restores from (recomputing the hash chain as they go) or add runs.
    pub fn open_to_others(&self, run: Option<&str>) -> Vec<String> {
        if self.missing {
            return Vec::new();
        }
        let runs = self.runs_dir();
        let ids: Vec<String> = match run {
            Some(id) => parse_run_id(id)
                .map(|_| vec![id.to_string()])
                .unwrap_or_default(),
            None => fs::read_dir(&runs)
                .map(|entries| {
                    let mut ids: Vec<String> = entries
                        .filter_map(|e| e.ok()?.file_name().into_string().ok())
                        .filter(|name| parse_run_id(name).is_some())
                        .collect();
                    ids.sort();
                    ids
                })
                .unwrap_or_default(),
        };
        let mut paths = vec![
            ("the state directory", self.root.clone()),
            ("the runs directory", runs.clone()),
        ];
        for id in ids {
            let dir = runs.join(&id);
            paths.push(("the change log", dir.join(JOURNAL_FILE)));
            paths.push(("the run directory", dir));
        }
        paths
            .iter()
            .filter_map(|(what, path)| {
                let mode = fs::metadata(path).ok()?.mode();
                writable_by_others(what, path, mode, self.private)
            })
            .collect()
    }

    /// One line on what `open_to_others` found, why it matters, and the command that fixes it.
    pub fn open_to_others_summary(&self, found: &[String]) -> Option<String> {
        let (first, rest) = found.split_first()?;
        let more = match rest.len() {
            0 => String::new(),
            n => format!(" (and {n} more)"),
        };
        let bits = if self.private { "go-w" } else { "o-w" };
        Some(format!(
            "{first}{more}: whoever can write there can edit the change logs that backout \
             restores from, with hashes recomputed, or add runs of their own; make it private \
             with `chmod -R {bits} {}`, or choose another state directory with --state-dir",
            shell_word(&self.root)
        ))
    }

    /// Creates the directory if needed (0700) and takes the exclusive lock; fails at once if
    /// another run holds it, or if others can write the state directory.
    pub fn lock(&self) -> Result<StateLock> {
        self.available()
            .map_err(|e| anyhow!("{e}; nothing was changed"))?;
        create_state_dir(&self.root)?;
        if let Some(summary) = self.open_to_others_summary(&self.open_to_others(None)) {
            bail!(
                "azbook refuses this state directory: {summary}. Nothing was changed (`azbook \
                 runs` and `azbook log` still read it, with a warning)"
            );
        }
        let modes = Modes::of(&self.root).map_err(|e| {
            anyhow!(
                "{}; nothing was changed",
                fs_failure("cannot read the mode of", &self.root, &e, &self.root)
            )
        })?;
        let path = self.root.join(LOCK_FILE);
        let new = fs::symlink_metadata(&path).is_err();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(modes.file)
            .open(&path)
            .and_then(|file| {
                if new {
                    exact_mode(&file, modes.file)?;
                }
                Ok(file)
            })
            .map_err(|e| {
                anyhow!(
                    "{}; nothing was changed",
                    fs_failure("cannot open the lock file", &path, &e, &self.root)
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(held(&self.root, &path)),
            Err(TryLockError::Error(e)) => bail!(
                "cannot lock {}: {e}; the file system holding the state directory may not support \
                 file locks: choose another state directory with --state-dir (or AZBOOK_STATE_DIR)",
                path.display()
            ),
        }
        let lock = StateLock {
            file,
            root: self.root.clone(),
            path,
            modes,
        };
        // Also the first write of the run: a full disk or a read-only mount stops it here.
        lock.record_holder(None).map_err(|e| {
            anyhow!(
                "{}; nothing was changed",
                fs_failure("cannot write the lock file", &lock.path, &e, &self.root)
            )
        })?;
        Ok(lock)
    }
}

/// The exclusive lock on a state directory; released on drop (and by the kernel, whenever the
/// process ends).
pub struct StateLock {
    file: File,
    root: PathBuf,
    path: PathBuf,
    /// What everything created in the state directory is made.
    modes: Modes,
}

/// The modes of what azbook creates in a state directory: 0700 directories and 0600 files,
/// plus what the state directory grants its group (a team's shared directory, say 2770, gets
/// 0770 and 0660, so that every member can lock it and read every run). Never anything for
/// others. The umask is not applied: the state directory's own mode says who may share it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Modes {
    pub dir: u32,
    pub file: u32,
}

impl Modes {
    /// The modes a directory of `root_mode` gives what is created in it.
    fn from_root_mode(root_mode: u32) -> Modes {
        Modes {
            dir: 0o700 | (root_mode & 0o070),
            file: 0o600 | (root_mode & 0o060),
        }
    }

    fn of(root: &Path) -> io::Result<Modes> {
        Ok(Modes::from_root_mode(fs::metadata(root)?.mode()))
    }
}

/// Sets the permission bits of something just created to exactly `mode`, whatever the umask
/// took away, keeping the set-group-id bit a shared directory passes on.
fn exact_mode(file: &File, mode: u32) -> io::Result<()> {
    let current = file.metadata()?.mode();
    if current & 0o777 != mode {
        file.set_permissions(Permissions::from_mode((current & 0o7000) | mode))?;
    }
    Ok(())
}

/// `fs::create_dir`, made exactly `mode`.
fn make_dir(path: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new().mode(mode).create(path)?;
    exact_mode(&File::open(path)?, mode)
}

/// "`what` `path` is world-writable (mode 0777)" when others can write it: anyone, or, when
/// `private`, the group.
fn writable_by_others(what: &str, path: &Path, mode: u32, private: bool) -> Option<String> {
    let who = if mode & 0o002 != 0 {
        "world-writable"
    } else if private && mode & 0o020 != 0 {
        "group-writable"
    } else {
        return None;
    };
    Some(format!(
        "{what} {} is {who} (mode {:04o})",
        path.display(),
        mode & 0o7777
    ))
}

/// What the lock file holds, for the message another run shows when the lock is taken.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Holder {
    pid: u32,
    since: String,
    run_id: Option<String>,
}

impl StateLock {
    /// The lock's file descriptor, for the az processes a run starts to inherit: the lock then
    /// holds until the last of them ends, so that a backout cannot start while an az left
    /// behind by a killed run may still change a resource.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.file)
    }

    /// Creates a run: its directory, the playbook copies, and the `run-start` record (fsynced). Errors here mean
    /// nothing was changed yet.
    ///
    /// `playbook_sources` holds `(id, source text)` for exactly the playbooks `start` names.
    /// A run that cannot be created completely is removed again, so that `azbook runs` does
    /// not list a run that never started.
    pub fn create_run(
        &self,
        mut start: RunStart,
        playbook_sources: &[(String, String)],
    ) -> Result<Journal> {
        let copies = hash_playbooks(&mut start.playbooks, playbook_sources)?;
        let runs = self.root.join(RUNS_DIR);
        let unchanged = |action: &str, path: &Path, e: io::Error| {
            anyhow!(
                "{}; nothing was changed",
                fs_failure(action, path, &e, &self.root)
            )
        };
        // The journal keeps its own handle on the lock, so the lock outlives it.
        let lock = self
            .file
            .try_clone()
            .map_err(|e| unchanged("cannot share the lock file", &self.path, e))?;
        let modes = self.modes;
        create_dir_durable(&runs, modes.dir).map_err(|e| unchanged("cannot create", &runs, e))?;
        let (run_id, dir) = new_run_dir(&runs, start.kind, modes.dir)
            .map_err(|e| unchanged("cannot create a run directory in", &runs, e))?;
        start.run_id = run_id.clone();

        let created = (|| {
            let playbooks = dir.join(PLAYBOOKS_DIR);
            make_dir(&playbooks, modes.dir)
                .map_err(|e| unchanged("cannot create", &playbooks, e))?;
            for (id, source) in &copies {
                let copy = playbooks.join(format!("{id}.toml"));
                // The directory is not open to others, so the moment before the mode is set
                // shows the copy to no one who could not read it anyway.
                write_atomic(&copy, source.as_bytes())
                    .and_then(|()| exact_mode(&File::open(&copy)?, modes.file))
                    .map_err(|e| unchanged("cannot write the playbook copy", &copy, e))?;
            }
            let journal_path = dir.join(JOURNAL_FILE);
            let journal = Journal::create(&dir, &run_id, lock, start, modes.file)
                .map_err(|e| unchanged("cannot write the change log", &journal_path, e))?;
            sync_dir(&dir).map_err(|e| unchanged("cannot sync", &dir, e))?;
            Ok(journal)
        })();
        match created {
            Ok(journal) => {
                // Only for the message another run shows; the run does not depend on it.
                let _ = self.record_holder(Some(&run_id));
                Ok(journal)
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                let _ = sync_dir(&runs);
                Err(e)
            }
        }
    }

    fn record_holder(&self, run_id: Option<&str>) -> io::Result<()> {
        let holder = Holder {
            pid: std::process::id(),
            since: now_rfc3339(),
            run_id: run_id.map(str::to_string),
        };
        let text = serde_json::to_string(&holder).map_err(io::Error::other)? + "\n";
        self.file.set_len(0)?;
        self.file.write_all_at(text.as_bytes(), 0)?;
        self.file.sync_data()
    }
}

impl Drop for StateLock {
    /// The holder's record stops naming its run as the lock goes, so that `azbook runs` never
    /// takes a run whose azbook has ended for one still running. (While the lock is held,
    /// nobody else writes the file.)
    fn drop(&mut self) {
        let _ = self.record_holder(None);
    }
}

impl StateDir {
    /// The run that a live azbook is writing now, as the lock file names it: the holder's
    /// process must still exist (a crashed one leaves its record behind).
    pub(super) fn running_run(&self) -> Option<String> {
        let text = fs::read_to_string(self.root.join(LOCK_FILE)).ok()?;
        let holder: Holder = serde_json::from_str(text.trim()).ok()?;
        let pid = libc::pid_t::try_from(holder.pid).ok()?;
        // Signal 0 checks that the process exists; EPERM means it exists as another user's.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        alive.then_some(holder.run_id).flatten()
    }
}

/// The message for a lock held by another process, naming it as well as the lock file says.
fn held(root: &Path, lock_path: &Path) -> anyhow::Error {
    let holder = fs::read_to_string(lock_path)
        .ok()
        .and_then(|text| serde_json::from_str::<Holder>(text.trim()).ok());
    let who = match &holder {
        Some(Holder {
            pid,
            since,
            run_id: Some(run),
        }) => format!("run {run}, process {pid}, since {since}"),
        Some(Holder { pid, since, .. }) => format!("process {pid}, since {since}"),
        None => "a process that has not yet said which".to_string(),
    };
    // SAFETY: kill with signal 0 only asks whether the process exists.
    let holder_alive = holder
        .as_ref()
        .is_some_and(|h| unsafe { libc::kill(h.pid as libc::pid_t, 0) } == 0);
    let hint = match &holder {
        Some(h) if !holder_alive => format!(
            "process {} has ended, but az commands it started are still running and may still \
             change resources (the lock is shared with them for exactly this reason): wait for \
             them to end, then run this again",
            h.pid
        ),
        Some(h) => format!(
            "wait for it to finish, then run this again; if no azbook seems to be running, look \
             for a stopped or hung process {}",
            h.pid
        ),
        None => "wait for it to finish, then run this again".to_string(),
    };
    anyhow!(
        "the state directory {} is locked by another azbook apply or backout ({who}): {hint}. \
         Nothing was changed. The lock ({}) is released automatically when the last process \
         holding it ends, even if it crashes or is killed, so there is never a stale lock to delete.",
        root.display(),
        lock_path.display(),
    )
}

fn create_state_dir(root: &Path) -> Result<()> {
    let fail = |e: io::Error| {
        anyhow!(
            "{}; nothing was changed",
            fs_failure("cannot create the state directory", root, &e, root)
        )
    };
    match fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => bail!(
            "the state directory {} is a regular file, not a directory: choose another state \
             directory with --state-dir (or AZBOOK_STATE_DIR), or move that file; nothing was changed",
            root.display()
        ),
        // The directories missing above it are made 0700 too, as the XDG base directory
        // specification asks of those under XDG_STATE_HOME.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dir_durable(root, 0o700).map_err(fail)
        }
        Err(e) => Err(fail(e)),
    }
}

/// `create_dir_all` making each new directory exactly `mode`, with its entry fsynced in its
/// parent, so that what was created survives a power cut.
fn create_dir_durable(path: &Path, mode: u32) -> io::Result<()> {
    match make_dir(path, mode) {
        Ok(()) => sync_dir(parent_dir(path)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match path.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(parent) => {
                    create_dir_durable(parent, mode)?;
                    create_dir_durable(path, mode)
                }
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Fills each playbook's sha256 from its source; the copies to write, as (id, source).
fn hash_playbooks<'s>(
    playbooks: &mut [PlaybookRef],
    sources: &'s [(String, String)],
) -> Result<Vec<(&'s str, &'s str)>> {
    let mut seen = BTreeSet::new();
    for (id, _) in sources {
        if !is_safe_name(id) {
            bail!(
                "playbook id `{id}` cannot name its copy in the run directory; nothing was changed"
            );
        }
        if !seen.insert(id.as_str()) {
            bail!("playbook `{id}` was given twice; nothing was changed");
        }
    }
    let named: BTreeSet<&str> = playbooks.iter().map(|p| p.id.as_str()).collect();
    if named.len() != playbooks.len() {
        bail!("run-start names a playbook twice; nothing was changed");
    }
    if let Some(extra) = seen.difference(&named).next() {
        bail!(
            "the source of playbook `{extra}` was given, but run-start does not name it; nothing was changed"
        );
    }
    for playbook in playbooks.iter_mut() {
        let Some((_, source)) = sources.iter().find(|(id, _)| *id == playbook.id) else {
            bail!(
                "no source was given for playbook `{}`: the run must keep a copy of every \
                 playbook it uses; nothing was changed",
                playbook.id
            );
        };
        playbook.sha256 = sha256_hex(source.as_bytes());
    }
    Ok(sources
        .iter()
        .map(|(id, source)| (id.as_str(), source.as_str()))
        .collect())
}

/// The run's timestamp and kind, when `id` is a run id (`YYYYMMDDTHHMMSSZ-<kind>-<4 hex>`).
pub(super) fn parse_run_id(id: &str) -> Option<(&str, RunKind)> {
    if !id.is_ascii() || id.len() < 16 {
        return None;
    }
    let (stamp, rest) = id.split_at(16);
    let stamp_ok = stamp.bytes().enumerate().all(|(i, c)| match i {
        8 => c == b'T',
        15 => c == b'Z',
        _ => c.is_ascii_digit(),
    });
    let (kind, hex) = rest.strip_prefix('-')?.rsplit_once('-')?;
    let hex_ok = hex.len() == 4 && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    (stamp_ok && hex_ok).then_some(())?;
    Some((stamp, RunKind::parse(kind)?))
}

/// `20261129T080102Z` as an instant.
fn stamp_time(stamp: &str) -> Option<SystemTime> {
    let b = stamp.get(..15)?;
    parse_rfc3339(&format!(
        "{}-{}-{}T{}:{}:{}Z",
        &b[0..4],
        &b[4..6],
        &b[6..8],
        &b[9..11],
        &b[11..13],
        &b[13..15]
    ))
}

/// The timestamp a new run takes: now, or one second after the newest run when that is not
/// earlier (two runs in one second, or a clock set back). Run ids then sort in the order the
/// runs were made, which `latest` and backout rely on; the true start time is in `run-start`.
fn next_stamp(now: SystemTime, newest: Option<&str>) -> String {
    let candidate = compact_utc(now);
    match newest {
        Some(newest) if candidate.as_str() <= newest => stamp_time(newest)
            .map(|t| compact_utc(t + Duration::from_secs(1)))
            .unwrap_or(candidate),
        _ => candidate,
    }
}

/// A few bits that differ between runs: ids in one second must not collide. Not secret.
fn random_hex4() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("{:04x}", hasher.finish() as u16)
}

/// Creates `<runs>/<new id>/`, durably; the caller holds the lock, so only a leftover directory
/// can collide.
fn new_run_dir(runs: &Path, kind: RunKind, mode: u32) -> io::Result<(String, PathBuf)> {
    let mut newest: Option<String> = None;
    for entry in fs::read_dir(runs)? {
        let name = entry?.file_name();
        if let Some((stamp, _)) = name.to_str().and_then(parse_run_id)
            && newest.as_deref().is_none_or(|n| stamp > n)
        {
            newest = Some(stamp.to_string());
        }
    }
    let stamp = next_stamp(SystemTime::now(), newest.as_deref());
    for _ in 0..64 {
        let id = format!("{stamp}-{}-{}", kind.as_str(), random_hex4());
        let dir = runs.join(&id);
        match make_dir(&dir, mode) {
            Ok(()) => {
                sync_dir(runs)?;
                return Ok((id, dir));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free run id in this second",
    ))
}

#[cfg(test)]
mod tests {
    use super::super::RunLog;
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn run_ids_have_the_documented_form_and_sort_by_time() {
        let t = parse_rfc3339("2026-11-29T08:01:02Z").unwrap();
        assert_eq!(next_stamp(t, None), "20261129T080102Z");
        assert_eq!(next_stamp(t, Some("20261129T080101Z")), "20261129T080102Z");
        assert_eq!(
            next_stamp(t, Some("20261129T080102Z")),
            "20261129T080103Z",
            "a second run in the same second takes the next one"
        );
        assert_eq!(
            next_stamp(t, Some("20261231T235959Z")),
            "20270101T000000Z",
            "a clock set back still makes a newer id"
        );
        assert_eq!(
            parse_run_id("20261129T080102Z-apply-3f2a"),
            Some(("20261129T080102Z", RunKind::Apply))
        );
        assert_eq!(
            parse_run_id("20261129T080102Z-backout-00ff"),
            Some(("20261129T080102Z", RunKind::Backout))
        );
        for bad in [
            "20261129T080102Z-apply-3F2A",
            "20261129T080102Z-apply-3f2",
            "20261129T080102Z-plan-3f2a",
            "20261129-080102Z-apply-3f2a",
            "20261129T080102Z_apply_3f2a",
            "../20261129T080102Z-apply-3f2a",
            "",
        ] {
            assert_eq!(parse_run_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn runs_created_in_one_second_still_sort_in_creation_order() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let lock = state.lock().unwrap();
        let mut ids = Vec::new();
        for kind in [RunKind::Backout, RunKind::Apply, RunKind::Backout] {
            let journal = lock.create_run(start_of(kind, None), &sources()).unwrap();
            assert!(parse_run_id(journal.run_id()).is_some_and(|(_, k)| k == kind));
            ids.push(journal.run_id().to_string());
        }
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids);
    }

    #[test]
    fn create_run_writes_a_durable_start_and_the_playbook_copies() {
        let dir = tempfile::tempdir().unwrap();
        // Two levels that do not exist yet: both are created.
        let state = StateDir::new(dir.path().join("a/state"));
        let lock = state.lock().unwrap();
        let journal = lock
            .create_run(start_of(RunKind::Apply, None), &sources())
            .unwrap();
        let run_dir = state.root().join("runs").join(journal.run_id());
        assert_eq!(journal.dir(), run_dir);
        assert_eq!(
            fs::read_to_string(run_dir.join("playbooks/storage-account-mmk.toml")).unwrap(),
            PLAYBOOK_SOURCE
        );
        let log = RunLog::read(&run_dir, journal.run_id()).unwrap();
        let start = log.start().unwrap();
        assert_eq!(start.run_id, journal.run_id());
        assert_eq!(
            start.playbooks[0].sha256,
            sha256_hex(PLAYBOOK_SOURCE.as_bytes())
        );
        assert_eq!(log.entries.len(), 1);
        assert_eq!(log.entries[0].seq, 0);
        assert!(log.warnings.is_empty() && log.tampered.is_none());
        // The lock file names the holder and its run, for the message another run shows.
        let holder: Holder =
            serde_json::from_str(&fs::read_to_string(state.root().join("lock")).unwrap()).unwrap();
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.run_id.as_deref(), Some(journal.run_id()));
    }

    #[test]
    fn a_second_lock_fails_at_once_naming_the_state_dir_and_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        let first = StateDir::new(&root);
        let lock = first.lock().unwrap();
        let journal = lock
            .create_run(start_of(RunKind::Apply, None), &sources())
            .unwrap();
        // flock belongs to an open file: a second StateDir opens the file again.
        let second = StateDir::new(&root);
        let message = second.lock().err().unwrap().to_string();
        assert!(message.contains(&root.display().to_string()), "{message}");
        assert!(message.contains(journal.run_id()), "{message}");
        assert!(
            message.contains(&format!("process {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("wait for it"), "{message}");
        assert!(message.contains("released automatically"), "{message}");
        assert!(
            message.contains("never a stale lock to delete"),
            "{message}"
        );

        // The journal shares the lock: dropping the StateLock alone does not release it.
        drop(lock);
        assert!(second.lock().is_err());
        drop(journal);
        let again = second.lock().unwrap();
        drop(again);
    }

    #[test]
    fn a_state_dir_below_a_regular_file_fails_at_lock() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, "x").unwrap();
        let state = StateDir::new(file.join("state"));
        let message = state.lock().err().unwrap().to_string();
        assert!(
            message.contains(&format!(
                "{} is a regular file, not a directory",
                file.display()
            )),
            "{message}"
        );
        assert!(message.contains("--state-dir"), "{message}");
        assert!(message.contains("nothing was changed"), "{message}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "x");

        let state = StateDir::new(&file);
        let message = state.lock().err().unwrap().to_string();
        assert!(
            message.contains("is a regular file, not a directory"),
            "{message}"
        );
    }

    #[test]
    fn a_runs_path_that_is_a_file_fails_at_create_run() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let lock = state.lock().unwrap();
        fs::write(dir.path().join("runs"), "x").unwrap();
        let message = lock
            .create_run(start_of(RunKind::Apply, None), &sources())
            .err()
            .unwrap()
            .to_string();
        assert!(
            message.contains(&format!(
                "{} is a regular file",
                dir.path().join("runs").display()
            )),
            "{message}"
        );
        assert!(message.contains("--state-dir"), "{message}");
    }

    #[test]
    fn playbook_sources_must_match_run_start() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let lock = state.lock().unwrap();
        let start = || start_of(RunKind::Apply, None);
        let cases: Vec<(Vec<(String, String)>, &str)> = vec![
            (
                vec![],
                "no source was given for playbook `storage-account-mmk`",
            ),
            (
                vec![
                    (PLAYBOOK_ID.into(), "a".into()),
                    (PLAYBOOK_ID.into(), "b".into()),
                ],
                "given twice",
            ),
            (
                vec![
                    (PLAYBOOK_ID.into(), "a".into()),
                    ("other".into(), "b".into()),
                ],
                "run-start does not name it",
            ),
            (vec![("../x".into(), "a".into())], "cannot name its copy"),
        ];
        for (sources, expected) in cases {
            let message = lock
                .create_run(start(), &sources)
                .err()
                .unwrap()
                .to_string();
            assert!(message.contains(expected), "{message}");
        }
        // Nothing was left behind by the refused runs.
        assert!(
            fs::read_dir(dir.path().join("runs"))
                .map(|d| d.count() == 0)
                .unwrap_or(true)
        );
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_state_directory_is_named_else_legacy_else_per_user() {
        let named = || Some(PathBuf::from("/team/azbook"));
        let xdg = || Some(PathBuf::from("/x/state"));
        let home = || Some(PathBuf::from("/home/alice"));
        let choose = StateLocation::choose;
        assert_eq!(
            choose(named(), true, xdg(), home()),
            StateLocation::Named("/team/azbook".into()),
            "a named directory wins, even over an .azbook here"
        );
        assert_eq!(
            choose(Some(PathBuf::new()), false, xdg(), home()),
            StateLocation::PerUser("/x/state/azbook".into()),
            "an empty name names nothing"
        );
        assert_eq!(
            choose(None, true, xdg(), home()),
            StateLocation::Legacy {
                dir: ".azbook".into(),
                per_user: Some("/x/state/azbook".into())
            }
        );
        assert_eq!(
            choose(None, false, xdg(), home()),
            StateLocation::PerUser("/x/state/azbook".into())
        );
        assert_eq!(
            choose(None, false, None, home()),
            StateLocation::PerUser("/home/alice/.local/state/azbook".into())
        );
        assert_eq!(
            choose(None, false, Some("relative".into()), home()),
            StateLocation::PerUser("/home/alice/.local/state/azbook".into()),
            "a relative XDG_STATE_HOME is ignored, as the specification says"
        );
        assert_eq!(
            choose(None, false, Some(PathBuf::new()), Some("rel".into())),
            StateLocation::Unknown
        );
        assert_eq!(choose(None, false, None, None), StateLocation::Unknown);
        assert_eq!(
            choose(None, true, None, None),
            StateLocation::Legacy {
                dir: ".azbook".into(),
                per_user: None
            }
        );
    }

    #[test]
    fn only_the_legacy_directory_has_a_notice_saying_how_to_move_it() {
        let legacy = StateLocation::choose(None, true, None, Some("/home/a b".into()));
        let notice = legacy.notice().unwrap();
        assert!(!notice.contains('\n'), "one line: {notice}");
        assert!(
            notice.contains(
                "mkdir -p '/home/a b/.local/state' && mv .azbook '/home/a b/.local/state/azbook'"
            ),
            "{notice}"
        );
        assert!(notice.contains("--state-dir .azbook"), "{notice}");
        let nowhere = StateLocation::choose(None, true, None, None)
            .notice()
            .unwrap();
        assert!(nowhere.contains("--state-dir .azbook"), "{nowhere}");
        assert!(!nowhere.contains("mv "), "{nowhere}");
        for quiet in [
            StateLocation::Named("/team".into()),
            StateLocation::PerUser("/home/a/.local/state/azbook".into()),
            StateLocation::Unknown,
        ] {
            assert_eq!(quiet.notice(), None);
        }
    }

    #[test]
    fn without_a_state_directory_the_commands_that_need_one_say_what_to_do() {
        let state = StateDir::new(StateLocation::Unknown);
        for message in [
            state.available().unwrap_err().to_string(),
            state.lock().err().unwrap().to_string(),
        ] {
            for needed in ["XDG_STATE_HOME", "HOME", "--state-dir", "AZBOOK_STATE_DIR"] {
                assert!(message.contains(needed), "{message}");
            }
        }
        assert!(state.open_to_others(None).is_empty());
        assert!(StateDir::new(Path::new("/x")).available().is_ok());
    }

    #[test]
    fn what_azbook_creates_is_private_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        // Two levels that do not exist yet, as ~/.local/state/azbook on a new account.
        let parent = dir.path().join("state");
        let state = StateDir::new(StateLocation::PerUser(parent.join("azbook")));
        let lock = state.lock().unwrap();
        let journal = lock
            .create_run(start_of(RunKind::Apply, None), &sources())
            .unwrap();
        let run = journal.dir().to_path_buf();
        for private_dir in [
            parent.clone(),
            state.root().to_path_buf(),
            state.runs_dir(),
            run.clone(),
            run.join(PLAYBOOKS_DIR),
        ] {
            assert_eq!(mode_of(&private_dir), 0o700, "{}", private_dir.display());
        }
        for private_file in [
            state.root().join(LOCK_FILE),
            run.join(JOURNAL_FILE),
            run.join(PLAYBOOKS_DIR).join(format!("{PLAYBOOK_ID}.toml")),
        ] {
            assert_eq!(mode_of(&private_file), 0o600, "{}", private_file.display());
        }
    }

    #[test]
    fn a_shared_directory_passes_its_group_on_and_nothing_to_others() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("team");
        fs::create_dir(&root).unwrap();
        chmod(&root, 0o2775);
        let state = StateDir::new(&root);
        let lock = state.lock().unwrap();
        let journal = lock
            .create_run(start_of(RunKind::Apply, None), &sources())
            .unwrap();
        assert_eq!(mode_of(&state.runs_dir()) & 0o777, 0o770);
        assert_eq!(mode_of(journal.dir()) & 0o777, 0o770);
        assert_eq!(
            mode_of(journal.dir()) & 0o2000,
            0o2000,
            "the set-group-id bit stays, so runs keep the team's group"
        );
        assert_eq!(mode_of(&journal.dir().join(JOURNAL_FILE)), 0o660);
        assert_eq!(mode_of(&root.join(LOCK_FILE)), 0o660);
        assert_eq!(
            Modes::from_root_mode(0o755),
            Modes {
                dir: 0o750,
                file: 0o640
            }
        );
    }

    #[test]
    fn a_state_directory_others_can_write_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        fs::create_dir(&root).unwrap();
        chmod(&root, 0o777);
        let state = StateDir::new(&root);
        let message = state.lock().err().unwrap().to_string();
        assert!(
            message.contains(&format!(
                "the state directory {} is world-writable (mode 0777)",
                root.display()
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!("chmod -R o-w {}", root.display())),
            "{message}"
        );
        assert!(message.contains("Nothing was changed"), "{message}");
        assert!(!root.join(LOCK_FILE).exists());
        // A reading command sees the same, as a warning.
        let found = state.open_to_others(None);
        assert_eq!(found.len(), 1, "{found:?}");

        // A group that can write a team's directory is its team; the per-user one is refused.
        chmod(&root, 0o770);
        drop(state.lock().unwrap());
        let private = StateDir::new(StateLocation::PerUser(root.clone()));
        let message = private.lock().err().unwrap().to_string();
        assert!(
            message.contains("is group-writable (mode 0770)"),
            "{message}"
        );
        assert!(message.contains("chmod -R go-w"), "{message}");
    }

    #[test]
    fn a_change_log_others_can_write_is_refused_too() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let id = finished_apply(&state);
        let journal = dir.path().join(RUNS_DIR).join(&id).join(JOURNAL_FILE);
        chmod(&journal, 0o666);
        let message = state.lock().err().unwrap().to_string();
        assert!(
            message.contains(&format!(
                "the change log {} is world-writable",
                journal.display()
            )),
            "{message}"
        );
        assert_eq!(state.open_to_others(Some(&id)).len(), 1);
        assert!(
            state.open_to_others(Some("../..")).len() <= 2,
            "no path escapes"
        );
        chmod(&journal, 0o600);
        let runs = dir.path().join(RUNS_DIR);
        chmod(&runs, 0o707);
        let found = state.open_to_others(Some(&id));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("the runs directory"), "{found:?}");
        let summary = state.open_to_others_summary(&found).unwrap();
        assert!(summary.contains("backout restores from"), "{summary}");
        chmod(&runs, 0o700);
        drop(state.lock().unwrap());
    }

    #[test]
    fn a_run_that_cannot_be_created_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let lock = state.lock().unwrap();
        // A valid id whose copy name is longer than a file name may be (ENAMETOOLONG): the
        // run directory exists by then, and must not stay behind as a run that never started.
        let long_id = "p".repeat(300);
        let mut start = start_of(RunKind::Apply, None);
        start.playbooks[0].id = long_id.clone();
        let message = lock
            .create_run(start, &[(long_id, "x".into())])
            .err()
            .unwrap()
            .to_string();
        assert!(
            message.contains("cannot write the playbook copy"),
            "{message}"
        );
        assert!(message.contains("nothing was changed"), "{message}");
        assert_eq!(fs::read_dir(dir.path().join("runs")).unwrap().count(), 0);
        assert!(state.runs().unwrap().is_empty());
    }
}
