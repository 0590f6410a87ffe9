//! One az process, from start to exit status, on the calling worker thread.
//!
//! duct starts the process (argv, never a shell) with its stdout and stderr on pipes of our
//! own. Both are read here with poll(2) rather than by duct's capture threads: with sixteen
//! workers and seventy az calls a second, two thread starts per call and the wake-ups of every
//! waiter on every child's exit were most of azbook's own CPU (BENCHMARKS.md, *Profile*).
//! Reading stdout through [`Output`] also lets the caller parse JSON while az is still printing
//! it, so that a list of 10,000 storage accounts never exists whole as text. The deadline covers
//! everything: a process that prints nothing, one that never closes its pipes, one that closes
//! them and does not exit.

use std::io::{self, PipeReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Instant;

/// What az printed on stderr is kept up to this size: enough for any error az prints; a
/// runaway process cannot grow azbook's memory through it.
const STDERR_LIMIT: usize = 1 << 20;
/// How much of stdout's start is kept for a "not JSON" message.
const HEAD_LIMIT: usize = 120;

/// A started az process. Dropping it without [`Child::finish`] kills its process group.
pub struct Child {
    handle: Option<duct::Handle>,
    output: Output,
}

/// The process's stdout as a reader; stderr is drained into a buffer whenever it has data, so a
/// process that writes much to stderr never blocks while the caller waits for stdout.
pub struct Output {
    stdout: Option<PipeReader>,
    stderr: Option<PipeReader>,
    stderr_text: Vec<u8>,
    head: Vec<u8>,
    deadline: Instant,
}

pub struct Exit {
    pub status: ExitStatus,
    pub stderr: String,
}

pub enum Failure {
    /// The deadline passed: the process group has been killed and reaped.
    Timeout,
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::TimedOut {
            Failure::Timeout
        } else {
            Failure::Io(e)
        }
    }
}

impl Child {
    /// Starts `program args...` in a process group of its own, stdin closed.
    pub fn start(program: &Path, args: &[String], deadline: Instant) -> io::Result<Child> {
        let (stdout, stdout_w) = io::pipe()?;
        let (stderr, stderr_w) = io::pipe()?;
        let expression = duct::cmd(program.as_os_str(), args)
            .stdin_null()
            .stdout_file(stdout_w)
            .stderr_file(stderr_w)
            .unchecked()
            .before_spawn(|cmd| {
                // A group of its own, so that a timeout can kill az and everything it started.
                cmd.process_group(0);
                Ok(())
            });
        let handle = expression.start()?;
        // The expression holds our copies of the write ends: without dropping it, the pipes
        // would never reach end-of-file.
        drop(expression);
        Ok(Child {
            handle: Some(handle),
            output: Output {
                stdout: Some(stdout),
                stderr: Some(stderr),
                stderr_text: Vec::new(),
                head: Vec::new(),
                deadline,
            },
        })
    }

    /// The process id, which is also its process group's id.
    pub fn pid(&self) -> Option<u32> {
        self.handle.as_ref()?.pids().first().copied()
    }

    pub fn stdout(&mut self) -> &mut Output {
        &mut self.output
    }

    /// Reads whatever stdout still holds (discarding it) and stderr to their ends, then waits
    /// for the exit status, all before the deadline; past it, kills the process group.
    pub fn finish(mut self) -> Result<Exit, Failure> {
        let result = self.finish_inner();
        if matches!(result, Err(Failure::Timeout)) {
            self.kill();
        }
        result
    }

    fn finish_inner(&mut self) -> Result<Exit, Failure> {
        io::copy(&mut self.output, &mut io::sink())?;
        self.output.drain_stderr()?;
        let handle = self.handle.as_ref().expect("finish runs once");
        let waited = match handle.try_wait()? {
            Some(output) => Some(output.status),
            // Both pipes are closed, so it is exiting or has handed them on: wait, but not
            // past the deadline.
            None => handle
                .wait_deadline(self.output.deadline)?
                .map(|output| output.status),
        };
        let Some(status) = waited else {
            return Err(Failure::Timeout);
        };
        self.handle = None;
        Ok(Exit {
            status,
            stderr: String::from_utf8_lossy(&self.output.stderr_text).into_owned(),
        })
    }

    /// The first bytes the process printed on stdout, for a message about output that is not
    /// JSON.
    pub fn stdout_head(&self) -> &[u8] {
        &self.output.head
    }

    fn kill(&mut self) {
        if let Some(handle) = self.handle.take() {
            for pid in handle.pids() {
                // SAFETY: kill(2) with a negative pid signals the process group made for this
                // child; it touches no memory of ours.
                unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                }
            }
            let _ = handle.wait();
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Output {
    /// Waits until stdout or stderr is readable (or closed); reads stderr when it is. Returns
    /// true when stdout is ready.
    fn wait_readable(&mut self, want_stdout: bool) -> io::Result<bool> {
        loop {
            let fd = |pipe: &Option<PipeReader>| pipe.as_ref().map_or(-1, |p| p.as_raw_fd());
            let mut fds = [
                libc::pollfd {
                    fd: if want_stdout { fd(&self.stdout) } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: fd(&self.stderr),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            if fds.iter().all(|p| p.fd < 0) {
                return Ok(false);
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            // Rounded up, so that a wait never ends a moment before the deadline and spins.
            let millis = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            // SAFETY: `fds` is a live array of two pollfd; poll(2) writes only their revents.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, millis) };
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[1].revents != 0 {
                self.read_stderr()?;
            }
            if fds[0].revents != 0 {
                return Ok(true);
            }
        }
    }

    fn read_stderr(&mut self) -> io::Result<()> {
        let Some(pipe) = self.stderr.as_mut() else {
            return Ok(());
        };
        let mut buf = [0u8; 8192];
        let n = retry_interrupted(|| pipe.read(&mut buf))?;
        if n == 0 {
            self.stderr = None;
        } else {
            let room = STDERR_LIMIT.saturating_sub(self.stderr_text.len());
            self.stderr_text.extend_from_slice(&buf[..n.min(room)]);
        }
        Ok(())
    }

    fn drain_stderr(&mut self) -> io::Result<()> {
        while self.stderr.is_some() {
            self.wait_readable(false)?;
        }
        Ok(())
    }
}

impl Read for Output {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stdout.is_none() || buf.is_empty() {
            return Ok(0);
        }
        self.wait_readable(true)?;
        let pipe = self.stdout.as_mut().expect("stdout is open");
        let n = retry_interrupted(|| pipe.read(buf))?;
        if n == 0 {
            self.stdout = None;
        } else if self.head.len() < HEAD_LIMIT {
            let take = n.min(HEAD_LIMIT - self.head.len());
            self.head.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

fn retry_interrupted(mut read: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match read() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the deadline passed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sh(body: &str, timeout: Duration) -> Child {
        let args = ["-c".to_string(), body.to_string()];
        Child::start(Path::new("/bin/sh"), &args, Instant::now() + timeout).unwrap()
    }

    #[test]
    fn reads_stdout_while_stderr_overflows_its_pipe() {
        // 256 KiB on stderr before any stdout: a reader that only waited for stdout would
        // block az on a full stderr pipe forever.
        let mut child = sh(
            "head -c 262144 /dev/zero | tr '\\0' e >&2; printf '[1,2]'; exit 3",
            Duration::from_secs(10),
        );
        let mut out = String::new();
        child.stdout().read_to_string(&mut out).unwrap();
        assert_eq!(out, "[1,2]");
        let exit = child.finish().ok().unwrap();
        assert_eq!(exit.status.code(), Some(3));
        assert_eq!(exit.stderr.len(), 262_144);
    }

    #[test]
    fn a_process_that_keeps_its_pipes_open_times_out() {
        let mut child = sh("printf x; exec sleep 30", Duration::from_millis(300));
        let mut out = Vec::new();
        let err = child.stdout().read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(child.stdout_head(), b"x");
        assert!(matches!(child.finish(), Err(Failure::Timeout)));
    }

    #[test]
    fn a_process_that_closes_its_pipes_but_lingers_times_out() {
        let started = Instant::now();
        let child = sh("exec >&- 2>&-; sleep 30", Duration::from_millis(300));
        assert!(matches!(child.finish(), Err(Failure::Timeout)));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
