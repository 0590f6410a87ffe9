#!/usr/bin/env python3
"""The crash test (issue 5, item 1): kill `azbook apply` at many points, back out, and prove
that every resource the run touched is back as it was.

For each kill point: a fresh world (world.py: 40 changes over two subscriptions) with azsim's
latency, a fresh state directory, and `azbook apply --yes --all-subscriptions --max-changes 100
--jobs 4` started in a session and process group of its own. When the point is reached the
harness kills with SIGKILL either

  - azbook's process group (`group`), as a CI runner or `kill -9 -PGID` does. The az processes
    azbook started run in process groups of their own (so that azbook's timeout can kill each
    one with its children), so they survive it and may still change a resource after azbook
    is gone; or
  - every process of the session (`all`): a container killed or the power lost, az included.

Then `azbook backout --yes` (never --force) runs at once, and again while it exits 2 because
az processes the killed run left are still running (they hold the state lock: ea0a6ca). When it
has run, and every process the killed run left has ended, azsim's world must equal the original
on every field the control reads or restores (world.essentials). The last four points kill the
first backout too, in one of its az changes (two of them in the restoring `az sql db update` of
a database's own key and the `az sql mi tde-key set` of an instance), and back out again.

Checks beyond the world's equality, each of which fails the point:
  - a backout refused for the lock while no process of the killed run held the lock (stale lock);
  - a backout that ran while a process holding the lock was alive before and after it;
  - the resources that differ from the original once the killed run's processes have all ended
    (before backout changed anything) are exactly the ones backout reports `restored` (when the
    last of them ended while a backout attempt was starting, backout's own report is the
    count, and it must hold every resource already changed when azbook was killed);
  - every resource changed or restored has an intent in the change log;
  - an intent left without outcome whose target reads as before is `unchanged` with a warning;
  - backout exits 0; or 2, changing nothing, when the kill came before the run's first intent
    (no run yet: "there is no apply run"; a run directory without its change log; a run that
    changed nothing, which backout passes over without taking the lock).

Usage: scripts/crash-test.sh [--only REGEX] [--list] [--latency MS] [--jitter MS]
(this file is run by scripts/crash-test.sh after `cargo build --workspace --bins`). Writes
target/crash-test/report.json (under $CARGO_TARGET_DIR when set, where cargo built the
binaries) and keeps every point's world, logs and change log under target/crash-test/points/.
Exit 0 when every point passed and nothing is left unrestored."""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import world as W  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
# Where cargo built the binaries (crash-test.sh builds them), and where this test works.
TARGET = os.path.join(ROOT, os.environ.get("CARGO_TARGET_DIR") or "target")
WORK = os.path.join(TARGET, "crash-test")
LOCK_MSG = "az commands it started are still running"
NO_RUN_MSG = "there is no apply run"
# A run killed before its first intent changed nothing: backout takes no run and no lock (an az
# still running then is a read, such as a precheck, never a change: a change's intent comes first).
NOTHING_CHANGED_MSG = "has changes that are not yet backed out"
UNFINISHED_WARNING = "the run stopped before az answered"

# --- the points ---------------------------------------------------------------------------
# A trigger says when to kill:
#   ("time", fraction)            at that fraction of the calibrated apply's wall time
#   ("journal", kind, n)          once the change log holds n records of kind
#   ("call", command, needle, ms) ms after azsim logged the start of that mutating az call
#   ("outcome", command, needle)  once the change log holds the outcome of that call's intent
# Faults are azsim's (`times` bounds each, so that a backout never meets one). An optional sixth
# element (mode, when) kills the first backout too, 50 ms into its n-th az change (when = n) or
# into its change by that call (when = (command, needle)).

STORAGE = "storage account update"
SCOPE = "storage account encryption-scope update"
SERVER = "sql server tde-key set"
INSTANCE = "sql mi tde-key set"
DATABASE = "sql db tde set"
DBKEY = "sql db tde key revert"
DBKEY_BACK = "sql db update"


def hang(command, needle, seconds):
    return {"command": command, "argvContains": needle, "hangSeconds": seconds, "times": 1}


def slow(command, needle, ms):
    return {"command": command, "argvContains": needle, "latencyMs": ms, "times": 1}


def crash(command, needle):
    return {"command": command, "argvContains": needle, "crashAfterChange": True, "times": 1}


POINTS = [
    # Spread over the calibrated run: planning, the changes, the end.
    ("time-05%", "all", ("time", 0.05), [], "planning: nothing changed yet"),
    ("time-25%", "group", ("time", 0.25), [], "planning: reads left running"),
    ("time-40%", "all", ("time", 0.40), [], ""),
    ("time-48%", "group", ("time", 0.48), [], ""),
    ("time-56%", "all", ("time", 0.56), [], ""),
    ("time-64%", "group", ("time", 0.64), [], ""),
    ("time-72%", "all", ("time", 0.72), [], ""),
    ("time-80%", "group", ("time", 0.80), [], ""),
    ("time-88%", "all", ("time", 0.88), [], ""),
    ("time-96%", "group", ("time", 0.96), [], ""),
    # The change log's own milestones.
    ("after-run-start", "group", ("journal", "run-start", 1), [], "the run exists, no intent yet"),
    ("after-intent-1", "all", ("journal", "intent", 1), [], ""),
    ("after-intent-3", "group", ("journal", "intent", 3), [], ""),
    ("after-intent-10", "group", ("journal", "intent", 10), [], ""),
    ("after-intent-19", "all", ("journal", "intent", 19), [], ""),
    ("after-intent-29", "group", ("journal", "intent", 29), [], ""),
    (f"after-intent-{W.CHANGES}", "all", ("journal", "intent", W.CHANGES), [], "the last intent"),
    ("after-outcome-1", "group", ("journal", "outcome", 1), [], ""),
    ("after-outcome-8", "all", ("journal", "outcome", 8), [], ""),
    ("after-outcome-16", "group", ("journal", "outcome", 16), [], ""),
    ("after-outcome-24", "all", ("journal", "outcome", 24), [], ""),
    ("after-outcome-32", "group", ("journal", "outcome", 32), [], ""),
    (f"after-outcome-{W.CHANGES}", "group", ("journal", "outcome", W.CHANGES), [], "the last outcome"),
    ("after-run-end", "group", ("journal", "run-end", 1), [], "the run is complete"),
    # Between an intent and its az call: az is held before it changes anything, and dies too.
    ("intent-then-hang-storage", "all", ("call", STORAGE, "--name=stcmknull1", 300),
     [hang(STORAGE, "--name=stcmknull1", 30)], "az held before the change"),
    ("intent-then-hang-server", "all", ("call", SERVER, "--server=sql-akv-1", 300),
     [hang(SERVER, "--server=sql-akv-1", 30)], "az held before the change"),
    ("intent-then-hang-database", "all", ("call", DATABASE, "--database=db-akvoff-0", 300),
     [hang(DATABASE, "--database=db-akvoff-0", 30)], "az held before the change"),
    ("intent-then-hang-scope", "all", ("call", SCOPE, "--name=kv-versionless-1", 300),
     [hang(SCOPE, "--name=kv-versionless-1", 30)], "az held before the change"),
    ("intent-then-hang-instance", "all", ("call", INSTANCE, "--managed-instance=sqlmi-akv-1", 300),
     [hang(INSTANCE, "--managed-instance=sqlmi-akv-1", 30)], "az held before the change"),
    # While az runs, within azsim's latency: left running (it lands its change after azbook
    # is gone), or killed with azbook.
    ("az-running-storage", "group", ("call", STORAGE, "--name=stcmkuai0", 50), [],
     "az left running"),
    ("az-running-server", "all", ("call", SERVER, "--server=sql-akv-norotate-0", 50), [],
     "az killed in its latency"),
    ("az-running-database", "group", ("call", DATABASE, "--database=db-off-1", 50), [],
     "az left running"),
    ("az-running-slow-storage", "group", ("call", STORAGE, "--name=ststage1", 100),
     [slow(STORAGE, "--name=ststage1", 1500)], "az left running 1.5 s: the lock holds"),
    ("az-hung-then-lands-server", "group", ("call", SERVER, "--server=sql-akv-0", 100),
     [hang(SERVER, "--server=sql-akv-0", 2)], "az left hanging 2 s, then it changes"),
    ("az-running-scope", "group", ("call", SCOPE, "--name=kv-disabled-0", 50), [],
     "az left running"),
    ("az-running-slow-instance", "group", ("call", INSTANCE, "--managed-instance=sqlmi-akv-0", 100),
     [slow(INSTANCE, "--managed-instance=sqlmi-akv-0", 1500)],
     "a long-running change left running 1.5 s: the lock holds"),
    ("az-running-dbkey", "all", ("call", DBKEY, "--database=db-uai-1", 50), [],
     "az killed in its latency"),
    # azsim's crash: the change is made, az dies before answering. azbook sees it and is
    # killed after writing the outcome, or is already dead when it happens.
    ("crash-seen-storage", "group", ("outcome", STORAGE, "--name=stcmkpinned0"),
     [crash(STORAGE, "--name=stcmkpinned0")], "outcome says failed; the change is there"),
    ("crash-seen-server", "group", ("outcome", SERVER, "--server=sql-akv-norotate-1"),
     [crash(SERVER, "--server=sql-akv-norotate-1")], "outcome says failed; the change is there"),
    ("crash-seen-database", "group", ("outcome", DATABASE, "--database=db-off-0"),
     [crash(DATABASE, "--database=db-off-0")], "outcome says failed; the change is there"),
    ("crash-seen-scope", "group", ("outcome", SCOPE, "--name=kv-versioned-1"),
     [crash(SCOPE, "--name=kv-versioned-1")], "outcome says failed; the change is there"),
    ("crash-seen-dbkey", "group", ("outcome", DBKEY, "--database=db-uai-0"),
     [crash(DBKEY, "--database=db-uai-0")], "outcome says failed; the change is there"),
    ("crash-orphan-storage", "group", ("call", STORAGE, "--name=stcmkfederated1", 100),
     [slow(STORAGE, "--name=stcmkfederated1", 800), crash(STORAGE, "--name=stcmkfederated1")],
     "azbook dead; az changes, then dies"),
    ("crash-orphan-server", "group", ("call", SERVER, "--server=sql-akv-norotate-0", 100),
     [slow(SERVER, "--server=sql-akv-norotate-0", 800), crash(SERVER, "--server=sql-akv-norotate-0")],
     "azbook dead; az changes, then dies"),
    ("crash-orphan-database", "group", ("call", DATABASE, "--database=db-akvoff-1", 100),
     [slow(DATABASE, "--database=db-akvoff-1", 800), crash(DATABASE, "--database=db-akvoff-1")],
     "azbook dead; az changes, then dies"),
    ("crash-orphan-instance", "group", ("call", INSTANCE, "--managed-instance=sqlmi-akv-1", 100),
     [slow(INSTANCE, "--managed-instance=sqlmi-akv-1", 800),
      crash(INSTANCE, "--managed-instance=sqlmi-akv-1")],
     "azbook dead; az changes, then dies"),
    ("crash-orphan-scope", "group", ("call", SCOPE, "--name=kv-stage-0", 100),
     [slow(SCOPE, "--name=kv-stage-0", 800), crash(SCOPE, "--name=kv-stage-0")],
     "azbook dead; az changes, then dies"),
    # The change is made, but az's answer is torn: azbook records it failed; then it is killed.
    ("torn-answer-server", "group", ("outcome", SERVER, "--server=sql-akv-1"),
     [{"command": SERVER, "argvContains": "--server=sql-akv-1", "malformed": True, "times": 1}],
     "outcome says failed (not JSON); the change is there"),
    # Two failures: the backout of a killed run is killed too, then backout runs again.
    ("backout-killed-too", "group", ("journal", "outcome", 14), [],
     "then backout killed (its group) in its 5th az change", ("group", 5)),
    ("backout-killed-too-all", "all", ("call", SERVER, "--server=sql-akv-0", 50), [],
     "then backout killed (everything) in its 9th az change", ("all", 9)),
    ("backout-killed-in-dbkey", "group", ("journal", "run-end", 1), [],
     "then backout killed (its group) in its `sql db update` of db-uai-0",
     ("group", (DBKEY_BACK, "--name=db-uai-0"))),
    ("backout-killed-in-instance", "all", ("journal", "run-end", 1), [],
     "then backout killed (everything) in its `sql mi tde-key set` of sqlmi-akv-0",
     ("all", (INSTANCE, "--managed-instance=sqlmi-akv-0"))),
]


# --- processes ----------------------------------------------------------------------------

def session_members(*sids):
    """Live (not zombie) processes of the sessions `sids`."""
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] not in ("Z", "X") and int(fields[3]) in sids:
            alive.append(int(pid))
    return alive


def holds(pid, path):
    """True when process `pid` has `path` open (the state lock: its holders keep it locked)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                return True
        except OSError:
            pass
    return False


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] not in ("Z", "X")


def kill_run(proc, mode):
    """SIGKILL azbook's process group (`group`), or every process of its session (`all`);
    reaps azbook and returns the processes left running and how many others were killed."""
    sid = proc.pid
    try:
        os.killpg(sid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    killed = set()
    if mode == "all":
        for _ in range(500):
            members = [p for p in session_members(sid) if p != sid]
            if not members:
                break
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.002)
    proc.wait()
    return session_members(sid), len(killed)


def wait_sessions_empty(sids, seconds):
    deadline = time.monotonic() + seconds
    while session_members(*sids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# --- one world ----------------------------------------------------------------------------

class World:
    def __init__(self, bindir, d, faults, latency, jitter):
        self.d = d
        os.makedirs(f"{d}/azure-config")
        self.az = f"{bindir}/az"
        self.azsim = f"{bindir}/azsim"
        self.azbook = f"{bindir}/azbook"
        self.state = f"{d}/state"
        self.env = dict(os.environ, AZSIM_WORLD=f"{d}/world.db", AZSIM_LOG=f"{d}/calls.jsonl",
                        AZURE_CONFIG_DIR=f"{d}/azure-config", NO_COLOR="1",
                        PATH=f"{bindir}:" + os.environ["PATH"])
        for k in ("AZBOOK_AZ", "AZBOOK_STATE_DIR", "AZBOOK_WAIVERS"):
            self.env.pop(k, None)
        self.faults = faults
        subprocess.run([self.azsim, "load", "-"], env=self.env, check=True,
                       input=json.dumps(W.build(latency, jitter, faults)).encode())

    def dump(self):
        out = subprocess.run([self.azsim, "dump"], env=self.env, capture_output=True, check=True)
        return json.loads(out.stdout)

    def settings(self, *pairs):
        subprocess.run([self.azsim, "settings", *pairs], env=self.env, check=True,
                       capture_output=True)

    def azbook_argv(self, *args):
        return [self.azbook, "--az", self.az, "--state-dir", self.state, *args]

    def start_apply(self):
        self.apply_err = open(f"{self.d}/apply.stderr", "w")
        return subprocess.Popen(
            self.azbook_argv("--jobs", "4", "apply", "--yes", "--all-subscriptions",
                             "--max-changes", "100", "--output", "json"),
            env=self.env, cwd=self.d, stdin=subprocess.DEVNULL,
            stdout=open(f"{self.d}/apply.stdout", "w"), stderr=self.apply_err,
            start_new_session=True)

    def start_backout(self, attempt):
        return subprocess.Popen(self.azbook_argv("backout", "--yes", "--output", "json"),
                                env=self.env, cwd=self.d, stdin=subprocess.DEVNULL,
                                stdout=open(f"{self.d}/backout-{attempt}.stdout", "w"),
                                stderr=open(f"{self.d}/backout-{attempt}.stderr", "w"),
                                start_new_session=True)

    def backout(self, attempt):
        """Runs `azbook backout --yes` to its end; returns exit code, stdout and stderr."""
        p = self.start_backout(attempt)
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            kill_run(p, "all")
        out = open(f"{self.d}/backout-{attempt}.stdout").read()
        err = open(f"{self.d}/backout-{attempt}.stderr").read()
        return p.returncode, out, err

    def backout_journal(self):
        runs = f"{self.state}/runs"
        names = sorted(n for n in os.listdir(runs) if "-backout-" in n)
        return f"{runs}/{names[-1]}/journal.jsonl" if names else None

    def journal_path(self):
        runs = f"{self.state}/runs"
        try:
            names = sorted(n for n in os.listdir(runs) if "-apply-" in n)
        except FileNotFoundError:
            return None
        return f"{runs}/{names[-1]}/journal.jsonl" if names else None


def read_records(path):
    """The journal's records; a torn last line (a crash mid-write) is returned as None."""
    if path is None:
        return []
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return []
    records = []
    for i, line in enumerate(lines):
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            records.append(None)
    return records


def calls(path):
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def call_matches(argv, command, needle):
    words = command.split()
    return argv[:len(words)] == words and any(needle in a for a in argv)


def journal_summary(records):
    good = [r for r in records if r is not None]
    intents = {r["seq"] for r in good if r["kind"] == "intent"}
    outcomes = {r["intent"] for r in good if r["kind"] == "outcome"}
    failed = sum(1 for r in good if r["kind"] == "outcome" and r.get("status") != "done")
    if not records:
        return "no change log", 0
    parts = []
    if any(r["kind"] == "run-start" for r in good):
        parts.append("run-start")
    parts.append(f"{len(intents)}i/{len(outcomes)}o")
    if failed:
        parts.append(f"{failed} failed")
    opened = len(intents - outcomes)
    if opened:
        parts.append(f"{opened} open")
    if any(r["kind"] == "run-end" for r in good):
        parts.append("run-end")
    if any(r is None for r in records):
        parts.append("torn line")
    return " ".join(parts), opened


# --- ARM ids to world.py's names ----------------------------------------------------------

def resource_key(arm_id):
    """The name world.essentials gives the resource an ARM id names."""
    p = arm_id.split("/")
    low = [x.lower() for x in p]

    def after(kind):
        return p[low.index(kind) + 1]

    sub, rg = after("subscriptions"), after("resourcegroups")
    if "databases" in low:
        return f"db {after('servers')}/{after('databases')}"
    if "servers" in low:
        return f"server {rg}/{after('servers')}"
    if "managedinstances" in low:
        return f"mi {rg}/{after('managedinstances')}"
    if "encryptionscopes" in low:
        return W.scope_name({"subscription": sub, "resourceGroup": rg,
                             "account": after("storageaccounts"), "name": after("encryptionscopes")})
    return f"storage {sub[-4:]}/{rg}/{after('storageaccounts')}"


# --- one point ----------------------------------------------------------------------------

def backout_reached(changes, when):
    """Whether a backout's mutating calls so far reach `when`: its n-th az change (an int), or
    its change by a given call ((command, needle))."""
    if isinstance(when, int):
        return len(changes) >= when
    return any(call_matches(c["argv"], *when) for c in changes)


def describe_when(when):
    return f"number {when}" if isinstance(when, int) else f"`{when[0]}` {when[1]}"


class PointError(Exception):
    pass


def wait_trigger(w, apply, trigger, calibrated, t0):
    """Polls until the trigger holds; returns a description of what was seen."""
    kind = trigger[0]
    deadline = t0 + max(60.0, 4 * calibrated)
    while True:
        now = time.monotonic()
        if kind == "time":
            target = t0 + trigger[1] * calibrated
            if now >= target:
                return f"{now - t0:.2f}s"
            time.sleep(min(0.005, target - now))
            continue
        if kind == "journal":
            records = [r for r in read_records(w.journal_path()) if r is not None]
            n = sum(1 for r in records if r["kind"] == trigger[1])
            if n >= trigger[2]:
                return f"{now - t0:.2f}s"
        elif kind == "call":
            _, command, needle, delay_ms = trigger
            if any(c["mutating"] and call_matches(c["argv"], command, needle)
                   for c in calls(w.env["AZSIM_LOG"])):
                time.sleep(delay_ms / 1000)
                return f"{time.monotonic() - t0:.2f}s"
        elif kind == "outcome":
            _, command, needle = trigger
            records = [r for r in read_records(w.journal_path()) if r is not None]
            seqs = {r["seq"] for r in records if r["kind"] == "intent"
                    and call_matches(r["argv"][1:], command, needle)}
            if any(r["kind"] == "outcome" and r["intent"] in seqs for r in records):
                return f"{now - t0:.2f}s"
        if apply.poll() is not None:
            raise PointError(f"apply ended (exit {apply.returncode}) before the kill point "
                             f"was reached; see {w.d}/apply.stderr")
        if now > deadline:
            raise PointError("the kill point was never reached")
        time.sleep(0.003)


def run_point(index, point, args, calibrated, original):
    name, mode, trigger, faults, note = point[:5]
    backout_kill = point[5] if len(point) > 5 else None
    d = f"{WORK}/points/{index:02d}-{name}"
    w = World(f"{WORK}/bin", d, faults, args.latency, args.jitter)
    if W.essentials(w.dump()) != original:
        raise PointError("the point's world differs from the calibration's before the run")
    res = {"point": name, "mode": mode, "faults": len(faults), "note": note,
           "lockRetries": 0, "errors": [], "changed": 0, "restored": 0, "unrestored": 0,
           "journal": "?"}
    apply = w.start_apply()
    t0 = time.monotonic()
    sessions = [apply.pid]
    try:
        res["killedAt"] = wait_trigger(w, apply, trigger, calibrated, t0)
    except PointError as e:
        kill_run(apply, "all")
        res["errors"].append(str(e))
        return res
    ended_before = apply.poll()
    left, res["azKilled"] = kill_run(apply, mode)
    res["azLeftRunning"] = len(left)
    res["applyExit"] = "killed" if ended_before is None else f"ended {ended_before}"
    records = read_records(w.journal_path())
    res["journal"], res["openIntents"] = journal_summary(records)
    if w.journal_path():
        shutil.copy(w.journal_path(), f"{d}/journal-at-kill.jsonl")
    intended = {resource_key(r["resource"]) for r in records
                if r is not None and r["kind"] == "intent"}
    at_kill = set(W.differences(original, W.essentials(w.dump())))
    # Backout's own calls need no latency; the az processes left running keep theirs.
    w.settings("latencyMs=0", "jitterMs=0")
    lock_path = os.path.realpath(f"{w.state}/lock")
    snapshot = None
    attempt = 0

    if backout_kill:
        # A second failure: the backout itself is killed part-way, then backout runs again.
        bmode, bwhen = backout_kill
        if not wait_sessions_empty(sessions, 60):
            res["errors"].append("the killed run's processes never ended")
        snapshot = W.essentials(w.dump())
        # With latency again, so that the backout's own az calls are caught in flight.
        w.settings(f"latencyMs={args.latency}", f"jitterMs={args.jitter}")
        attempt += 1
        seen = len(calls(w.env["AZSIM_LOG"]))
        first = w.start_backout(attempt)
        sessions.append(first.pid)
        deadline = time.monotonic() + 60
        while True:
            changes = [c for c in calls(w.env["AZSIM_LOG"])[seen:] if c["mutating"]]
            reached = backout_reached(changes, bwhen)
            if reached or first.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.003)
        time.sleep(0.05)  # within the latency of that az call
        if first.poll() is not None:
            res["errors"].append(f"the first backout ended (exit {first.returncode}) before "
                                 f"its change {describe_when(bwhen)}")
        bleft, bkilled = kill_run(first, bmode)
        w.settings("latencyMs=0", "jitterMs=0")
        res["backoutKilled"] = f"{bmode}, in its az change {len(changes)}"
        res["azLeftRunning"] += len(bleft)
        res["azKilled"] += bkilled

    deadline = time.monotonic() + 90
    while True:
        members = session_members(*sessions)
        holders = [p for p in members if holds(p, lock_path)]
        if not members and snapshot is None:
            # Every process of the killed run has ended and backout changed nothing yet.
            snapshot = W.essentials(w.dump())
        attempt += 1
        code, out, err = w.backout(attempt)
        if code == 2 and LOCK_MSG in err:
            res["lockRetries"] += 1
            if not holders and not any(holds(p, lock_path) for p in session_members(*sessions)):
                res["errors"].append(f"backout attempt {attempt} was refused for the lock, but "
                                     "no process of the killed run held it (a stale lock)")
                break
            if time.monotonic() > deadline:
                res["errors"].append("the lock was never released")
                break
            # Retry soon; while the killed run's processes are still running, at most every
            # 200 ms.
            until = time.monotonic() + 0.2
            while session_members(*sessions) and time.monotonic() < until:
                time.sleep(0.01)
            continue
        still = [p for p in holders if alive(p) and holds(p, lock_path)]
        if still and not (code == 2 and NOTHING_CHANGED_MSG in err):
            res["errors"].append(
                f"backout ran (exit {code}) while az processes of the killed run holding the "
                f"lock were running: {still}")
        break
    res["backoutExit"] = code
    res["backoutAttempts"] = attempt
    if not wait_sessions_empty(sessions, 60):
        res["errors"].append(f"processes of the killed run still running 60 s after the kill: "
                             f"{session_members(*sessions)}")
        for sid in sessions:
            for pid in session_members(sid):
                os.kill(pid, signal.SIGKILL)
    final = W.essentials(w.dump())
    diff = W.differences(original, final)
    res["unrestored"] = len(diff)
    if diff:
        res["errors"].append("left unrestored: " + json.dumps(diff))
        with open(f"{d}/unrestored.json", "w") as f:
            json.dump(diff, f, indent=1)
    fired = 0
    # The world keeps its faults in list order, each with what is left of its `times`.
    for loaded, now in zip(faults, w.dump()["faults"]):
        fired += loaded["times"] - (now.get("times") or 0)
    res["faultsFired"] = fired

    if code == 2 and NO_RUN_MSG in err:
        if w.journal_path() is not None:
            res["errors"].append(f"backout found no apply run, but the run exists: {err.strip()}")
        changed = set(W.differences(original, snapshot or final)) | at_kill
        if changed:
            res["errors"].append(f"resources changed by a run without a change log: {changed}")
        res["backout"] = "no apply run to back out"
        return res
    intents_at_kill = any(r is not None and r["kind"] == "intent" for r in records)
    if code == 2 and not intents_at_kill and not at_kill and not diff:
        # Killed before its first intent (inside the creation of its run directory, say):
        # nothing was changed, and backout refusing to read an incomplete run changes nothing.
        res["backout"] = "refused, nothing to restore: " + err.strip().splitlines()[-1][:160]
        return res
    if code != 0:
        res["errors"].append(f"backout exited {code}: {err.strip()[-600:]}")
        return res
    report = json.loads(out)
    statuses = {}
    for c in report["changes"]:
        statuses.setdefault(c["status"], set()).add(resource_key(c["resource"]))
    res["backout"] = ", ".join(f"{len(v)} {k}" for k, v in sorted(statuses.items())) or "nothing"
    reported = statuses.get("restored", set()) | statuses.get("failed", set()) \
        | statuses.get("drifted", set())
    if not reported <= intended:
        res["errors"].append(f"backout changed resources the log has no intent for: "
                             f"{sorted(reported - intended)}")
    if snapshot is not None:
        changed = set(W.differences(original, snapshot))
        res["changedSource"] = "world"
        if not backout_kill and changed != reported:
            res["errors"].append(
                f"backout restored {sorted(reported)}, but the resources the killed run left "
                f"changed were {sorted(changed)}")
    else:
        # The last process of the killed run ended while backout waited for az: what backout
        # found changed then, which holds at least what was changed when azbook was killed.
        changed = reported
        res["changedSource"] = "backout"
        if not at_kill <= reported:
            res["errors"].append(f"changed when azbook was killed, but not restored: "
                                 f"{sorted(at_kill - reported)}")
    if not at_kill <= changed:
        res["errors"].append(f"changed when azbook was killed, but not counted as changed: "
                             f"{sorted(at_kill - changed)}")
    if not changed <= intended:
        res["errors"].append(f"resources changed without an intent in the log: "
                             f"{sorted(changed - intended)}")
    res["changed"] = len(changed)
    res["restored"] = len(changed - set(diff))
    unfinished = [c for c in report["changes"] if c["status"] == "unchanged"
                  and UNFINISHED_WARNING in c.get("message", "")]
    res["openUnchanged"] = len(unfinished)
    for c in unfinished:
        if not c.get("warnings"):
            res["errors"].append(f"{c['resource']}: an open intent reported unchanged without "
                                 "a warning")
    return res


# --- calibration and the whole test -------------------------------------------------------

def calibrate(args):
    d = f"{WORK}/calibration"
    w = World(f"{WORK}/bin", d, [], args.latency, args.jitter)
    original = W.essentials(w.dump())
    t0 = time.monotonic()
    apply = w.start_apply()
    code = apply.wait()
    took = time.monotonic() - t0
    if code != 0:
        sys.exit(f"crash test: the calibration apply failed (exit {code}); see {d}/apply.stderr")
    report = json.load(open(f"{d}/apply.stdout"))
    done = sum(1 for c in report["changes"] if c["status"] == "done")
    changed = len(W.differences(original, W.essentials(w.dump())))
    records = read_records(w.journal_path())
    w.settings("latencyMs=0", "jitterMs=0")
    t1 = time.monotonic()
    bcode, _, berr = w.backout(1)
    btook = time.monotonic() - t1
    left = W.differences(original, W.essentials(w.dump()))
    if bcode != 0 or left or done != W.CHANGES or changed != W.CHANGES:
        sys.exit(f"crash test: the calibration run is not as expected (apply: {done} done, "
                 f"{changed} changed; backout exit {bcode}, {len(left)} left): {berr[-400:]}")
    print(f"calibration: apply made {done} changes in {took:.2f}s "
          f"({sum(1 for r in records if r and r['kind'] == 'intent')} intents); "
          f"backout restored {changed} in {btook:.2f}s", file=sys.stderr)
    return took, original


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="run only the points whose name matches this regex")
    ap.add_argument("--list", action="store_true", help="list the points and exit")
    ap.add_argument("--latency", type=int, default=100, help="azsim latencyMs during apply")
    ap.add_argument("--jitter", type=int, default=50, help="azsim jitterMs during apply")
    args = ap.parse_args()
    points = [p for p in POINTS if not args.only or re.search(args.only, p[0])]
    if args.list:
        for i, p in enumerate(points, 1):
            print(f"{i:2d} {p[0]:28s} {p[1]:5s} {p[4]}")
        return 0
    started = time.monotonic()
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(f"{WORK}/bin")
    # Copies, so that a build elsewhere in target/ cannot swap the binaries mid-test.
    for b in ("azbook", "azsim"):
        shutil.copy2(f"{TARGET}/debug/{b}", f"{WORK}/bin/{b}")
    os.symlink("azsim", f"{WORK}/bin/az")

    calibrated, original = calibrate(args)
    print(f"{'#':>2} {'kill point':28s} {'kill':5s} {'at':>6s}  {'journal at the kill':30s} "
          f"{'changed':>7s} {'restored':>8s}  result")
    results = []
    for i, point in enumerate(points, 1):
        name, mode = point[0], point[1]
        t = time.monotonic()
        try:
            r = run_point(i, point, args, calibrated, original)
        except Exception as e:  # a harness failure is a point error, never a pass
            r = {"point": name, "mode": mode, "errors": [f"{type(e).__name__}: {e}"],
                 "journal": "?", "changed": 0, "restored": 0, "unrestored": 0, "lockRetries": 0}
        r["seconds"] = round(time.monotonic() - t, 2)
        results.append(r)
        extra = []
        if r.get("azLeftRunning"):
            extra.append(f"{r['azLeftRunning']} az left running")
        if r.get("azKilled"):
            extra.append(f"{r['azKilled']} az killed")
        if r.get("faultsFired"):
            extra.append(f"{r['faultsFired']} fault(s) fired")
        if r.get("backoutKilled"):
            extra.append(f"backout killed ({r['backoutKilled']})")
        if r.get("lockRetries"):
            extra.append(f"{r['lockRetries']} lock retr{'y' if r['lockRetries'] == 1 else 'ies'}")
        if r.get("openUnchanged"):
            extra.append(f"{r['openUnchanged']} open intent(s) unchanged, warned")
        if r.get("applyExit", "killed") != "killed":
            extra.append(f"apply had {r['applyExit']}")
        verdict = "ok" if not r["errors"] else "FAIL"
        detail = f"backout: {r.get('backout', '?')}" + (f"; {'; '.join(extra)}" if extra else "")
        print(f"{i:2d} {name:28s} {mode:5s} {r.get('killedAt', '?'):>6s}  {r['journal']:30s} "
              f"{r['changed']:7d} {r['restored']:8d}  {verdict}  {detail}", flush=True)
        for e in r["errors"]:
            print(f"     error: {e}", flush=True)

    took = time.monotonic() - started
    summary = {
        "pointsTried": len(results),
        "pointsFailed": sum(1 for r in results if r["errors"]),
        "resourcesChanged": sum(r["changed"] for r in results),
        "resourcesRestored": sum(r["restored"] for r in results),
        "resourcesLeftUnrestored": sum(r.get("unrestored", 0) for r in results),
        "backoutRetriesForTheLock": sum(r["lockRetries"] for r in results),
        "pointsWithAzLeftRunning": sum(1 for r in results if r.get("azLeftRunning")),
        "pointsKillingEveryProcess": sum(1 for r in results if r["mode"] == "all"),
        "faultsInjected": sum(r.get("faultsFired", 0) for r in results),
        "openIntentsUnchanged": sum(r.get("openUnchanged", 0) for r in results),
        "calibratedApplySeconds": round(calibrated, 2),
        "seconds": round(took, 1),
        "latencyMs": args.latency, "jitterMs": args.jitter,
    }
    with open(f"{WORK}/report.json", "w") as f:
        json.dump({"summary": summary, "points": results}, f, indent=1)
    print(f"\ncrash test: {summary['pointsTried']} kill points, {summary['pointsFailed']} failed; "
          f"{summary['resourcesChanged']} resources changed by killed runs, "
          f"{summary['resourcesRestored']} restored, "
          f"{summary['resourcesLeftUnrestored']} left unrestored; "
          f"{summary['backoutRetriesForTheLock']} backout retries for the lock "
          f"(az left running at {summary['pointsWithAzLeftRunning']} points); "
          f"{summary['faultsInjected']} azsim faults fired; {took:.0f}s "
          f"(report: {os.path.relpath(WORK, ROOT)}/report.json)")
    return 1 if summary["pointsFailed"] or summary["resourcesLeftUnrestored"] else 0


if __name__ == "__main__":
    sys.exit(main())
