"""bench.sh's real-az row: `azbook test` driving the real azure-cli against `azsim serve` (the
ARM face), on the small fleet, with the same latency setting as the azsim rows.

It reuses the conformance suite's set-up (scripts/conformance/run.py: `azsim serve` with a
generated certificate, a custom cloud, a service-principal login, telemetry and extension
installs off, HTTPS_PROXY on a dead loopback port), so the real az can never reach Azure.
Run it with az's own Python:

    python real_az.py --az AZ --az-python PY --azsim AZSIM --azbook AZBOOK --work DIR
                      --jobs 16,2 --latency MS --jitter MS

Prints one JSON object on stdout: one measurement per --jobs value.
"""

import argparse
import json
import re
import resource
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "conformance"))

import run  # noqa: E402  (scripts/conformance/run.py)

SELF_LINE = re.compile(r"azbook itself used ([0-9.]+)s of CPU and at most ([0-9.]+) MB")


class BenchSuite(run.Suite):
    def world_json(self):
        """The small benchmark fleet, with the service principal signed in on the custom cloud."""
        seed_db = self.work / "seed.db"
        self.azsim_run(["seed", "--fleet", "small"], seed_db)
        world = json.loads(self.azsim_run(["dump"], seed_db).stdout)
        world["user"] = {"name": run.APP_ID, "type": "servicePrincipal"}
        world["settings"]["cloudName"] = run.CLOUD
        return world


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    p = argparse.ArgumentParser()
    for name in ("--az", "--az-python", "--azsim", "--azbook", "--work"):
        p.add_argument(name, required=True)
    p.add_argument("--jobs", default="16")
    p.add_argument("--latency", type=int, default=200)
    p.add_argument("--jitter", type=int, default=20)
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    jobs_list = [int(j) for j in args.jobs.split(",")]
    args.jobs = jobs_list[0]  # the suite's own thread pool, for its set-up only
    suite = BenchSuite(args)
    out = {"runs": []}
    try:
        suite.setup()
        if suite.failures:
            raise run.Failure("; ".join(suite.failures))
        out["az_version"] = suite.local_versions["azure-cli"]["local"]
        suite.azsim_run(["settings", f"latencyMs={args.latency}", f"jitterMs={args.jitter}"], suite.arm_world)
        wrapper = suite.az_wrapper()
        log = Path(str(suite.arm_world) + ".calls.jsonl")
        for jobs in jobs_list:
            before = len(log.read_text().splitlines())
            cpu0, t0 = children_cpu(), time.monotonic()
            rc, stdout, stderr = suite.azbook(wrapper, suite.arm_world,
                                              ["-v", "--jobs", str(jobs), "test", "--all-subscriptions",
                                               "--output", "json"])
            wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
            if rc not in (0, 1):
                raise run.Failure(f"azbook test through the real az exited {rc}: {stderr[-2000:]}")
            doc = json.loads(stdout)
            if doc["summary"].get("error"):
                raise run.Failure(f"azbook test through the real az reported errors: {doc['summary']}; {stderr[-2000:]}")
            m = SELF_LINE.search(stderr)
            self_cpu, peak = (float(m.group(1)), float(m.group(2))) if m else (None, None)
            requests = [json.loads(line) for line in log.read_text().splitlines()[before:]]
            az_processes = sum(1 for line in stderr.splitlines() if line.startswith("+ az "))
            out["runs"].append({
                "jobs": jobs, "rc": rc, "wall": wall, "summary": doc["summary"],
                "results": len(doc["results"]), "az_processes": az_processes,
                "arm_requests": len(requests),
                "mutating_requests": sum(1 for r in requests if r.get("mutating")),
                # everything azbook waited for (az, its wrapper, azbook) minus azbook itself
                "az_cpu": cpu - (self_cpu or 0), "self_cpu": self_cpu, "peak_mb": peak,
            })
    finally:
        suite.stop()
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except run.Failure as e:
        print(f"real_az.py: {e}", file=sys.stderr)
        sys.exit(1)
