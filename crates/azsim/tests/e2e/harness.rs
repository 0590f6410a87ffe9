//! What every end-to-end test needs: a temp dir of its own holding the world database, its
//! invocation log, `az` (a symlink to azsim) and the home directories azsim runs with, so that
//! tests never share state with each other or with the user running them.

use assert_cmd::Command;
use serde_json::Value;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The azsim binary Cargo built for these tests.
pub const AZSIM: &str = env!("CARGO_BIN_EXE_azsim");

/// One test's world, in a temp dir removed when the test ends.
pub struct Sim {
    dir: tempfile::TempDir,
}

/// A command line written as one string, split on whitespace.
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Sim {
    /// A world loaded from `world` (the JSON form of `azsim load`).
    pub fn new(world: &Value) -> Sim {
        let sim = Sim::empty();
        sim.load(world);
        sim
    }

    /// A world written by `azsim seed ARGS`.
    pub fn seeded(args: &str) -> Sim {
        let sim = Sim::empty();
        sim.azsim(&format!("seed {args}")).assert().success();
        sim
    }

    /// No world yet: only `az` and the home directories.
    pub fn empty() -> Sim {
        let dir = tempfile::tempdir().expect("temp dir");
        std::os::unix::fs::symlink(AZSIM, dir.path().join("az")).expect("symlink az");
        for home in ["home", "state", "azure"] {
            std::fs::create_dir(dir.path().join(home)).expect("home dir");
        }
        Sim { dir }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn world(&self) -> PathBuf {
        self.dir().join("world.db")
    }

    /// The invocation log at its default place, `$AZSIM_WORLD.calls.jsonl`.
    pub fn log(&self) -> PathBuf {
        self.dir().join("world.db.calls.jsonl")
    }

    /// `program` set up to run against this world: `AZSIM_WORLD` set, `AZSIM_LOG` unset (the log
    /// at its default place), and `HOME`, `XDG_STATE_HOME` and `AZURE_CONFIG_DIR` inside the temp
    /// dir.
    pub fn command(&self, program: impl AsRef<OsStr>) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.env("AZSIM_WORLD", self.world())
            .env_remove("AZSIM_LOG")
            .env("HOME", self.dir().join("home"))
            .env("XDG_STATE_HOME", self.dir().join("state"))
            .env("AZURE_CONFIG_DIR", self.dir().join("azure"));
        cmd
    }

    /// The management face: `azsim` with the words of `line`.
    pub fn azsim(&self, line: &str) -> Command {
        let mut cmd = Command::from_std(self.command(AZSIM));
        cmd.args(words(line));
        cmd
    }

    /// The CLI face: azsim run through the symlink named `az`.
    pub fn az_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::from_std(self.command(self.dir().join("az")));
        cmd.args(args);
        cmd
    }

    pub fn az_args(&self, args: &[&str]) -> Output {
        self.az_cmd(args).output().expect("run az")
    }

    pub fn az(&self, line: &str) -> Output {
        self.az_args(&words(line))
    }

    /// Runs az, requires exit 0 and returns the parsed stdout.
    pub fn json_args(&self, args: &[&str]) -> Value {
        let out = self.az_args(args);
        assert!(
            out.status.success(),
            "az {args:?} failed: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("az {args:?} printed no JSON ({e}): {}", text(&out.stdout)))
    }

    pub fn json(&self, line: &str) -> Value {
        self.json_args(&words(line))
    }

    /// Replaces the world with `world` (`azsim load -`).
    pub fn load(&self, world: &Value) {
        self.azsim("load -")
            .write_stdin(world.to_string())
            .assert()
            .success();
    }

    /// The whole world as JSON (`azsim dump`).
    pub fn dump(&self) -> Value {
        let out = self.azsim("dump").output().expect("dump");
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).expect("dump is JSON")
    }

    /// The invocation log as `azsim calls ARGS` prints it.
    pub fn calls(&self, args: &str) -> String {
        let out = self
            .azsim(&format!("calls {args}"))
            .output()
            .expect("calls");
        assert!(out.status.success(), "{}", text(&out.stderr));
        String::from_utf8(out.stdout).expect("the log is UTF-8")
    }

    pub fn settings(&self, pairs: &str) {
        self.azsim(&format!("settings {pairs}")).assert().success();
    }
}
