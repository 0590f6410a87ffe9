"""Helpers for scripts/bench.sh: everything that reads JSON. Standard library only.

    bench.py inventory DUMP OUTDIR [--sample N]   counts of the world, and the seed's way calls
    bench.py calls LOG                            a summary of an azsim invocation log (JSON)
    bench.py controlled DUMP                      the controlled fields of every resource (JSON)
    bench.py check-test RESULT_JSON INVENTORY     azbook test's JSON covers the whole fleet
    bench.py record KIND FLEET ITEM...            one line of the results file (see record)
    bench.py report RESULTS --md FILE             the table (stdout) and BENCHMARKS.md

RESULTS is the JSON Lines file bench.sh writes: one object per measurement.
"""

import json
import math
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.dont_write_bytecode = True


def is_system_db(db):
    return "system" in (db.get("kind") or "").lower() or (db.get("sku") or {}).get("tier") == "System"


# --------------------------------------------------------------------------------------------
# inventory: the fleet's counts and the argvs of "the seed's way"


def inventory(dump_path, outdir, sample):
    world = json.loads(Path(dump_path).read_text())
    subs = [s for s in world["subscriptions"] if s.get("state", "Enabled") == "Enabled"]
    per_sub = {s["id"]: Counter() for s in subs}
    accounts = world["storageAccounts"]
    servers = world["sqlServers"]
    dbs = [d for d in world["sqlDatabases"] if not is_system_db(d)]
    masters = len(world["sqlDatabases"]) - len(dbs)
    for a in accounts:
        per_sub[a["subscription"]]["A"] += 1
    for s in servers:
        per_sub[s["subscription"]]["V"] += 1
    for d in dbs:
        per_sub[d["subscription"]]["D"] += 1
    # The seed's way: one call per resource, in sequence (storage: `az storage account show`;
    # SQL: `az sql server tde-key show` per server and `az sql db tde show` per database).
    kinds = {
        "storage account show": [
            ["storage", "account", "show", f"--name={a['name']}", f"--resource-group={a['resourceGroup']}",
             f"--subscription={a['subscription']}", "--output=json"] for a in accounts],
        "sql server tde-key show": [
            ["sql", "server", "tde-key", "show", f"--server={s['name']}", f"--resource-group={s['resourceGroup']}",
             f"--subscription={s['subscription']}", "--output=json"] for s in servers],
        "sql db tde show": [
            ["sql", "db", "tde", "show", f"--database={d['name']}", f"--server={d['server']}",
             f"--resource-group={d['resourceGroup']}", f"--subscription={d['subscription']}", "--output=json"]
            for d in dbs],
    }
    out = Path(outdir)
    sampled = {}
    with open(out / "seed-way.argv", "w") as f:
        # One call per line, arguments separated by a tab (no name in a seeded world has one).
        for kind, argvs in kinds.items():
            n = len(argvs)
            if sample and n > sample:
                step = n / sample
                chosen = [argvs[int(i * step)] for i in range(sample)]
            else:
                chosen = argvs
            sampled[kind] = {"total": n, "run": len(chosen)}
            for argv in chosen:
                f.write(kind + "\t" + "\t".join(argv) + "\n")
    inv = {
        "S": len(subs), "A": len(accounts), "V": len(servers), "D": len(dbs), "masters": masters,
        "per_subscription": {k: dict(v) for k, v in per_sub.items()},
        "seed_way": sampled,
    }
    (out / "inventory.json").write_text(json.dumps(inv, indent=1))
    print(json.dumps({k: inv[k] for k in ("S", "A", "V", "D", "masters")}))


# --------------------------------------------------------------------------------------------
# calls: what an invocation log says


def command_of(argv):
    words = []
    for a in argv:
        if a.startswith("-"):
            break
        words.append(a)
    return " ".join(words)


def calls(log_path):
    lines = Path(log_path).read_text().splitlines() if Path(log_path).exists() else []
    entries = [json.loads(line) for line in lines if line.strip()]
    by = Counter(command_of(e["argv"]) for e in entries)
    ts = [e["ts"] for e in entries]
    first = {}
    for e in entries:
        first.setdefault(command_of(e["argv"]), e["ts"])
    t0 = min(ts) if ts else 0
    print(json.dumps({
        "total": len(entries),
        "mutating": sum(1 for e in entries if e.get("mutating")),
        "by_command": dict(sorted(by.items())),
        "first_start": t0,
        "last_start": max(ts) if ts else 0,
        "first_start_of": {k: round(v - t0, 3) for k, v in first.items()},
    }))


# --------------------------------------------------------------------------------------------
# controlled: the fields a verdict reads, to check that backout restored them


def controlled(dump_path):
    world = json.loads(Path(dump_path).read_text())
    out = {}
    for a in world["storageAccounts"]:
        key_source = ((a.get("encryption") or {}).get("keySource") or "Microsoft.Storage").lower()
        out[f"{a['subscription']}/{a['resourceGroup']}/{a['name']}"] = key_source
    for s in world["sqlServers"]:
        out[f"{s['subscription']}/{s['resourceGroup']}/{s['name']}"] = (s.get("protector") or {}).get("serverKeyType")
    for d in world["sqlDatabases"]:
        out[f"{d['subscription']}/{d['resourceGroup']}/{d['server']}/{d['name']}"] = [d.get("tdeState"), d.get("encryptionProtector")]
    print(json.dumps(out, sort_keys=True))


# --------------------------------------------------------------------------------------------
# check-test: azbook test's JSON covers the whole fleet, with no error


def check_test(result_path, inventory_path):
    inv = json.loads(Path(inventory_path).read_text())
    doc = json.loads(Path(result_path).read_text())
    problems = []
    expected = inv["A"] + inv["V"] + inv["D"] + inv["masters"]
    if len(doc["results"]) != expected:
        problems.append(f"{len(doc['results'])} results, expected {expected}")
    summary = doc["summary"]
    if summary.get("error"):
        problems.append(f"{summary['error']} results are errors")
    if not summary.get("noncompliant"):
        problems.append("no noncompliant result: the fleet should have some")
    print(json.dumps(summary))
    if problems:
        print("; ".join(problems), file=sys.stderr)
        sys.exit(1)


# --------------------------------------------------------------------------------------------
# report


def secs(x):
    if x is None:
        return "n/a"
    if x >= 3600:
        return f"{x / 3600:.1f} h"
    if x >= 120:
        return f"{x / 60:.1f} min"
    if x >= 10:
        return f"{x:.0f} s"
    return f"{x:.2f} s"


def load_results(path):
    out = defaultdict(dict)
    meta = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        kind = r.pop("kind")
        if kind == "meta":
            meta.update(r)
        else:
            out[r.pop("fleet", "-")][kind] = r
    return meta, out


def bounds(inv, jobs, lat):
    """The lower bound of ARCHITECTURE.md (Performance model), for S subscriptions sharing one
    pool of J workers."""
    S, V, D = inv["S"], inv["V"], inv["D"]
    fleet = lat * (2 + math.ceil((2 * V + D) / jobs))
    per_sub = inv["per_subscription"].values()
    summed = sum(lat * (2 + math.ceil((2 * c.get("V", 0) + c.get("D", 0)) / jobs)) for c in per_sub)
    sub_max = max(lat * (2 + math.ceil((2 * c.get("V", 0) + c.get("D", 0)) / jobs)) for c in per_sub)
    min_calls = 2 * S + 2 * V + D
    return {"bound": fleet, "bound_summed": summed, "bound_sub_max": sub_max, "min_calls": min_calls}


def phase_cpu(p):
    """azbook's own CPU as a share of the wall time, in percent."""
    if p.get("self_cpu") is None or not p.get("wall"):
        return None
    return 100 * p["self_cpu"] / p["wall"]


def fmt_pct(x):
    return "n/a" if x is None else f"{x:.1f} %"


def fmt_s(x):
    return "n/a" if x is None else f"{x:.2f} s"


def fmt_mb(x):
    return "n/a" if x is None else f"{x:.1f} MB"


def report(results_path, md_path):
    meta, fleets = load_results(results_path)
    jobs, lat = meta["jobs"], meta["latency_ms"] / 1000
    jit = meta["jitter_ms"] / 1000
    lmean = lat + jit / 2
    order = [f for f in ("small", "medium", "large") if f in fleets]
    rows = []
    derived = {}
    for f in order:
        d = fleets[f]
        inv = d["inventory"]
        b = bounds(inv, jobs, lmean)
        t = d["test"]
        seed = d.get("seed_way", {})
        ratio = t["wall"] / b["bound"]
        speedup = seed["total"] / t["wall"] if seed.get("total") else None
        derived[f] = {"b": b, "ratio": ratio, "speedup": speedup}
        ab = d["apply"]["wall"] + d["backout"]["wall"]
        cpu_share = phase_cpu(t)
        seed_txt = secs(seed.get("total"))
        if seed.get("estimated"):
            seed_txt += f" (est. from {seed['run']} calls)"
        rows.append([
            f"{f}", f"{inv['S']} / {inv['A']:,} / {inv['V']} / {inv['D']:,}",
            f"{t['calls']['total']:,} ({b['min_calls']:,})", secs(t["wall"]), secs(b["bound"]), f"{ratio:.2f}",
            seed_txt, "n/a" if speedup is None else f"{speedup:.0f}x",
            secs(d["plan"]["wall"]), f"{secs(d['apply']['wall'])} + {secs(d['backout']['wall'])} = {secs(ab)}",
            f"{t['self_cpu']:.2f} s ({fmt_pct(cpu_share)})" if t.get("self_cpu") is not None else "n/a",
            fmt_mb(max((d[p].get("peak_mb") or 0) for p in ("test", "plan", "apply", "backout")) or None),
        ])
    header = ["fleet", "subs / accounts / servers / databases", "test az calls (bound's)", "test",
              "lower bound", "ratio", "seed's way", "speed-up", "plan", "apply + backout",
              "azbook CPU (test)", "azbook peak memory (any command)"]

    def md_table(head, body):
        lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
        lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
        return "\n".join(lines)

    # The table on stdout, aligned for a terminal.
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())

    version = meta.get("version_ms")
    real = meta.get("real_az", {})
    md = []
    md.append("# Benchmarks\n")
    md.append(f"Written by `scripts/bench.sh` on {meta['date']}; every figure below comes from that one run.\n")
    if meta.get("quick"):
        md.append("**This is a `--quick` run** (the small fleet, little latency): it checks that the script "
                  "works and says nothing about speed.\n")
    md.append("## Machine and run\n")
    md.append(f"- CPU: {meta['cpu_model']}, {meta['cores']} cores; memory {meta['mem_gb']:.1f} GB; {meta['os']}, kernel {meta['kernel']}")
    md.append(f"- azbook {meta['azbook_version']} ({meta['profile']} build), {meta['rustc']}; source: {meta['git']}")
    md.append(f"- Load: the machine is shared. 1-minute load average {meta['load_start']} at the start and "
              f"{meta.get('load_end', '?')} at the end of the run; the *other CPU* column below is the CPU time "
              "that other work on the machine used during each measurement.")
    md.append(f"- Simulated Azure: azsim with `latencyMs={meta['latency_ms']}` `jitterMs={meta['jitter_ms']}` "
              f"(each call sleeps {meta['latency_ms']} ms plus a uniform 0 to {meta['jitter_ms']} ms, so "
              f"L = {lmean * 1000:.0f} ms on average); azbook with `--jobs {jobs}`; about "
              f"{meta['noncompliant_percent']}% of each kind noncompliant.")
    md.append(f"- To reproduce: `{meta['command']}`\n")

    md.append("## Results\n")
    md.append(md_table(header, rows))
    md.append("")
    md.append("- **test az calls**: the calls azbook made for `test --all-subscriptions`; in brackets the "
              "calls the lower bound counts (`2S + 2V + D`).")
    md.append("- **lower bound**: ARCHITECTURE.md, *Performance model*: `L * (2 + ceil((2V + D) / J))`, "
              "with V and D the totals over all subscriptions (see *The lower bound* below); **ratio** is "
              "test / bound.")
    md.append("- **seed's way**: one `az` call per resource, in sequence: `az storage account show` per "
              "account, `az sql server tde-key show` per server, `az sql db tde show` per database "
              "(not `master`), against the same world and latency; the list calls a person needs to "
              "find the names are not counted, which favours the seed's way. Where it says *est.*, "
              "an evenly spread sample of each kind of call was run and each kind's mean time "
              "multiplied by its count.")
    md.append("- **apply + backout**: `apply --all-subscriptions --yes` of every change the plan shows, then "
              "`backout --yes` of that run; the controlled fields of every resource were then checked "
              "equal to the seeded world.")
    md.append("- **azbook CPU / peak memory**: azbook's own, from `getrusage(RUSAGE_SELF)` as printed by "
              "`-v` (az processes not included); the share is CPU over the wall time of `test`.\n")

    md.append("### Every command\n")
    detail_head = ["fleet", "command", "wall", "az calls", "calls by command", "azbook CPU", "azbook peak",
                   "az CPU (all az processes)", "other CPU on the machine", "J slots busy"]
    detail = []
    for f in order:
        for p in ("test", "plan", "apply", "backout"):
            x = fleets[f][p]
            by = ", ".join(f"{k} {v:,}" for k, v in sorted(x["calls"]["by_command"].items(), key=lambda kv: -kv[1]))
            az_cpu = None if x.get("children_cpu") is None or x.get("self_cpu") is None else x["children_cpu"] - x["self_cpu"]
            detail.append([f, p, secs(x["wall"]), f"{x['calls']['total']:,}", by,
                           "n/a" if x.get("self_cpu") is None else f"{x['self_cpu']:.2f} s ({fmt_pct(phase_cpu(x))}; {1000 * x['self_cpu'] / max(1, x['calls']['total']):.2f} ms a call)",
                           fmt_mb(x.get("peak_mb")),
                           "n/a" if az_cpu is None else f"{az_cpu:.1f} s ({1000 * az_cpu / max(1, x['calls']['total']):.0f} ms a call)",
                           "n/a" if x.get("other_cpu") is None else f"{x['other_cpu']:.1f} s ({100 * x['other_cpu'] / (x['wall'] * meta['cores']):.0f} % of the machine)",
                           f"{100 * x['calls']['total'] * lmean / (x['wall'] * jobs):.0f} %"])
        seed = fleets[f].get("seed_way")
        if seed:
            per_kind = "; ".join(f"{k}: {v['run']:,} of {v['total']:,} run, {1000 * v['mean']:.0f} ms each"
                                 for k, v in seed["kinds"].items())
            detail.append([f, "seed's way", secs(seed["total"]) + (" (estimated)" if seed.get("estimated") else ""),
                           f"{sum(v['total'] for v in seed['kinds'].values()):,}", per_kind, "", "", "",
                           "n/a" if seed.get("other_cpu") is None else f"{seed['other_cpu']:.1f} s ({100 * seed['other_cpu'] / (seed['measured_wall'] * meta['cores']):.0f} % of the machine)", ""])
    md.append(md_table(detail_head, detail))
    md.append("")
    md.append(f"*J slots busy* is `calls x L / (wall x J)`: the share of the {jobs} az slots that were "
              "waiting on a call; 100 % means every slot was busy all the time. *az CPU* is the CPU of "
              "everything azbook waited for minus azbook's own; *other CPU* is the machine's busy time "
              "minus azbook's and its az processes'.\n")

    md.append("### `azbook --version`\n")
    if version:
        md.append(f"{version['runs']} runs, one after another: median {version['median']:.1f} ms, "
                  f"90th percentile {version['p90']:.1f} ms, fastest {version['min']:.1f} ms "
                  f"(measured with {version['tool']}).\n")

    md.append("### The real az, through `azsim serve` (small fleet)\n")
    if real.get("status") == "run":
        first = real["runs"][0]
        per_call = first["az_cpu"] / max(1, first["az_processes"])
        md.append(f"`azbook test --all-subscriptions --jobs {first['jobs']}` driving the real azure-cli "
                  f"{real.get('az_version', '')} against azsim's ARM face (the same small fleet and latency "
                  f"setting): **{secs(first['wall'])}** for {first['az_processes']} az processes "
                  f"({first['arm_requests']} ARM requests, {first['mutating_requests']} of them changes), "
                  f"which used {first['az_cpu']:.0f} s of CPU ({per_call:.2f} s each); azbook itself used "
                  f"{fmt_s(first['self_cpu'])} of CPU and at most {fmt_mb(first['peak_mb'])}. Through azsim's "
                  f"CLI face the same test took {secs(fleets.get('small', {}).get('test', {}).get('wall'))}. "
                  f"With {meta['cores']} cores, {first['az_processes']} calls at {per_call:.2f} s of CPU each "
                  f"cannot take less than about {secs(first['az_cpu'] / meta['cores'])}: with the real az "
                  "the cores, not `--jobs` or latency, bound the run (ARCHITECTURE.md, *Performance "
                  "model*), so the first lever is fewer calls.\n")
        default_jobs = min(16, max(4, 2 * meta["cores"]))
        md.append("The same test with other `--jobs` values, one after another in this run "
                  f"(azbook's default on this machine is {default_jobs}: twice the cores, 4 to 16):\n")
        md.append("| --jobs | wall | az CPU | az processes |")
        md.append("| --- | --- | --- | --- |")
        for r in sorted(real["runs"], key=lambda r: r["jobs"]):
            mark = " (default)" if r["jobs"] == default_jobs else ""
            md.append(f"| {r['jobs']}{mark} | {secs(r['wall'])} | {r['az_cpu']:.0f} s | {r['az_processes']} |")
        md.append("")
        by_jobs = {r["jobs"]: r["wall"] for r in real["runs"]}
        if default_jobs in by_jobs and len(by_jobs) > 1:
            best = min(by_jobs.values())
            slowest = max(by_jobs.values())
            md.append(f"Why the default: with the real az each call is mostly az's own start-up on a CPU, so "
                      f"beyond the cores more processes only share them: the default ({default_jobs}) took "
                      f"{secs(by_jobs[default_jobs])}, {100 * (by_jobs[default_jobs] / best - 1):.0f} % over the "
                      f"fastest setting measured ({secs(best)}) and {100 * (1 - by_jobs[default_jobs] / slowest):.0f} % "
                      "under the slowest, while starting fewer az processes at once on a machine that is also the "
                      "operator's, and sending fewer requests at once to a subscription's ARM read limits. When "
                      "az waits on the network more than it computes (the simulator's latency above), higher "
                      "`--jobs` pays: the tables above use 16.\n")
    elif real.get("status") == "failed":
        md.append(f"**Failed**: {real.get('reason', 'unknown')}.\n")
    else:
        md.append(f"Not run: {real.get('reason', 'unknown')}.\n")

    # ---- targets
    md.append("## Targets (issue 6, item 4)\n")
    md.append("On the medium and large fleets, latency 200 ms, `--jobs 16`.\n")
    target_rows = []
    why = []
    for f in ("medium", "large"):
        if f not in fleets:
            for name in ("test within 1.2x the lower bound", "at least 15x faster than the seed's way",
                         "azbook's CPU under 5 % of the wall time"):
                target_rows.append([f, name, "not measured", f"not run (`--only` left out {f})"])
            continue
        d, x = fleets[f], derived[f]
        t, b = d["test"], x["b"]
        r = x["ratio"]
        calls_made = t["calls"]["total"]
        if r <= 1.2:
            target_rows.append([f, "test within 1.2x the lower bound", "**met**", f"{r:.2f}x"])
        else:
            target_rows.append([f, "test within 1.2x the lower bound", "**missed**",
                                f"{r:.2f}x, {100 * (r / 1.2 - 1):.0f} % over the target "
                                f"({secs(t['wall'])} against at most {secs(1.2 * b['bound'])})"])
            why.append(
                f"- **{f}, ratio {r:.2f}**: azbook made {calls_made:,} calls where the bound counts "
                f"{b['min_calls']:,}; what is over the bound is the serial call before any list "
                f"(`az account show` with `az account list`, at once: {lmean:.2f} s), az processes that "
                f"are not sleeping (the *az CPU* column) and the shared, loaded machine (*other CPU*).")
        if x["speedup"] is None:
            target_rows.append([f, "at least 15x faster than the seed's way", "not measured", "seed's way not run"])
        elif x["speedup"] >= 15:
            target_rows.append([f, "at least 15x faster than the seed's way", "**met**",
                                f"{x['speedup']:.0f}x" + (" (seed's way estimated from a sample)" if d['seed_way'].get('estimated') else "")])
        else:
            target_rows.append([f, "at least 15x faster than the seed's way", "**missed**",
                                f"{x['speedup']:.1f}x, {100 * (1 - x['speedup'] / 15):.0f} % short"])
            why.append(f"- **{f}, speed-up {x['speedup']:.1f}x**: see the ratio above; the speed-up "
                       f"is bounded by J = {jobs} times the ratio of the seed's calls to azbook's.")
        share = phase_cpu(t)
        if share is None:
            target_rows.append([f, "azbook's CPU under 5 % of the wall time", "not measured", "no `-v` line"])
        else:
            worst = max(((p, phase_cpu(d[p])) for p in ("test", "plan", "apply", "backout") if phase_cpu(d[p]) is not None),
                        key=lambda kv: kv[1])
            status = "**met**" if share < 5 else "**missed**"
            target_rows.append([f, "azbook's CPU under 5 % of the wall time", status,
                                f"test {share:.1f} % ({t['self_cpu']:.2f} s of {secs(t['wall'])}); "
                                f"highest of all commands: {worst[0]} {worst[1]:.1f} %"])
            if share >= 5 or worst[1] >= 5:
                rate = t["calls"]["total"] / t["wall"]
                why.append(
                    f"- **{f}, azbook CPU {share:.1f} % in test** ({worst[0]}: {worst[1]:.1f} %): "
                    f"{1000 * t['self_cpu'] / t['calls']['total']:.2f} ms of azbook CPU per az call "
                    f"in test, at {rate:.0f} calls a second (J / L = {jobs / lmean:.0f} at best): "
                    f"5 % allows {1000 * 0.05 / max(rate, 1e-9):.2f} ms a call. The share is per-call "
                    "cost times the call rate, so making fewer calls does not lower it; only cheaper "
                    "calls do (see *Profile* below).")
    if "large" in fleets:
        d = fleets["large"]
        peaks = {p: d[p].get("peak_mb") for p in ("test", "plan", "apply", "backout")}
        worst = max((kv for kv in peaks.items() if kv[1] is not None), key=lambda kv: kv[1], default=None)
        if worst is None:
            target_rows.append(["large", "peak memory under 100 MB", "not measured", "no `-v` line"])
        else:
            status = "**met**" if worst[1] < 100 else "**missed**"
            target_rows.append(["large", "peak memory under 100 MB", status,
                                ", ".join(f"{p} {fmt_mb(v)}" for p, v in peaks.items())])
            if worst[1] >= 100:
                why.append(f"- **large, peak memory {worst[1]:.0f} MB** in `{worst[0]}` (test "
                           f"{fmt_mb(peaks['test'])}): the storage lists, four read at once, each held "
                           "whole as text and then as trimmed items, and in `plan` kept twice; see "
                           "*Profile* below.")
    else:
        target_rows.append(["large", "peak memory under 100 MB", "not measured", "not run (`--only` left out large)"])
    if version:
        status = "**met**" if version["median"] < 20 else "**missed**"
        target_rows.append(["-", "`azbook --version` under 20 ms", status, f"median {version['median']:.1f} ms"])
    md.append(md_table(["fleet", "target", "", "measured"], target_rows))
    md.append("")
    if why:
        md.append("Why the missed targets are missed:\n")
        md.extend(why)
        md.append("")

    md.append("## Where the time went\n")
    for f in order:
        d = fleets[f]
        phases = [(p, d[p]["wall"]) for p in ("test", "plan", "apply", "backout")]
        total = sum(w for _, w in phases)
        parts = ", ".join(f"{p} {secs(w)} ({100 * w / total:.0f} %)" for p, w in phases)
        md.append(f"- **{f}**: azbook's four commands took {secs(total)}: {parts}.")
        for p, w in phases:
            x = d[p]
            busy = x["calls"]["total"] * lmean / (w * jobs)
            if x["calls"]["total"] >= 4 * jobs and busy < 0.5:
                md.append(f"  - `{p}` kept {100 * busy:.0f} % of the {jobs} az slots busy: "
                          f"{x['calls']['total']:,} calls in {secs(w)} is "
                          f"{w / x['calls']['total'] * 1000:.0f} ms a call, about one latency (L = "
                          f"{lmean * 1000:.0f} ms) per call: it runs one az call at a time and does not "
                          "use `--jobs`. With every slot busy it would take about "
                          f"{secs(x['calls']['total'] * lmean / jobs)}.")
        t = d["test"]
        by = t["calls"]["by_command"]
        per_db = by.get('sql db show', 0) + by.get('sql db tde show', 0)
        md.append(f"  - `test`: {100 * per_db / t['calls']['total']:.0f} % of its calls are per-database "
                  f"reads ({per_db / max(1, d['inventory']['D']):.0f} a database); the storage accounts cost "
                  f"{by.get('storage account list', 0)} list call(s) for {d['inventory']['A']:,} accounts.")
    md.append("")

    md.append("## The lower bound\n")
    md.append(
        "ARCHITECTURE.md (*Performance model*) gives, per subscription, `L * (2 + ceil((2V + D) / J))`: "
        "two rounds of list calls (the storage and server lists; then each server's database list), then the "
        "`2V + D` per-server and per-database calls spread over J workers. azbook runs every "
        "subscription in **one pool of J az processes**, so this benchmark uses the formula with V "
        "and D the **totals over all subscriptions**, which holds as long as the `2S` list calls fit "
        "in one round (`2S <= J`; at most 8 here):\n"
        "- the per-subscription maximum would assume J workers for each subscription (S x J az "
        "processes at once), which `--jobs J` does not allow, so it is not a bound for this run;\n"
        "- the per-subscription sum would assume the subscriptions run one after another, which "
        "adds two list rounds per subscription: a looser bound, shown below for comparison.\n\n"
        "L is the mean injected latency (latency plus half the jitter). The bound counts no "
        "process start-up, no CPU and none of the two calls that every run needs before any list: "
        "`az account show` (who is signed in) and `az account list` (which subscriptions), which "
        "azbook makes at the same time. It is a floor, not a prediction.\n")
    bh = ["fleet", "bound (totals, used)", "sum over subscriptions", "per-subscription max (needs S x J workers)",
          "ratio against the sum"]
    md.append(md_table(bh, [[f, secs(derived[f]["b"]["bound"]), secs(derived[f]["b"]["bound_summed"]),
                             secs(derived[f]["b"]["bound_sub_max"]),
                             f"{fleets[f]['test']['wall'] / derived[f]['b']['bound_summed']:.2f}"] for f in order]))
    md.append("")
    md.append("## When each call kind started (test)\n")
    md.append("Seconds after azbook's first az call when the first call of each kind started; a "
              "pipelined run starts per-database reads well before the last server's list is in.\n")
    kinds = sorted({k for f in order for k in fleets[f]["test"]["calls"]["first_start_of"]},
                   key=lambda k: min(fleets[f]["test"]["calls"]["first_start_of"].get(k, 1e9) for f in order))
    md.append(md_table(["fleet"] + [f"`{k}`" for k in kinds] + ["last call started", "test wall"],
                       [[f] + [f"{fleets[f]['test']['calls']['first_start_of'].get(k, float('nan')):.2f}" for k in kinds]
                        + [f"{fleets[f]['test']['calls']['last_start'] - fleets[f]['test']['calls']['first_start']:.2f}",
                           f"{fleets[f]['test']['wall']:.2f}"] for f in order]))
    md.append("")
    profile = Path(__file__).with_name("profile.md")
    if profile.exists() and not meta.get("quick"):
        md.append(profile.read_text().rstrip() + "\n")
    if meta.get("notes"):
        md.append("## Notes\n")
        md.extend(f"- {n}" for n in meta["notes"])
        md.append("")
    Path(md_path).write_text("\n".join(md))


# --------------------------------------------------------------------------------------------
# record: one line of the results file


def record(kind, fleet, items):
    """`@FILE` merges a JSON object from FILE; `key:=JSON` is a JSON value; `key=text` a string."""
    rec = {"kind": kind}
    if fleet != "-":
        rec["fleet"] = fleet
    for item in items:
        if item.startswith("@"):
            rec.update(json.loads(Path(item[1:]).read_text()))
        elif item.split("=", 1)[0].endswith(":"):
            key, value = item.split(":=", 1)
            rec[key] = json.loads(value)
        else:
            key, value = item.split("=", 1)
            rec[key] = value
    print(json.dumps(rec))


# --------------------------------------------------------------------------------------------


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd = args[0]
    if cmd == "inventory":
        sample = 0
        if "--sample" in args:
            i = args.index("--sample")
            sample = int(args[i + 1])
            del args[i:i + 2]
        inventory(args[1], args[2], sample)
    elif cmd == "calls":
        calls(args[1])
    elif cmd == "controlled":
        controlled(args[1])
    elif cmd == "check-test":
        check_test(args[1], args[2])
    elif cmd == "report":
        report(args[1], args[args.index("--md") + 1])
    elif cmd == "record":
        record(args[1], args[2], args[3:])
    elif cmd == "median":
        values = sorted(float(x) for x in sys.stdin.read().split())
        p90 = values[min(len(values) - 1, math.ceil(0.9 * len(values)) - 1)]
        print(json.dumps({"runs": len(values), "median": statistics.median(values), "p90": p90, "min": values[0]}))
    else:
        print(f"bench.py: unknown command {cmd}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
