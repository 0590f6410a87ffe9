"""Helpers for scripts/bench.sh: everything that reads JSON. Standard library only.

    bench.py inventory DUMP OUTDIR [--sample N]   counts of the world, and the seed's way calls
    bench.py seed-way AZ FLEET_DIR FLEET          run the seed's way; print its results line
    bench.py calls LOG                            a summary of an azsim invocation log (JSON)
    bench.py controlled DUMP                      the controlled fields of every resource (JSON)
    bench.py check-test RESULT_JSON INVENTORY [--without-scopes]
                                                  azbook test's JSON covers the whole fleet
    bench.py record KIND FLEET ITEM...            one line of the results file (see record)
    bench.py report RESULTS --md FILE             the table (stdout) and BENCHMARKS.md

RESULTS is the JSON Lines file bench.sh writes: one object per measurement.
"""

import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.dont_write_bytecode = True


def is_system_db(db):
    return "system" in (db.get("kind") or "").lower() or (db.get("sku") or {}).get("tier") == "System"


# --------------------------------------------------------------------------------------------
# inventory: the fleet's counts and the argvs of "the seed's way"

# What azsim pages an encryption scope list at when a world does not say (its dump leaves the
# setting out at this default).
DEFAULT_SCOPE_PAGE_SIZE = 2


def scope_pages(n, page_size):
    """Calls one account's scope list takes: az prints one page and a trailing nextMarker only
    when another item follows, so an account with no scope still costs one call."""
    return max(1, math.ceil(n / page_size))


def own_key(db):
    """A database with a database-level key: the only ones azbook reads again (`--expand-keys`)."""
    return bool(db.get("encryptionProtector"))


def account_key(sub, rg, name):
    return (sub.lower(), rg.lower(), name.lower())


def fleet_counts(world):
    """Per enabled subscription, what the lower bound counts: accounts (A), their scopes and the
    scope list calls they take (P, and the longest chain of pages Pmax), servers (V), user
    databases (D), those with their own key (K), managed instances (M)."""
    subs = [s["id"] for s in world["subscriptions"] if s.get("state", "Enabled") == "Enabled"]
    per_sub = {s: Counter() for s in subs}
    page_size = world["settings"].get("encryptionScopePageSize", DEFAULT_SCOPE_PAGE_SIZE)
    scopes = Counter(account_key(s["subscription"], s["resourceGroup"], s["account"])
                     for s in world.get("encryptionScopes", []))
    for a in world["storageAccounts"]:
        c, n = per_sub[a["subscription"]], scopes[account_key(a["subscription"], a["resourceGroup"], a["name"])]
        pages = scope_pages(n, page_size)
        c.update({"A": 1, "scopes": n, "P": pages, "empty": int(n == 0)})
        c["Pmax"] = max(c["Pmax"], pages)
    for s in world["sqlServers"]:
        per_sub[s["subscription"]]["V"] += 1
    for d in world["sqlDatabases"]:
        c = per_sub[d["subscription"]]
        c["masters" if is_system_db(d) else "D"] += 1
        c["K"] += int(own_key(d) and not is_system_db(d))
    for m in world.get("sqlManagedInstances", []):
        per_sub[m["subscription"]]["M"] += 1
    return per_sub, page_size


def totals(per_sub):
    """The fleet's counts: sums over subscriptions, except the longest page chain (a maximum)."""
    out = Counter()
    for c in per_sub.values():
        out.update({k: v for k, v in c.items() if k != "Pmax"})
        out["Pmax"] = max(out["Pmax"], c["Pmax"])
    return out


def arg(name, value):
    return f"--{name}={value}"


def seed_way_steps(world):
    """The seed's way: one az call per resource, in sequence, by kind. Storage accounts `show`;
    scopes through their account's list, every page of it (a chain: the marker comes from the
    page before); a server's and an instance's protector `tde-key show`; a database's
    `tde show`, and `show --expand-keys` for one with its own key (its key setup)."""
    def where(r):
        return [arg("resource-group", r["resourceGroup"]), arg("subscription", r["subscription"]), "--output=json"]

    dbs = [d for d in world["sqlDatabases"] if not is_system_db(d)]
    return {
        "storage account show": [
            ["storage", "account", "show", arg("name", a["name"])] + where(a) for a in world["storageAccounts"]],
        "storage account encryption-scope list": [
            ["storage", "account", "encryption-scope", "list", arg("account-name", a["name"]), "--include=All"]
            + where(a) for a in world["storageAccounts"]],
        "sql server tde-key show": [
            ["sql", "server", "tde-key", "show", arg("server", s["name"])] + where(s) for s in world["sqlServers"]],
        "sql mi tde-key show": [
            ["sql", "mi", "tde-key", "show", arg("managed-instance", m["name"])] + where(m)
            for m in world.get("sqlManagedInstances", [])],
        "sql db tde show": [
            ["sql", "db", "tde", "show", arg("database", d["name"]), arg("server", d["server"])] + where(d) for d in dbs],
        "sql db show --expand-keys": [
            ["sql", "db", "show", arg("name", d["name"]), arg("server", d["server"]), "--expand-keys=true"] + where(d)
            for d in dbs if own_key(d)],
    }


# A seed's way step of these kinds is a list that az pages: it is followed marker by marker.
PAGED_KINDS = {"storage account encryption-scope list"}


def evenly(items, sample):
    """`sample` items spread evenly over `items` (all of them when sample is 0 or enough)."""
    if not sample or len(items) <= sample:
        return items
    step = len(items) / sample
    return [items[int(i * step)] for i in range(sample)]


def inventory(dump_path, outdir, sample):
    world = json.loads(Path(dump_path).read_text())
    per_sub, page_size = fleet_counts(world)
    t = totals(per_sub)
    out = Path(outdir)
    sampled = {}
    with open(out / "seed-way.jsonl", "w") as f:
        for kind, argvs in seed_way_steps(world).items():
            chosen = evenly(argvs, sample)
            # A paged kind counts calls, not resources: every page of each account listed.
            total = t["P"] if kind in PAGED_KINDS else len(argvs)
            sampled[kind] = {"total": total, "resources": len(argvs), "resources_run": len(chosen)}
            for argv in chosen:
                f.write(json.dumps({"kind": kind, "argv": argv, "paged": kind in PAGED_KINDS}) + "\n")
    keys = ("A", "scopes", "P", "Pmax", "empty", "V", "D", "K", "M", "masters")
    inv = {"S": len(per_sub), **{k: t[k] for k in keys}, "scope_page_size": page_size,
           "per_subscription": {s: dict(c) for s, c in per_sub.items()}, "seed_way": sampled}
    (out / "inventory.json").write_text(json.dumps(inv, indent=1))
    print(json.dumps({k: inv[k] for k in ("S",) + keys}))


# --------------------------------------------------------------------------------------------
# seed-way: run the seed's way, timing each call


def next_marker(printed):
    """The marker az 2.91 prints as a list's last item when another page follows, else None."""
    if isinstance(printed, list) and printed and isinstance(printed[-1], dict) \
            and set(printed[-1]) == {"nextMarker"}:
        return printed[-1]["nextMarker"] or None
    return None


def run_step(az, step, times):
    """One step of the seed's way: one call, or for a paged list every page in turn, since a
    person must see them all. Writes `kind<TAB>microseconds` per call."""
    argv = step["argv"]
    while True:
        t0 = time.monotonic()
        done = subprocess.run([az, *argv], stdin=subprocess.DEVNULL, capture_output=True)
        times.write(f"{step['kind']}\t{int((time.monotonic() - t0) * 1e6)}\n")
        if done.returncode != 0:
            sys.exit(f"bench.py: the seed's way: az {' '.join(argv)} failed: {done.stderr.decode()[-400:]}")
        marker = next_marker(json.loads(done.stdout)) if step["paged"] else None
        if marker is None:
            return
        argv = step["argv"] + [arg("marker", marker)]


def machine_busy():
    """Busy CPU seconds of the whole machine (/proc/stat, USER_HZ 100)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / 100


def children_cpu():
    t = os.times()
    return t.children_user + t.children_system


def seed_way(az, fleet_dir, fleet):
    """Runs the seed's way against the fleet's world and prints its results record. Each kind's
    mean call time times its count gives the total when only a sample was run."""
    d = Path(fleet_dir)
    inv = json.loads((d / "inventory.json").read_text())
    steps = [json.loads(line) for line in (d / "seed-way.jsonl").read_text().splitlines()]
    m0, c0, t0 = machine_busy(), children_cpu(), time.monotonic()
    with open(d / "seed-way.times", "w") as times:
        for step in steps:
            run_step(az, step, times)
    wall = time.monotonic() - t0
    other = max(0.0, machine_busy() - m0 - (children_cpu() - c0))
    per = defaultdict(list)
    for line in (d / "seed-way.times").read_text().splitlines():
        kind, us = line.split("\t")
        per[kind].append(int(us) / 1e6)
    kinds = {k: {**v, "run": len(per[k]), "mean": statistics.fmean(per[k]) if per[k] else 0.0}
             for k, v in inv["seed_way"].items()}
    estimated = any(k["run"] < k["total"] for k in kinds.values())
    total = sum(k["mean"] * k["total"] for k in kinds.values()) if estimated else wall
    print(json.dumps({"kind": "seed_way", "fleet": fleet, "total": total, "measured_wall": wall,
                      "estimated": estimated, "run": sum(k["run"] for k in kinds.values()),
                      "kinds": kinds, "other_cpu": round(other, 2)}))


# --------------------------------------------------------------------------------------------
# calls: what an invocation log says


def command_of(argv):
    words = []
    for a in argv:
        if a.startswith("-"):
            break
        words.append(a)
    return " ".join(words)


SCOPE_LIST = "storage account encryption-scope list"


def option(argv, name):
    """The value of `--name=value` in an argv, or None."""
    prefix = f"--{name}="
    return next((a[len(prefix):] for a in argv if a.startswith(prefix)), None)


def scope_lists(entries):
    """How the scope lists went: the accounts listed (each once, whatever its pages) and the
    calls that asked for a further page. Proves that no account was skipped."""
    lists = [e["argv"] for e in entries if command_of(e["argv"]) == SCOPE_LIST]
    accounts = {(option(a, "subscription"), (option(a, "resource-group") or "").lower(),
                 (option(a, "account-name") or "").lower()) for a in lists}
    return {"accounts": len(accounts), "further_pages": sum(1 for a in lists if option(a, "marker"))}


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
        "scope_lists": scope_lists(entries),
    }))


# --------------------------------------------------------------------------------------------
# controlled: the fields a verdict reads, to check that backout restored them


def lower_sorted(values):
    return sorted(v.lower() for v in values or [])


def controlled(dump_path):
    """Per resource, what the verdicts read and backout writes back: an account's key source;
    a scope's source, exact key URI and state; a server's and an instance's protector and
    registered keys; a database's TDE state and its own key setup (protector, auto-rotation,
    key set, identities, federated client id)."""
    world = json.loads(Path(dump_path).read_text())
    out = {}
    for a in world["storageAccounts"]:
        key_source = ((a.get("encryption") or {}).get("keySource") or "Microsoft.Storage").lower()
        out[f"{a['subscription']}/{a['resourceGroup']}/{a['name']}"] = key_source
    for s in world.get("encryptionScopes", []):
        out[f"{s['subscription']}/{s['resourceGroup']}/{s['account']}/scope/{s['name']}"] = [
            s["source"].lower(), (s.get("keyVaultProperties") or {}).get("keyUri"), s.get("state")]
    for kind, items in (("server", world["sqlServers"]), ("mi", world.get("sqlManagedInstances", []))):
        for s in items:
            p = s.get("protector") or {}
            out[f"{s['subscription']}/{s['resourceGroup']}/{kind}/{s['name']}"] = [
                p.get("serverKeyType"), p.get("uri"), p.get("autoRotationEnabled"),
                lower_sorted(k["uri"] for k in s.get("keys") or [])]
    for d in world["sqlDatabases"]:
        identity = (d.get("identity") or {}).get("userAssignedIdentities") or {}
        out[f"{d['subscription']}/{d['resourceGroup']}/{d['server']}/{d['name']}"] = [
            d.get("tdeState"), d.get("encryptionProtector"), d.get("encryptionProtectorAutoRotation"),
            lower_sorted(d.get("keys")), lower_sorted(identity), d.get("federatedClientId")]
    print(json.dumps(out, sort_keys=True))


# --------------------------------------------------------------------------------------------
# check-test: azbook test's JSON covers the whole fleet, with no error


SCOPE_PLAYBOOK = "storage-encryption-scope-mmk"


def check_test(result_path, inventory_path, without_scopes=False):
    """Every resource of the fleet has a result, none is an error, and some are noncompliant;
    `--without-scopes`: the run left out the scope playbook, so no scope is expected."""
    inv = json.loads(Path(inventory_path).read_text())
    doc = json.loads(Path(result_path).read_text())
    problems = []
    scopes = 0 if without_scopes else inv["scopes"]
    expected = inv["A"] + scopes + inv["V"] + inv["M"] + inv["D"] + inv["masters"]
    if len(doc["results"]) != expected:
        problems.append(f"{len(doc['results'])} results, expected {expected}")
    judged = sum(1 for r in doc["results"] if r["playbook"] == SCOPE_PLAYBOOK)
    if judged != scopes:
        problems.append(f"{judged} encryption scopes judged, expected {scopes}")
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


def work(c):
    """W: the calls after a subscription's three lists. Per server its protector and its
    database list (2V); per database its TDE state (D) and, with its own key, its key setup (K);
    per instance its protector (M); per account one scope list call a page (P)."""
    return 2 * c.get("V", 0) + c.get("D", 0) + c.get("K", 0) + c.get("M", 0) + c.get("P", 0)


def first_round(c):
    """N1: the calls that need nothing but a list, so the only ones that can fill the first
    round after the lists: per server two, per instance one, per account its first scope page
    (none when the scope playbook is left out, P = 0)."""
    return 2 * c.get("V", 0) + c.get("M", 0) + (c.get("A", 0) if c.get("P") else 0)


def chain(c):
    """C: the longest chain of calls after the lists, each waiting for the one before: a
    server's database list, then a database's reads (2); an account's scope pages (Pmax)."""
    return max(1 if first_round(c) else 0, 2 if c.get("D") else 0, c.get("Pmax", 0))


def rounds_after_lists(c, jobs):
    """R = max(C, 1 + ceil((W - min(J, N1)) / J)): no fewer rounds than the longest chain,
    nor than the work spread over J workers when the first round holds only N1 calls (which,
    when N1 >= J, is ceil(W / J))."""
    w = work(c)
    if not w:
        return 0
    return max(chain(c), 1 + math.ceil((w - min(jobs, first_round(c))) / jobs))


def without_scopes(c):
    """The counts of a run without the scope playbook: no scope list at all."""
    return {**c, "P": 0, "Pmax": 0}


def bounds(inv, jobs, lat, scopes=True):
    """The lower bound of ARCHITECTURE.md (Performance model), `L * (2 + R)`: the sign-in round
    and the list round, then R rounds, for S subscriptions sharing one pool of J workers; beside
    it the two per-subscription variants, and the calls the bound counts."""
    fleet = {k: inv[k] for k in ("A", "P", "Pmax", "V", "D", "K", "M")}
    subs = list(inv["per_subscription"].values())
    if not scopes:
        fleet, subs = without_scopes(fleet), [without_scopes(c) for c in subs]
    return {
        "bound": lat * (2 + rounds_after_lists(fleet, jobs)),
        "bound_summed": lat * (1 + sum(1 + rounds_after_lists(c, jobs) for c in subs)),
        "bound_sub_max": lat * (2 + max(rounds_after_lists(c, jobs) for c in subs)),
        "rounds": rounds_after_lists(fleet, jobs), "W": work(fleet), "N1": first_round(fleet),
        "C": chain(fleet),
        # az account show and az account list (--all-subscriptions), then three lists a subscription.
        "min_calls": 2 + 3 * inv["S"] + work(fleet),
    }


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


def reproduce(meta):
    """The command of the run, without its `--note` texts (they are under *Notes*)."""
    command = meta["command"]
    for note in meta.get("notes", []):
        command = command.replace(f" --note {note}", "")
    return command


def started(seconds):
    """A call kind's first start, or '-' for a kind this fleet never called."""
    return "-" if seconds is None else f"{seconds:.2f}"


def md_table(head, body):
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in body]
    return "\n".join(lines)


def call_shares(d):
    """Where `test`'s calls went, one line: the per-database reads and the scope lists, the two
    kinds that grow with the fleet, against the one list call that covers every account."""
    t, inv = d["test"], d["inventory"]
    by, total = t["calls"]["by_command"], t["calls"]["total"]
    per_db = by.get("sql db tde show", 0) + by.get("sql db show", 0)
    scope = by.get(SCOPE_LIST, 0)
    return (f"  - `test`: {100 * per_db / total:.0f} % of its calls are per-database reads ({per_db:,} for "
            f"{inv['D']:,} databases: one each, one more for the {inv['K']:,} with their own key); "
            f"{100 * scope / total:.0f} % are scope lists ({scope:,} for {inv['A']:,} accounts and "
            f"{inv['scopes']:,} scopes); the storage accounts themselves cost "
            f"{by.get('storage account list', 0)} list call(s).")


def scope_pairs(d):
    """The runs with every playbook (A) and without the scope playbook (B), pair by pair in the
    order they ran (A B A B ...): the first A is the `test` measured above."""
    pairs, i = [], 1
    while f"without-scopes-{i}" in d:
        a = d["test"] if i == 1 else d.get(f"test-again-{i}")
        if a is None:
            break
        pairs.append((a, d[f"without-scopes-{i}"]))
        i += 1
    return pairs


def scope_cost_row(f, d, jobs, lmean):
    """One fleet's row of *What the per-account scope list costs*, or None when not measured."""
    pairs = scope_pairs(d)
    if not pairs:
        return None
    inv = d["inventory"]
    ratios = [a["wall"] / b["wall"] for a, b in pairs]
    extra_s = statistics.median(a["wall"] - b["wall"] for a, b in pairs)
    extra_calls = statistics.median(a["calls"]["total"] - b["calls"]["total"] for a, b in pairs)
    listed = min(a["calls"]["scope_lists"]["accounts"] for a, _ in pairs)
    every = "every one" if listed == inv["A"] else f"**{listed:,} of {inv['A']:,}**"
    predicted = bounds(inv, jobs, lmean)["bound"] / bounds(inv, jobs, lmean, scopes=False)["bound"]
    spread = f"{min(ratios):.2f} to {max(ratios):.2f}" if len(ratios) > 1 else "one pair"
    return [f, f"{inv['A']:,} ({inv['empty']:,})", f"{inv['scopes']:,}",
            f"{inv['P']:,} ({inv['P'] - inv['A']:,})", every, str(len(pairs)),
            secs(statistics.median(a["wall"] for a, _ in pairs)),
            secs(statistics.median(b["wall"] for _, b in pairs)),
            f"+{secs(extra_s)}, +{extra_calls:,.0f} calls",
            f"**{statistics.median(ratios):.2f}** ({spread})", f"{predicted:.2f}"]


def scope_cost_section(fleets, order, jobs, lmean):
    """*What the per-account scope list costs*: every playbook against the other four, in one run."""
    rows = [r for f in order if (r := scope_cost_row(f, fleets[f], jobs, lmean))]
    md = ["## What the per-account scope list costs\n",
          "`storage-encryption-scope-mmk` reads every account's scopes: one `az storage account "
          "encryption-scope list --include=All` per account, and one more with `--marker` per further "
          "page (az 2.91 prints one page; azsim's default page holds 2 scopes), the pages of one account "
          "one after another. **azbook never skips an account on a guess**: an account's own key source "
          "says nothing about its scopes, so every account is listed, those that hold no scope too. "
          "In this run `azbook test --all-subscriptions` with every playbook (A) alternated with the "
          "same test without the scope playbook (B: `--playbook storage-account-mmk --playbook "
          "sql-server-tde-protector-mmk --playbook sql-managed-instance-tde-protector-mmk --playbook "
          "sql-database-tde-mmk`), A B A B, on the same fleet; the ratio is taken pair by pair, and "
          "the medians are quoted.\n"]
    if not rows:
        return md + ["Not measured in this run.\n"]
    head = ["fleet", "accounts (with no scope)", "scopes", "scope list calls (further pages)",
            "accounts listed", "pairs", "A: every playbook", "B: without scopes", "A - B",
            "A / B (range)", "bounds' A / B"]
    md += [md_table(head, rows), "",
           "*accounts listed* counts the distinct accounts in A's `encryption-scope list` calls "
           "(azsim's invocation log). *A - B* is the median difference in wall time and in az "
           "calls; the calls are exactly the scope list calls. *bounds' A / B* is the ratio of the "
           "two lower bounds (*The lower bound* below): what the extra calls must cost at the "
           "least on J workers.\n"]
    return md


def lower_bound_section(fleets, order, derived, jobs):
    """*The lower bound*: the formula, its terms per fleet, and the per-subscription variants."""
    md = ["## The lower bound\n",
          "ARCHITECTURE.md (*Performance model*) gives `L * (2 + R)`, `R = max(C, ceil(W / J))`: a "
          "round for `az account show` (with `az account list`, at once), a round for the "
          "subscriptions' lists (storage accounts, SQL servers, managed instances), then the W calls "
          "that follow them spread over J workers, and never fewer rounds than the longest chain C of "
          "calls that each wait for the one before (a server's database list, then a database's "
          "reads: 2; an account's scope pages: as many as its pages). When fewer than J calls can "
          "start as soon as the lists are in (N1: two per server, one per instance, each account's "
          "first scope page), that round cannot be full, and `1 + ceil((W - N1) / J)` replaces "
          "`ceil(W / J)`. azbook runs every subscription in **one pool of J az processes**, so this "
          "benchmark uses the formula with the counts **summed over all subscriptions** (C the "
          "longest), which holds as long as the `3S` list calls fit in one round (`3S <= J`; at "
          "most 12 here):\n",
          "- the per-subscription maximum would assume J workers for each subscription (S x J az "
          "processes at once), which `--jobs J` does not allow, so it is not a bound for this run;",
          "- the per-subscription sum would assume the subscriptions run one after another, which "
          "adds a list round per subscription: a looser bound, shown below for comparison.\n",
          "L is the mean injected latency (latency plus half the jitter). The bound counts no "
          "process start-up and no CPU. It is a floor, not a prediction.\n"]
    head = ["fleet", "W", "N1", "C", "R", "bound (totals, used)", "sum over subscriptions",
            "per-subscription max (needs S x J workers)", "ratio against the sum"]
    md.append(md_table(head, [
        [f, f"{b['W']:,}", f"{b['N1']:,}", b["C"], f"{b['rounds']:,}", secs(b["bound"]),
         secs(b["bound_summed"]), secs(b["bound_sub_max"]),
         f"{fleets[f]['test']['wall'] / b['bound_summed']:.2f}"]
        for f in order for b in [derived[f]["b"]]]))
    md.append("")
    return md


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
            f"{f}", f"{inv['S']} / {inv['A']:,} ({inv['scopes']:,}) / {inv['V']} / {inv['D']:,} ({inv['K']:,}) / {inv['M']}",
            f"{t['calls']['total']:,} ({b['min_calls']:,})", secs(t["wall"]), secs(b["bound"]), f"{ratio:.2f}",
            seed_txt, "n/a" if speedup is None else f"{speedup:.0f}x",
            secs(d["plan"]["wall"]), f"{secs(d['apply']['wall'])} + {secs(d['backout']['wall'])} = {secs(ab)}",
            f"{t['self_cpu']:.2f} s ({fmt_pct(cpu_share)})" if t.get("self_cpu") is not None else "n/a",
            fmt_mb(max((d[p].get("peak_mb") or 0) for p in ("test", "plan", "apply", "backout")) or None),
        ])
    header = ["fleet", "subs / accounts (scopes) / servers / databases (own key) / instances",
              "test az calls (bound's)", "test",
              "lower bound", "ratio", "seed's way", "speed-up", "plan", "apply + backout",
              "azbook CPU (test)", "azbook peak memory (any command)"]

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
    md.append(f"- To reproduce: `{reproduce(meta)}`\n")

    md.append("## Results\n")
    md.append(md_table(header, rows))
    md.append("")
    md.append("- **test az calls**: the calls azbook made for `test --all-subscriptions`; in brackets the "
              "calls the lower bound counts (`2 + 3S + W`: `az account show` and `az account list`, three "
              "lists a subscription, then `W = 2V + D + K + M + P`, with P the scope list calls: one per "
              "account and one per further page).")
    md.append("- **lower bound**: ARCHITECTURE.md, *Performance model*: `L * (2 + max(C, ceil(W / J)))`, "
              "with the counts summed over all subscriptions and C the longest chain of calls after the "
              "lists (see *The lower bound* below); **ratio** is test / bound.")
    md.append("- **seed's way**: one `az` call per resource, in sequence: `az storage account show` per "
              "account, `az storage account encryption-scope list --include=All` per account and again "
              "with `--marker` for each further page, `az sql server tde-key show` per server, "
              "`az sql mi tde-key show` per instance, `az sql db tde show` per database (not `master`) "
              "and `az sql db show --expand-keys` per database with its own key, against the same world "
              "and latency; the list calls a person needs to find the other names are not counted, "
              "which favours the seed's way. Where it says *est.*, an evenly spread sample of each kind "
              "(for scope lists: of accounts, every page of each) was run and each kind's mean time per "
              "call multiplied by its count of calls.")
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
                                 for k, v in seed["kinds"].items() if v["total"])
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

    def left_out(f):
        """Why a fleet has no figures: `--only`, and the run's note when one names the fleet."""
        see = "; see *Notes*" if any(f in n for n in meta.get("notes", [])) else ""
        return f"not run (`--only` left out {f}{see})"
    for f in ("medium", "large"):
        if f not in fleets:
            for name in ("test within 1.2x the lower bound", "at least 15x faster than the seed's way",
                         "azbook's CPU under 5 % of the wall time"):
                target_rows.append([f, name, "not measured", left_out(f)])
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
                f"{b['min_calls']:,}; what is over the bound is az processes that are not sleeping "
                f"(the *az CPU* column), rounds that are not full (a chain's next call waits for the one "
                f"before) and the shared, loaded machine (*other CPU*).")
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
        target_rows.append(["large", "peak memory under 100 MB", "not measured",
                            left_out("large")])
    if version:
        status = "**met**" if version["median"] < 20 else "**missed**"
        target_rows.append(["-", "`azbook --version` under 20 ms", status, f"median {version['median']:.1f} ms"])
    md.append(md_table(["fleet", "target", "", "measured"], target_rows))
    md.append("")
    if why:
        missed = any(r[2] == "**missed**" for r in target_rows)
        md.append("Why the missed targets are missed:\n" if missed else
                  "Every target measured is met; where one command is over a target's limit:\n")
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
        md.append(call_shares(d))
    md.append("")
    md.extend(scope_cost_section(fleets, order, jobs, lmean))
    md.extend(lower_bound_section(fleets, order, derived, jobs))
    md.append("## When each call kind started (test)\n")
    md.append("Seconds after azbook's first az call when the first call of each kind started; a "
              "pipelined run starts per-database reads well before the last server's list is in.\n")
    kinds = sorted({k for f in order for k in fleets[f]["test"]["calls"]["first_start_of"]},
                   key=lambda k: min(fleets[f]["test"]["calls"]["first_start_of"].get(k, 1e9) for f in order))
    md.append(md_table(["fleet"] + [f"`{k}`" for k in kinds] + ["last call started", "test wall"],
                       [[f] + [started(fleets[f]["test"]["calls"]["first_start_of"].get(k)) for k in kinds]
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
        check_test(args[1], args[2], without_scopes="--without-scopes" in args[3:])
    elif cmd == "seed-way":
        seed_way(args[1], args[2], args[3])
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
