"""The conformance suite: the real azure-cli against azsim (see scripts/conformance.sh).

Run with az's own Python (it imports jmespath and the playbooks' TOML reader from there):

    python run.py --az AZ --az-python PY --azsim AZSIM --azbook AZBOOK --work DIR
                  [--argv-file FILE] [--jobs N]

Stages, each a function below, in this order:
  setup      `azsim serve` over a world with every edge case (the demo fleet, plus a disabled
             subscription and the service principal as the signed-in user), and one logged-in
             az configuration (custom cloud, core.instance_discovery=false, service-principal
             login) that every az call gets a fresh copy of;
  reads      every read command the playbooks use, real az against the ARM face and the CLI face
             against the same world: stdout JSON, exit code and stderr must be equal, or the
             difference listed in allowlist.json;
  mutations  every mutating argv the playbooks emit for the fleet (each noncompliant target's
             implementation then backout steps), plus the changes and errors the playbooks do
             not reach on this fleet, with both faces on identical worlds: printed output, exit
             codes, stderr, and in the end the two worlds (`azsim dump`) must agree;
  argcheck   every argv (the rendered plan, or --argv-file) through the real az's parser and
             validators, logged out, in one Python process; negative controls must be rejected;
  protector  whether `az sql db list` prints a database's `encryptionProtector` (DESIGN 1);
  faults     ARM-only checks: a 429 that az retries (Retry-After) and an injected 403;
  runbook    the hook for the full runbook with azbook driving the real az: today `azbook test`
             through the real az must report exactly what it reports through the CLI face, and
             change nothing. Extend it with plan, apply, test, backout, test when azbook has them.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import compare  # noqa: E402
import plan  # noqa: E402

APP_ID = "0a5c1e77-4b1d-4e8a-9f3c-2d6b8e1a7c50"
SECRET = "azsim-any-secret"
CLOUD = "AzsimCloud"
RETIRED = {"id": "e8b3d1f0-6a2c-4f7e-9d15-3c8a0b6e2f47", "name": "Contoso Retired", "state": "Disabled"}
KEY = "0123456789abcdef0123456789abcdef"


class Failure(Exception):
    pass


class Suite:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.work).resolve()
        self.azsim = args.azsim
        self.failures = []
        self.notes = []
        self.timings = {}
        self.allow = compare.AllowList(HERE / "allowlist.json")
        self.serves = []
        self._counter = 0
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------------
    # plumbing

    def fail(self, stage, what):
        self.failures.append(f"[{stage}] {what}")

    def fresh_dir(self, prefix):
        with self._lock:
            self._counter += 1
            n = self._counter
        path = self.work / "tmp" / f"{prefix}-{n}"
        path.mkdir(parents=True)
        return path

    def azsim_run(self, args, world, stdin=None, check=True):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AZSIM_WORLD": str(world),
               "AZSIM_LOG": str(world) + ".calls.jsonl"}
        done = subprocess.run([self.azsim, *args], env=env, input=stdin, capture_output=True,
                              text=True, timeout=120)
        if check and done.returncode != 0:
            raise Failure(f"azsim {' '.join(args)}: exit {done.returncode}: {done.stderr}")
        return done

    def cli_face(self, argv, world):
        """azsim's CLI face on argv (which starts with "az"): (exit code, stdout, stderr)."""
        done = self.azsim_run(["az", *argv[1:]], world, check=False)
        return done.returncode, done.stdout, done.stderr

    def guard_env(self, config_dir, ca=None):
        """DESIGN section 8: az never reaches the network, whatever this machine has."""
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        env = {k: v for k, v in os.environ.items() if k in keep}
        dead = "http://127.0.0.1:9"
        env.update({
            "AZURE_CONFIG_DIR": str(config_dir),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
            "AZURE_CORE_NO_COLOR": "true",
            "HTTPS_PROXY": dead, "HTTP_PROXY": dead, "https_proxy": dead, "http_proxy": dead,
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        if ca:
            env["REQUESTS_CA_BUNDLE"] = str(ca)
        return env

    def write_version_check(self, config_dir):
        now = str(datetime.datetime.now())
        versions = {k: {"local": v["local"], "pypi": v["local"]} for k, v in self.local_versions.items()}
        (Path(config_dir) / "versionCheck.json").write_text(
            json.dumps({"versions": versions, "update_time": now}))

    def new_config(self, template=None):
        path = self.fresh_dir("azcfg")
        if template:
            shutil.rmtree(path)
            shutil.copytree(template, path)
        self.write_version_check(path)
        return path

    def real_az(self, argv, config=None, ca=None, timeout=300):
        """The real az on argv in a fresh copy of the logged-in configuration."""
        config = config or self.new_config(self.template)
        done = subprocess.run([self.args.az, *argv[1:]], env=self.guard_env(config, ca or self.ca),
                              capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout, done.stderr

    def start_serve(self, world, name, extra=()):
        port_file = self.work / f"{name}.port"
        ca = self.work / f"{name}.ca.pem"
        log = open(self.work / f"{name}.serve.log", "w")
        env = {"PATH": os.environ.get("PATH", ""), "AZSIM_WORLD": str(world),
               "AZSIM_LOG": str(world) + ".calls.jsonl"}
        proc = subprocess.Popen([self.azsim, "serve", "--port-file", str(port_file),
                                 "--cert-out", str(ca), *extra],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        self.serves.append(proc)
        deadline = time.time() + 30
        while not port_file.exists():
            if proc.poll() is not None or time.time() > deadline:
                raise Failure(f"azsim serve did not start: see {log.name}")
            time.sleep(0.05)
        return int(port_file.read_text()), ca

    def stop(self):
        for proc in self.serves:
            proc.terminate()
        for proc in self.serves:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def timed(self, name, fn):
        start = time.monotonic()
        print(f"== {name}", file=sys.stderr, flush=True)
        try:
            fn()
        except Failure as e:
            self.fail(name, str(e))
        self.timings[name] = round(time.monotonic() - start, 1)
        print(f"   {name}: {self.timings[name]} s", file=sys.stderr, flush=True)

    def parallel(self, fn, items):
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.args.jobs) as pool:
            return list(pool.map(fn, items))

    # ----------------------------------------------------------------------------------------
    # setup

    def world_json(self):
        """The demo fleet, with a disabled subscription (hidden by `az account list`) and the
        service principal as the signed-in identity on the custom cloud, as az will print."""
        seed_db = self.work / "seed.db"
        self.azsim_run(["seed", "--fleet", "demo"], seed_db)
        world = json.loads(self.azsim_run(["dump"], seed_db).stdout)
        world["user"] = {"name": APP_ID, "type": "servicePrincipal"}
        world["settings"]["cloudName"] = CLOUD
        world["subscriptions"].append(dict(RETIRED, isDefault=False))
        return world

    def load(self, world_file, world):
        self.azsim_run(["load", "-"], world_file, stdin=json.dumps(world))

    def setup(self):
        self.local_versions = json.loads(subprocess.run(
            [self.args.az_python, "-c",
             "import json; from azure.cli.core.util import _get_local_versions; "
             "print(json.dumps(_get_local_versions()))"],
            capture_output=True, text=True, check=True).stdout)
        self.notes.append(f"azure-cli {self.local_versions['azure-cli']['local']} "
                          f"(core {self.local_versions['core']['local']})")
        self.world = self.world_json()
        (self.work / "world.json").write_text(json.dumps(self.world, indent=1))
        self.arm_world = self.work / "arm.db"
        self.cli_world = self.work / "cli.db"
        self.load(self.arm_world, self.world)
        self.load(self.cli_world, self.world)
        self.port, self.ca = self.start_serve(self.arm_world, "arm")
        self.base = f"https://127.0.0.1:{self.port}"
        template = self.new_config()
        steps = [
            ["az", "cloud", "register", "--name", CLOUD,
             f"--endpoint-resource-manager={self.base}/",
             f"--endpoint-active-directory={self.base}",
             "--endpoint-active-directory-resource-id=https://management.core.windows.net/",
             "--endpoint-active-directory-graph-resource-id=https://graph.windows.net/",
             "--endpoint-microsoft-graph-resource-id=https://graph.microsoft.com/",
             "--endpoint-management=https://management.core.windows.net/",
             "--suffix-storage-endpoint=core.windows.net",
             "--suffix-keyvault-dns=.vault.azure.net",
             "--suffix-sql-server-hostname=.database.windows.net",
             "--skip-endpoint-discovery"],
            ["az", "cloud", "set", "--name", CLOUD],
            ["az", "config", "set", "core.instance_discovery=false"],
            ["az", "login", "--service-principal", f"--username={APP_ID}", f"--password={SECRET}",
             f"--tenant={self.world['tenantId']}", "--output=none"],
        ]
        for argv in steps:
            code, out, err = self.real_az(argv, config=template)
            if code != 0:
                raise Failure(f"{' '.join(argv[:4])}: exit {code}: {err}")
        self.template = template
        log = (Path(str(self.arm_world) + ".calls.jsonl")).read_text().splitlines()
        token_calls = [line for line in log if "/oauth2/v2.0/token" in line]
        if not token_calls:
            raise Failure("az login never asked azsim's token endpoint for a token")

    # ----------------------------------------------------------------------------------------
    # reads

    def read_argvs(self):
        w = self.world
        enabled = [s["id"] for s in w["subscriptions"] if s.get("state", "Enabled") == "Enabled"]
        default = next(s["id"] for s in w["subscriptions"] if s.get("isDefault"))
        argvs = [["az", "account", "show"], ["az", "account", "list"],
                 ["az", "account", "list", "--all"]]
        reads = [(a, default) for a in argvs]
        for sub in enabled:
            reads += [(["az", "storage", "account", "list"], sub),
                      (["az", "sql", "server", "list"], sub)]
        groups = sorted({(a["subscription"], a["resourceGroup"]) for a in w["storageAccounts"]})
        reads += [(["az", "storage", "account", "list", f"--resource-group={g}"], s) for s, g in groups]
        reads += [(["az", "sql", "server", "list", f"--resource-group={s['resourceGroup']}"],
                   s["subscription"]) for s in w["sqlServers"]]
        for a in w["storageAccounts"]:
            reads.append((["az", "storage", "account", "show", f"--name={a['name']}",
                           f"--resource-group={a['resourceGroup']}"], a["subscription"]))
        for s in w["sqlServers"]:
            where = [f"--resource-group={s['resourceGroup']}"]
            reads += [(["az", "sql", "server", "show", f"--name={s['name']}", *where], s["subscription"]),
                      (["az", "sql", "server", "tde-key", "show", f"--server={s['name']}", *where], s["subscription"]),
                      (["az", "sql", "server", "key", "list", f"--server={s['name']}", *where], s["subscription"]),
                      (["az", "sql", "db", "list", f"--server={s['name']}", *where], s["subscription"])]
        for d in w["sqlDatabases"]:
            where = [f"--server={d['server']}", f"--resource-group={d['resourceGroup']}"]
            reads += [(["az", "sql", "db", "show", f"--name={d['name']}", *where], d["subscription"]),
                      (["az", "sql", "db", "tde", "show", f"--database={d['name']}", *where], d["subscription"])]
        # Errors az reports from the service: the exit codes and texts must agree too.
        prod = default
        reads += [
            (["az", "storage", "account", "show", "--name=stnosuch01", "--resource-group=rg-payments"], prod),
            (["az", "storage", "account", "list", "--resource-group=rg-nosuch"], prod),
            (["az", "sql", "server", "tde-key", "show", "--server=sql-nosuch", "--resource-group=rg-web"], prod),
            (["az", "sql", "db", "show", "--name=nosuch", "--server=sql-web-prod", "--resource-group=rg-web"], prod),
            (["az", "sql", "db", "tde", "show", "--database=nosuch", "--server=sql-web-prod", "--resource-group=rg-web"], prod),
        ]
        return [plan.finish(a, s) for a, s in reads]

    def compare_call(self, stage, scope, argv, real, sim):
        """Compares (exit code, stdout, stderr) of the real az and the CLI face."""
        command = " ".join(a for a in argv[1:] if not a.startswith("-"))
        label = " ".join(argv[1:])
        (rc_r, out_r, err_r), (rc_s, out_s, err_s) = real, sim
        record = {"argv": argv, "real": {"exit": rc_r, "stderr": err_r},
                  "cli": {"exit": rc_s, "stderr": err_s}}
        if rc_r != rc_s:
            self.fail(stage, f"{label}: exit {rc_r} with the real az, {rc_s} with the CLI face\n"
                      f"  real stderr: {err_r.strip()}\n  cli stderr:  {err_s.strip()}")
            return record
        if err_r != err_s:
            diffs = [("stderr", err_r, err_s)]
            bad, explained = self.allow.split("stderr", command, diffs)
            if bad:
                self.fail(stage, f"{label}: stderr differs\n  real: {err_r!r}\n  cli:  {err_s!r}")
            record["explained"] = explained
        if rc_r == 0 and (out_r.strip() or out_s.strip()):
            try:
                jr, js = json.loads(out_r), json.loads(out_s)
            except json.JSONDecodeError as e:
                self.fail(stage, f"{label}: output is not JSON ({e})")
                return record
            bad, explained = self.allow.split(scope, command, compare.differences(jr, js))
            record.setdefault("explained", []).extend(explained)
            for path, vr, vs in bad:
                self.fail(stage, f"{label}: {path}: real az {json.dumps(vr)}, CLI face {json.dumps(vs)}")
        return record

    def reads(self):
        argvs = self.read_argvs()

        def one(argv):
            real = self.real_az(argv)
            sim = self.cli_face(argv, self.cli_world)
            return self.compare_call("reads", "read", argv, real, sim)

        records = self.parallel(one, argvs)
        (self.work / "reads.json").write_text(json.dumps(records, indent=1))
        commands = sorted({" ".join(a for a in r["argv"][1:] if not a.startswith("-")) for r in records})
        self.notes.append(f"reads: {len(records)} calls of {len(commands)} commands compared: "
                          + ", ".join(commands))

    # ----------------------------------------------------------------------------------------
    # mutations

    def rendered_plan(self):
        renderer = plan.Renderer(plan.cli_face(self.azsim, str(self.plan_world), str(self.work / "plan.calls.jsonl")))
        playbooks = plan.load_playbooks(sorted((HERE.parent.parent / "playbooks").glob("*.toml")))
        enabled = [s["id"] for s in self.world["subscriptions"] if s.get("state", "Enabled") == "Enabled"]
        changes = []
        for pb in playbooks:
            for sub in enabled:
                changes += renderer.plan(pb, sub)
        return changes

    def extra_chains(self):
        """Changes and failures the playbooks do not reach on the demo fleet."""
        w = {s["name"]: s for s in self.world["sqlServers"]}
        prod_web, ops, fin = w["sql-web-prod"], w["sql-ops-prod"], w["sql-finance-dev"]

        def at(server, *argv):
            return plan.finish(["az", *argv, f"--server={server['name']}",
                                f"--resource-group={server['resourceGroup']}"], server["subscription"])
        new_kid = f"https://kv-web-prod.vault.azure.net/keys/sql-tde/{KEY}"
        versionless = "https://kv-ops-prod.vault.azure.net/keys/sql-tde"
        fin_sub = fin["subscription"]
        uai = (f"/subscriptions/{prod_web['subscription']}/resourceGroups/rg-identity/providers/"
               "Microsoft.ManagedIdentity/userAssignedIdentities/id-stlogs01-cmk")
        prod_sub = prod_web["subscription"]
        return [
            {"resource": "new key on sql-web-prod", "steps": [
                at(prod_web, "sql", "server", "key", "create", f"--kid={new_kid}"),
                at(prod_web, "sql", "server", "key", "show", f"--kid={new_kid}"),
                at(prod_web, "sql", "server", "tde-key", "set", "--server-key-type=AzureKeyVault",
                   f"--kid={new_kid}", "--auto-rotation-enabled=true"),
                at(prod_web, "sql", "server", "tde-key", "show"),
                at(prod_web, "sql", "server", "tde-key", "set", "--server-key-type=ServiceManaged"),
            ]},
            {"resource": "versionless key on sql-ops-prod", "steps": [
                at(ops, "sql", "server", "key", "create", f"--kid={versionless}"),
                at(ops, "sql", "server", "key", "list"),
                at(ops, "sql", "server", "tde-key", "set", "--server-key-type=AzureKeyVault",
                   f"--kid={versionless}"),
                at(ops, "sql", "server", "tde-key", "set", "--server-key-type=ServiceManaged"),
            ]},
            {"resource": "encryption identity on stlogs01", "steps": [
                plan.finish(["az", "storage", "account", "update", "--name=stlogs01", "--resource-group=rg-ops",
                             "--encryption-key-source=Microsoft.Keyvault",
                             "--encryption-key-vault=https://kv-ops-prod.vault.azure.net/",
                             "--encryption-key-name=st-logs-cmk", f"--key-vault-user-identity-id={uai}"], prod_sub),
                # An empty value keeps the current one (azure-cli takes only non-empty values).
                plan.finish(["az", "storage", "account", "update", "--name=stlogs01", "--resource-group=rg-ops",
                             "--key-vault-user-identity-id=",
                             "--key-vault-federated-client-id=5e1d7c3a-9b2f-4e8d-a6c4-0f3b2d1e9a87"], prod_sub),
                plan.finish(["az", "storage", "account", "update", "--name=stlogs01", "--resource-group=rg-ops",
                             "--encryption-key-source=Microsoft.Storage"], prod_sub),
            ]},
            {"resource": "refused changes", "steps": [
                at(fin, "sql", "server", "tde-key", "set", "--server-key-type=AzureKeyVault",
                   f"--kid=https://kv-finance-dev.vault.azure.net/keys/sql-tde/{KEY}"),
                at(fin, "sql", "server", "tde-key", "set", "--server-key-type=AzureKeyVault"),
                at(fin, "sql", "server", "key", "create", "--kid=https://example.com/keys/k/1"),
                plan.finish(["az", "sql", "db", "tde", "set", "--database=master", f"--server={fin['name']}",
                             f"--resource-group={fin['resourceGroup']}", "--status=Enabled"], fin_sub),
                plan.finish(["az", "storage", "account", "update", "--name=stfinance02",
                             "--resource-group=rg-finance-dev", "--encryption-key-source=Microsoft.Storage"], fin_sub),
                plan.finish(["az", "storage", "account", "update", "--name=stnosuch01",
                             "--resource-group=rg-payments", "--encryption-key-source=Microsoft.Storage"], prod_sub),
            ]},
        ]

    def mutations(self):
        self.plan_world = self.work / "plan.db"
        self.load(self.plan_world, self.world)
        self.plan_changes = self.rendered_plan()
        (self.work / "plan.json").write_text(json.dumps(self.plan_changes, indent=1))
        chains = [{"resource": c["resource"], "steps": [s["argv"] for s in c["steps"]]}
                  for c in self.plan_changes] + self.extra_chains()
        world = json.loads(json.dumps(self.world))
        st = next(a for a in self.world["storageAccounts"] if a["name"] == "stfinance02")
        fin_account = (f"/subscriptions/{st['subscription']}/resourceGroups/{st['resourceGroup']}"
                       f"/providers/Microsoft.Storage/storageAccounts/{st['name']}")
        # An injected 403 on one account's update: both faces must report it alike.
        world["faults"] = [{"command": "storage account update", "argvContains": "stfinance02",
                            "error": {"code": "AuthorizationFailed", "message":
                                      "The client '" + APP_ID + "' with object id '" + APP_ID + "' does not have "
                                      "authorization to perform action 'Microsoft.Storage/storageAccounts/write' "
                                      "over scope '" + fin_account + "' or the scope is invalid. "
                                      "If access was recently granted, please refresh your credentials."}}]
        self.load(self.arm_world, world)
        self.load(self.cli_world, world)
        start = json.loads(self.azsim_run(["dump"], self.cli_world).stdout)

        def run_chain(chain):
            records = []
            for argv in chain["steps"]:
                real = self.real_az(argv, timeout=1200)
                sim = self.cli_face(argv, self.cli_world)
                records.append(self.compare_call("mutations", "mutation-output", argv, real, sim))
            return {"resource": chain["resource"], "steps": records}

        results = self.parallel(run_chain, chains)
        (self.work / "mutations.json").write_text(json.dumps(results, indent=1))
        arm = json.loads(self.azsim_run(["dump"], self.arm_world).stdout)
        cli = json.loads(self.azsim_run(["dump"], self.cli_world).stdout)
        (self.work / "world.after.arm.json").write_text(json.dumps(arm, indent=1))
        (self.work / "world.after.cli.json").write_text(json.dumps(cli, indent=1))
        bad, _ = self.allow.split("world", None, compare.differences(arm, cli))
        for path, va, vc in bad:
            self.fail("mutations", f"worlds differ at {path}: after the real az {json.dumps(va)}, "
                      f"after the CLI face {json.dumps(vc)}")
        steps = sum(len(c["steps"]) for c in chains)
        kinds = sorted({" ".join(a for a in s[1:] if not a.startswith("-")) for c in chains for s in c["steps"]})
        self.notes.append(f"mutations: {steps} argvs in {len(chains)} chains ({', '.join(kinds)}); "
                          f"worlds compared after them")
        restored = compare.differences(start, cli)
        self.notes.append("after implement+backout the CLI-face world differs from the start in: "
                          + (", ".join(sorted({p for p, _, _ in restored})) or "nothing"))
        mutating = [json.loads(line) for line in Path(str(self.arm_world) + ".calls.jsonl").read_text().splitlines()]
        accepted = sum(1 for m in mutating if m.get("via") == "arm" and m["argv"][0] == "PUT")
        polled = sum(1 for m in mutating if "AzureAsyncOperation" in m["argv"][1])
        if accepted and not polled:
            self.fail("mutations", "az never polled an Azure-AsyncOperation URL: the LRO path was not exercised")
        self.notes.append(f"ARM face: {accepted} SQL PUTs answered 202, {polled} operation polls")

    # ----------------------------------------------------------------------------------------
    # argcheck

    NEGATIVE = [
        ["az", "storage", "account", "show", "-g", "-rg.ops(1)", "-n", "stopsbackup01", "--output=json"],
        ["az", "storage", "account", "update", "--name=st", "--resource-group=rg",
         "--encryption-key-source=Microsoft.Keyvault", "--output=json"],
        ["az", "storage", "account", "update", "--name=st", "--resource-group=rg",
         "--encryption-key-source=Microsoft.Storage", "--encryption-key-version=", "--output=json"],
        ["az", "sql", "db", "tde", "set", "--database=d", "--server=s", "--resource-group=rg",
         "--status=On", "--output=json"],
        ["az", "sql", "server", "list", "--bogus=1", "--output=json"],
        ["az", "sql", "server", "tde-key", "set", "--server=s", "--resource-group=rg", "--output=json"],
    ]

    def argcheck(self):
        if self.args.argv_file:
            argvs = plan.steps_from_plan_file(self.args.argv_file)
            source = self.args.argv_file
        else:
            argvs = []
            for change in self.plan_changes:
                for step in change["steps"]:
                    argvs.append(step["argv"])
                    if "skip_if_read" in step:
                        argvs.append(step["skip_if_read"])
            argvs += self.read_argvs()
            source = "the playbooks rendered over the demo fleet"
        unique = []
        for a in argvs:
            if a not in unique:
                unique.append(a)
        items = [{"argv": a, "expect": "accepted"} for a in unique]
        items += [{"argv": a, "expect": "rejected"} for a in self.NEGATIVE]
        request = self.work / "argcheck.in.json"
        request.write_text(json.dumps(items))
        config = self.new_config()
        done = subprocess.run([self.args.az_python, str(HERE / "argcheck.py"), str(request)],
                              env=self.guard_env(config), capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise Failure(f"argcheck.py failed: {done.stderr[-2000:]}")
        results = json.loads(done.stdout)
        (self.work / "argcheck.json").write_text(json.dumps(results, indent=1))
        for r in results:
            if r["verdict"] != r["expect"]:
                self.fail("argcheck", f"{' '.join(r['argv'][1:])}: {r['verdict']} (exit {r['exit_code']}), "
                          f"expected {r['expect']}: {r['stderr'].strip()}")
            if r["expect"] == "rejected":
                # The CLI face must reject it the same way (exit code and text).
                rc, _, err = self.cli_face(r["argv"], self.cli_world)
                if rc != r["exit_code"] or err != r["stderr"]:
                    diffs = [("stderr", r["stderr"], err)]
                    bad, _ = self.allow.split("stderr", " ".join(a for a in r["argv"][1:] if not a.startswith("-")), diffs)
                    if bad or rc != r["exit_code"]:
                        self.fail("argcheck", f"{' '.join(r['argv'][1:])}: the real az exits {r['exit_code']} "
                                  f"with {r['stderr']!r}, the CLI face {rc} with {err!r}")
        self.notes.append(f"argcheck: {len(unique)} argvs from {source} accepted by az's parser and "
                          f"validators in one process; {len(self.NEGATIVE)} negative controls rejected")

    # ----------------------------------------------------------------------------------------
    # protector: does `az sql db list` carry encryptionProtector?

    def protector(self):
        db = next(d for d in self.world["sqlDatabases"] if d.get("encryptionProtector"))
        argv = plan.finish(["az", "sql", "db", "list", f"--server={db['server']}",
                            f"--resource-group={db['resourceGroup']}"], db["subscription"])
        self.load(self.arm_world, self.world)
        code, out, err = self.real_az(argv)
        if code != 0:
            raise Failure(f"sql db list: exit {code}: {err}")
        listed = {d["name"]: d.get("encryptionProtector") for d in json.loads(out)}
        with_field = listed.get(db["name"])
        # The same list from a server whose list responses omit the field.
        port, ca = self.start_serve(self.arm_world, "arm-omits", ["--db-list-omits-protector"])
        config = self.new_config(self.template)
        # Both servers' CAs. Without --skip-endpoint-discovery az reads the new server's
        # /metadata/endpoints, so that endpoint is exercised too.
        bundle = self.work / "both.ca.pem"
        bundle.write_text(Path(self.ca).read_text() + Path(ca).read_text())
        update = ["az", "cloud", "update", "--name", CLOUD, f"--endpoint-resource-manager=https://127.0.0.1:{port}/"]
        code, _, err = self.real_az(update, config=config, ca=bundle)
        if code != 0:
            raise Failure(f"az cloud update: {err}")
        code, out, err = self.real_az(argv, config=config, ca=bundle)
        if code != 0:
            raise Failure(f"sql db list (list omits the field): exit {code}: {err}")
        without_field = {d["name"]: d.get("encryptionProtector") for d in json.loads(out)}.get(db["name"])
        code, out, _ = self.real_az(plan.finish(["az", "sql", "db", "show", f"--name={db['name']}",
                                                 f"--server={db['server']}", f"--resource-group={db['resourceGroup']}"],
                                                db["subscription"]), config=config, ca=bundle)
        shown = json.loads(out).get("encryptionProtector") if code == 0 else None
        finding = {
            "database": db["name"],
            "wire list carries the field -> az sql db list prints": with_field,
            "wire list omits the field -> az sql db list prints": without_field,
            "az sql db show prints (GET carries it)": shown,
        }
        (self.work / "protector.json").write_text(json.dumps(finding, indent=1))
        if with_field != db["encryptionProtector"]:
            self.fail("protector", f"az 2.91 dropped encryptionProtector from a list that carried it: {with_field!r}")
        if without_field is not None or shown != db["encryptionProtector"]:
            self.fail("protector", f"unexpected: {finding}")
        self.notes.append(
            "protector: az sql db list prints encryptionProtector exactly when the wire list carries "
            f"it ({with_field!r}); when the list omits it az prints null, indistinguishable from "
            "'no database-level key', while az sql db show still prints the key")

    # ----------------------------------------------------------------------------------------
    # faults the ARM face injects that only the real az can show

    def faults(self):
        world = json.loads(json.dumps(self.world))
        fin = next(s for s in self.world["subscriptions"] if s["name"] == "Contoso Finance")
        world["faults"] = [{"command": "sql server list", "argvContains": fin["id"], "times": 1,
                            "error": {"code": "TooManyRequests", "message":
                                      "The request is being throttled as the limit has been reached for operation "
                                      "type - List_ObservationWindow_00:05:00. For more information, see - "
                                      "https://aka.ms/srpthrottlinglimits"}}]
        self.load(self.arm_world, world)
        log = Path(str(self.arm_world) + ".calls.jsonl")
        before = len(log.read_text().splitlines())
        code, out, err = self.real_az(plan.finish(["az", "sql", "server", "list"], fin["id"]))
        lists = [json.loads(line) for line in log.read_text().splitlines()[before:]]
        lists = [entry for entry in lists if entry.get("command") == "sql server list"]
        if code != 0 or len(lists) != 2:
            self.fail("faults", f"a single 429 (Retry-After: 1) should be retried by az once and succeed: "
                      f"exit {code}, {len(lists)} list requests, stderr {err.strip()!r}")
        else:
            self.notes.append("faults: az retried the ARM face's 429 (Retry-After) and succeeded")
        self.load(self.arm_world, self.world)

    # ----------------------------------------------------------------------------------------
    # runbook: the hook for the full runbook (azbook driving the real az)

    def az_wrapper(self):
        """An executable that runs the real az with the guard environment and the logged-in
        configuration: what azbook gets as --az. Written as Python so that no value is
        quoted into a shell string."""
        config = self.new_config(self.template)
        wrapper = self.work / "az-real"
        env = self.guard_env(config, self.ca)
        wrapper.write_text(
            f"#!{sys.executable}\n"
            "import os, sys\n"
            f"os.environ.clear(); os.environ.update({env!r})\n"
            f"os.execv({self.args.az!r}, [{self.args.az!r}] + sys.argv[1:])\n")
        wrapper.chmod(0o755)
        return wrapper

    def azbook(self, az, world, extra):
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.work), "NO_COLOR": "1",
               "AZSIM_WORLD": str(world), "AZSIM_LOG": str(world) + ".calls.jsonl",
               "AZURE_CONFIG_DIR": str(self.fresh_dir("azbook-cli-config"))}
        done = subprocess.run([self.args.azbook, "--az", str(az), *extra], env=env, capture_output=True,
                              text=True, timeout=1800, cwd=self.fresh_dir("azbook-cwd"))
        return done.returncode, done.stdout, done.stderr

    def runbook(self):
        """Today: `azbook test` with the real az against the ARM face equals `azbook test` with
        the CLI face, and makes no change. To extend when azbook has plan/apply/backout:
        test -> plan -> apply -> test -> backout -> test, checking that the world is restored
        and that every argv of `azbook plan --output json` passes argcheck (--argv-file)."""
        self.load(self.arm_world, self.world)
        self.load(self.cli_world, self.world)
        real = self.az_wrapper()
        sim_bin = self.fresh_dir("azsim-bin")
        (sim_bin / "az").symlink_to(self.azsim)
        args = ["--jobs", str(self.args.jobs), "test", "--all-subscriptions", "--output", "json"]
        log = Path(str(self.arm_world) + ".calls.jsonl")
        before = len(log.read_text().splitlines())
        rc_r, out_r, err_r = self.azbook(real, self.arm_world, args)
        rc_s, out_s, err_s = self.azbook(sim_bin / "az", self.cli_world, args)
        if rc_r != rc_s:
            self.fail("runbook", f"azbook test exits {rc_r} with the real az and {rc_s} with the CLI face\n"
                      f"  real az: {err_r[-1500:]}\n  CLI face: {err_s[-1500:]}")
            return
        try:
            jr, js = json.loads(out_r), json.loads(out_s)
        except json.JSONDecodeError:
            self.fail("runbook", f"azbook test printed no JSON: {out_r[:300]!r} / {err_r[-800:]}")
            return
        key = lambda r: (r["playbook"], r["resource"])  # noqa: E731
        jr["results"].sort(key=key)
        js["results"].sort(key=key)
        for path, vr, vs in compare.differences(jr, js):
            self.fail("runbook", f"azbook test report differs at {path}: real az {json.dumps(vr)}, "
                      f"CLI face {json.dumps(vs)}")
        calls = [json.loads(line) for line in log.read_text().splitlines()[before:]]
        if any(c.get("mutating") for c in calls):
            self.fail("runbook", "azbook test made a change through the real az")
        self.notes.append(f"runbook hook: azbook test through the real az (exit {rc_r}, "
                          f"{len(jr['results'])} results, summary {jr['summary']}) equals the CLI face's; "
                          f"{len(calls)} ARM requests, none mutating")

    # ----------------------------------------------------------------------------------------

    def run(self):
        self.timed("setup", self.setup)
        if self.failures:
            return
        self.timed("reads", self.reads)
        self.timed("mutations", self.mutations)
        self.timed("argcheck", self.argcheck)
        self.timed("protector", self.protector)
        self.timed("faults", self.faults)
        self.timed("runbook", self.runbook)
        for entry in self.allow.unused():
            self.fail("allow-list", f"entry '{entry}' matched no difference: remove it or fix the test")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--az", required=True, help="the real az executable")
    parser.add_argument("--az-python", required=True, help="the Python that az runs on")
    parser.add_argument("--azsim", required=True)
    parser.add_argument("--azbook", required=True)
    parser.add_argument("--work", required=True, help="a new or empty directory for the run")
    parser.add_argument("--argv-file", help="check these argvs (JSON list, or an azbook plan) instead of the rendered plan")
    parser.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2))
    args = parser.parse_args()
    work = Path(args.work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    suite = Suite(args)
    try:
        suite.run()
    finally:
        suite.stop()
    report = {"failures": suite.failures, "notes": suite.notes, "timings_seconds": suite.timings,
              "allow_list_used": suite.allow.used}
    (work / "report.json").write_text(json.dumps(report, indent=1))
    for note in suite.notes:
        print(f"  - {note}", file=sys.stderr)
    print(f"  timings (s): {suite.timings}", file=sys.stderr)
    if suite.failures:
        print(f"\nconformance FAILED ({len(suite.failures)} problems; details in {work}):", file=sys.stderr)
        for f in suite.failures:
            print(f"  {f}", file=sys.stderr)
        sys.exit(1)
    print(f"conformance passed (details in {work})", file=sys.stderr)


if __name__ == "__main__":
    main()
