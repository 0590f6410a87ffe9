#!/usr/bin/env python3
"""Reproduction of a bug fixed in ea0a6ca, kept as a regression check: an `az` started by a killed
`azbook apply` landed its change after `azbook backout` had already concluded "the change did not
happen", so the resource was left changed. Since the fix every az an apply starts holds the state
lock, so backout exits 2 ("az commands it started are still running") until the last one ends;
this script retries it while it does, as an operator would, and checks the world.

Usage: python3 scripts/crash/repro_orphan_az.py [--settle]   (after `cargo build --workspace --bins`)
  --settle: wait for every process of the killed run to exit before backout (control case).
Exits 1 when a resource is left unrestored. scripts/crash-test.sh covers this case and many
more (its point az-running-slow-storage is this one)."""
import json, os, shutil, signal, subprocess, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import world as W

root = os.path.dirname(os.path.dirname(HERE))
target = os.path.join(root, os.environ.get("CARGO_TARGET_DIR") or "target")  # where cargo built them
azsim, azbook = f"{target}/debug/azsim", f"{target}/debug/azbook"
d = f"{target}/crash-repro"
shutil.rmtree(d, ignore_errors=True)
os.makedirs(f"{d}/bin"); os.makedirs(f"{d}/azure-config")
os.symlink(azsim, f"{d}/bin/az")
env = dict(os.environ, AZSIM_WORLD=f"{d}/world.db", AZSIM_LOG=f"{d}/calls.jsonl",
           AZURE_CONFIG_DIR=f"{d}/azure-config", NO_COLOR="1", PATH=f"{d}/bin:" + os.environ["PATH"])
env.pop("AZBOOK_AZ", None)
settle = "--settle" in sys.argv
# Every call 100-150 ms; the change of stcmkpinned0 takes 2 s more (once).
faults = [{"command": "storage account update", "argvContains": "--name=stcmkpinned0",
           "latencyMs": 2000, "times": 1}]
subprocess.run([azsim, "load", "-"], input=json.dumps(W.build(100, 50, faults)).encode(), env=env, check=True)
dump = lambda: json.loads(subprocess.run([azsim, "dump"], env=env, capture_output=True, check=True).stdout)
original = W.essentials(dump())
ab = [azbook, "--az", f"{d}/bin/az", "--state-dir", f"{d}/state"]
apply = subprocess.Popen(ab + ["--jobs", "4", "apply", "--yes", "--all-subscriptions", "--max-changes", "100"],
                         env=env, cwd=d, stdout=subprocess.DEVNULL, stderr=open(f"{d}/apply.err", "w"),
                         start_new_session=True)
# Kill point: az has started the change of stcmkpinned0 (azsim logs a call before running it).
while True:
    try:
        log = open(f"{d}/calls.jsonl").read().splitlines()
    except FileNotFoundError:
        log = []
    if any('"mutating":true' in l and "--name=stcmkpinned0" in l for l in log):
        break
    time.sleep(0.005)
os.killpg(apply.pid, signal.SIGKILL)          # azbook's whole process group
apply.wait()
killed_at = time.time()
journal = [p for p in (f"{d}/state/runs/{r}/journal.jsonl" for r in os.listdir(f"{d}/state/runs"))]
shutil.copy(journal[0], f"{d}/journal-at-kill.jsonl")


def session_alive(sid):
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            alive.append(int(pid))
    return alive


left = session_alive(apply.pid)
print(f"killed azbook (pid {apply.pid}); processes of its session still running: "
      + ", ".join(open(f"/proc/{p}/cmdline").read().replace("\0", " ")[:160] for p in left))
if settle:
    while session_alive(apply.pid):
        time.sleep(0.01)
subprocess.run([azsim, "settings", "latencyMs=0", "jitterMs=0"], env=env, check=True, capture_output=True)
refused = 0
while True:
    b = subprocess.run(ab + ["backout", "--yes"], env=env, cwd=d, capture_output=True, text=True)
    if b.returncode == 2 and "az commands it started are still running" in b.stderr:
        refused += 1
        time.sleep(0.1)
        continue
    break
print(f"backout refused {refused} time(s) while the killed run's az ran; then exit {b.returncode}, "
      f"{time.time() - killed_at:.2f}s after the kill:\n{b.stdout}{b.stderr}")
while session_alive(apply.pid):
    time.sleep(0.01)
print("journal at the kill:")
for line in open(f"{d}/journal-at-kill.jsonl"):
    r = json.loads(line)
    print(f"  seq {r['seq']} {r['kind']}", r.get("resource", "").split("/")[-1], f"(intent {r['intent']} {r['status']})" if r["kind"] == "outcome" else "")
print("mutating az calls (azsim log):")
for line in open(f"{d}/calls.jsonl"):
    c = json.loads(line)
    if c["mutating"]:
        print(f"  {c['ts'] - killed_at:+.3f}s  {' '.join(c['argv'][:4])} {[a for a in c['argv'] if a.startswith('--name=') or a.startswith('--encryption-key-source=')]}")
diff = W.differences(original, W.essentials(dump()))
print("left unrestored:", json.dumps(diff, indent=1) if diff else "none")
sys.exit(1 if diff else 0)
