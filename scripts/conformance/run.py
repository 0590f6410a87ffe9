"""The conformance suite: the real azure-cli against azsim (see scripts/conformance.sh).

Run with az's own Python (it imports jmespath and the playbooks' TOML reader from there):

    python run.py --az AZ --az-python PY --azsim AZSIM --azbook AZBOOK --work DIR
                  [--argv-file FILE] [--jobs N] [--stages a,b,...]

Stages, each a function below, in this order:
  setup      `azsim serve` over a world with every edge case, and one logged-in az configuration
             (custom cloud, core.instance_discovery=false, service-principal login) that every az
             call gets a fresh copy of. The world is the demo fleet (storage accounts on pinned,
             versionless and "" key versions, with an encryption identity; encryption scopes that
             page at 2 a page: stfinance01's 5 over 3 pages, with a disabled Key Vault scope on a
             pinned version and versionless ones, and stlogs01's one Key Vault scope alone on
             page 3; SQL servers on customer keys; databases with TDE off; two managed instances
             in rg-sqlmi, one on a customer key with auto-rotation; databases with their own key:
             customers with a user-assigned identity, orders also with auto-rotation and a
             federated client id), plus a disabled subscription, a server (sql-rotate-dev) whose
             TDE protector is a versionless Key Vault key with auto-rotation, a database on it
             (archive) with its own key, no identity and auto-rotation off, and the service
             principal as the signed-in user;
  plan       `azbook plan --output json` over that world (through the CLI face): the argvs azbook
             emits, which the later stages use; plan.py renders the playbooks independently
             (paged lists, read_when, list-valued arguments, precheck `when`) and must produce the
             same implementation and backout argvs, and azbook must have asked for the same pages
             (`--marker`) and conditional reads (none where read_when is false) as plan.py;
  reads      every read command the playbooks use (discovery, test reads, refresh, skip_if reads:
             among them `encryption-scope list` and `show`, `sql mi list`, `sql mi tde-key show`,
             `sql mi key list`, `sql db show --expand-keys=true`), and `az group exists` (azbook's
             check of a --resource-group), real az against the ARM face and the CLI face against
             the same world: stdout JSON, exit code and stderr must be equal, or the difference
             listed in allowlist.json. Paged lists are followed page by page, each face with the
             marker its own page printed (the link's host normalised: compare.azure_host). Every
             precheck (`az keyvault key show --id`) must fail with the real az only at the dead
             proxy (accepted, logged in) and be answered by the CLI face;
  mutations  every mutating argv of azbook's plan (each change's implementation then backout
             steps: among them scope updates both ways, `sql mi tde-key set` both ways, `sql mi
             key create`, `sql db tde key revert`, `sql db update` with list values), plus the
             changes and errors the playbooks do not reach on this fleet (database-level keys,
             a managed instance given a customer key, a scope given a versionless key, refusals),
             with both faces on identical worlds (chains on one resource in order): printed
             output, exit codes, stderr, and in the end the two worlds (`azsim dump`) must agree;
  argcheck   every argv of azbook's plan (implementation and backout), the skip_if and precheck
             reads, every read, the continuation pages (`--marker=<link>`) and --argv-file's argvs
             through the real az's parser and validators, logged out, in one Python process;
             negative controls (among them list-valued options with no value, or a value starting
             with `-`) must be rejected, and alike by the CLI face;
  protector  whether `az sql db list` prints a database's `encryptionProtector` (the database
             playbook reads it from the list: playbooks/sql-database-tde-mmk.toml);
  faults     ARM-only checks: a 429 that az retries (Retry-After) and an injected 403;
  runbook    the whole runbook, every built-in playbook, with azbook driving the real az against
             the ARM face, and the same runbook through the CLI face on an identical world: test,
             plan --out, apply of that plan, test (only targets with a manual step left: none on
             this world), the protector keys removed from sql-rotate-dev and from the managed
             instance on a customer key, backout (which must register both again), test. Every
             step's report must equal the CLI face's; the world must be restored on every field
             the control touches (RESTORED: accounts' key settings, scopes' source, exact key URI
             and state, servers' and instances' protector type, URI, auto-rotation and keys,
             databases' TDE state, encryptionProtector, auto-rotation, key set, identity and
             federated client id), and equal to the start but for the reviewed differences
             (allow-list scope `runbook-world`);
  drift      drift judged on every field backout writes, through the real az: a customer key put
             back from another vault or at another version (a storage account), or a scope's key
             URI put back at another version, between apply and backout is `drifted` (exit 3) and
             left as it is; a saved plan applied after auto-rotation moved is backed out to the
             state just before the apply.

--stages runs setup and the named stages only (for work on the suite; a full run is the default).
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
# The edge case the demo fleet lacks: a server whose TDE protector is a versionless Key Vault key
# (the form auto-rotation uses), with auto-rotation on. The runbook stage removes the key from
# the server after apply, so that backout must register it again (`az sql server key create`).
ROTATE_KID = "https://kv-rotate-dev.vault.azure.net/keys/sql-tde"
ROTATE_SERVER = "sql-rotate-dev"
# The edge case of database-level keys the demo fleet lacks: a database on its own key with no
# identity of its own and auto-rotation explicitly off, on sql-rotate-dev. Its backout is an
# `az sql db update` whose list-valued --user-assigned-identity-id gives nothing at all (nor
# --assign-identity), and that sets --encryption-protector-auto-rotation=false.
ARCHIVE_KID = f"https://kv-rotate-dev.vault.azure.net/keys/sql-archive-cmk/{KEY}"


class Failure(Exception):
    pass


def command_words(argv):
    """The az command words of an argv: the words before its first option (the values of
    options given as separate words, such as `--keys A B`, are not command words)."""
    words = []
    for a in argv[1:]:
        if not isinstance(a, str) or a.startswith("-"):
            break
        words.append(a)
    return " ".join(words)


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
        """az never reaches the network, whatever this machine has (README.md, "Conformance with
        the real Azure CLI")."""
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
        fin = next(s["id"] for s in world["subscriptions"] if s["name"] == "Contoso Finance")
        world["sqlServers"].append({
            "identity": {"principalId": "3e7a9c15-6b2d-4f80-9a4e-c1d5b8f2a063",
                         "tenantId": world["tenantId"], "type": "SystemAssigned",
                         "userAssignedIdentities": None},
            "keys": [{"autoRotationEnabled": True, "uri": ROTATE_KID}],
            "location": "eastus", "name": ROTATE_SERVER,
            "protector": {"autoRotationEnabled": True, "serverKeyType": "AzureKeyVault", "uri": ROTATE_KID},
            "resourceGroup": "rg-rotate", "subscription": fin, "tags": {"env": "dev"}})
        master = next(d for d in world["sqlDatabases"] if d["name"] == "master")
        world["sqlDatabases"].append(dict(master, server=ROTATE_SERVER, resourceGroup="rg-rotate", subscription=fin))
        orders = next(d for d in world["sqlDatabases"] if d["name"] == "orders")
        world["sqlDatabases"].append(dict(
            orders, name="archive", server=ROTATE_SERVER, resourceGroup="rg-rotate", subscription=fin,
            encryptionProtector=ARCHIVE_KID, keys=[ARCHIVE_KID], encryptionProtectorAutoRotation=False,
            identity=None, federatedClientId=None, tags={"env": "dev"}))
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
    # plan: the argvs azbook emits over the conformance world

    def sim_az(self):
        """azsim linked as `az`: the CLI face, for azbook."""
        if not hasattr(self, "_sim_az"):
            link = self.fresh_dir("azsim-bin") / "az"
            link.symlink_to(self.azsim)
            self._sim_az = link
        return self._sim_az

    @staticmethod
    def plan_chains(plan_json):
        """Per change of an `azbook plan --output json`: its az implementation steps, then its
        backout argvs, in order (changes that are only manual have none)."""
        chains = []
        for change in plan_json["changes"]:
            argvs = [s["argv"] for s in change["steps"] if s.get("kind", "az") == "az" and s.get("argv")]
            argvs += [b["argv"] if isinstance(b, dict) else b for b in change.get("backout", [])]
            if argvs:
                chains.append({"playbook": change["playbook"], "resource": change["resource"], "steps": argvs})
        return chains

    def plan(self):
        world = self.work / "azbook-plan.db"
        self.load(world, self.world)
        rc, out, err = self.azbook(self.sim_az(), world, ["--jobs", str(self.args.jobs), "plan",
                                                          "--all-subscriptions", "--output", "json"])
        (self.work / "azbook-plan.stderr").write_text(err)
        if rc != 0:
            raise Failure(f"azbook plan over the conformance world (CLI face) exits {rc}: {err[-2000:]}")
        plan_json = json.loads(out)
        if plan_json.get("errors"):
            raise Failure(f"azbook plan reported errors: {json.dumps(plan_json['errors'])[:2000]}")
        (self.work / "azbook-plan.json").write_text(json.dumps(plan_json, indent=1))
        self.plan_json = plan_json
        # The independent rendering (plan.py) must give the same argvs, change by change.
        self.render_plan()
        emitted = {(c["playbook"], c["resource"]): c["steps"] for c in self.plan_chains(plan_json)}
        rendered = {(c["playbook"], c["resource"]): [s["argv"] for s in c["steps"]] for c in self.plan_changes}
        for key in sorted(set(emitted) | set(rendered)):
            if emitted.get(key) != rendered.get(key):
                self.fail("plan", f"{key[0]} on {key[1]}: azbook plan emits\n    "
                          + "\n    ".join(" ".join(a) for a in emitted.get(key, [])) + "\n  plan.py renders\n    "
                          + "\n    ".join(" ".join(a) for a in rendered.get(key, [])))
        steps = sum(len(argvs) for argvs in emitted.values())
        self.notes.append(f"plan: azbook plan over the conformance world: {len(plan_json['changes'])} changes "
                          f"({plan_json['summary']}), {steps} implementation and backout argvs; plan.py's "
                          "independent rendering of the playbooks gives the same argvs")
        self.plan_calls_agree(world)

    def render_plan(self):
        """plan.py's rendering of every playbook over the conformance world, through the CLI
        face: the changes (with their skip_if and precheck reads), the continuation pages it
        asked for and the conditional reads it left out. Also what later stages take their
        prechecks and pages from, so that they can run without the plan stage."""
        if hasattr(self, "plan_changes"):
            return
        self.plan_world = self.work / "plan.db"
        self.load(self.plan_world, self.world)
        renderer = plan.Renderer(plan.cli_face(self.azsim, str(self.plan_world), str(self.plan_world) + ".calls.jsonl"))
        try:
            self.plan_changes = [change for pb in self.playbooks() for sub in self.enabled_subscriptions()
                                 for change in renderer.plan(pb, sub)]
        except plan.PlanError as e:
            raise Failure(f"plan.py cannot render the playbooks over the conformance world: {e}") from None
        self.plan_pages, self.plan_skipped_reads = renderer.pages, renderer.skipped_reads
        (self.work / "rendered-plan.json").write_text(json.dumps(
            {"changes": self.plan_changes, "pages": self.plan_pages, "reads not made": self.plan_skipped_reads},
            indent=1))

    @staticmethod
    def playbooks():
        return plan.load_playbooks(sorted((HERE.parent.parent / "playbooks").glob("*.toml")))

    def paged_and_conditional_commands(self):
        """The command words of the lists that page (`next_marker`) and of the conditional reads
        (`read_when`): the calls whose number depends on how the language is read."""
        commands = set()
        for pb in self.playbooks():
            commands |= {command_words(level["argv"]) for level in pb["discover"] if level.get("next_marker")}
            reads = pb["test"].get("reads", {})
            commands |= {command_words(reads[name]) for name in pb["test"].get("read_when", {})}
        return commands

    def plan_calls_agree(self, azbook_world):
        """azbook must have asked for exactly the pages and conditional reads plan.py did: every
        page of a paged list, each with `--marker=<the link the page before gave>`, and the
        conditional read (`sql db show --expand-keys=true`) of exactly the databases with their
        own key, none of the others (its value there is null, with no call)."""
        commands = self.paged_and_conditional_commands()

        def calls(world):
            lines = Path(str(world) + ".calls.jsonl").read_text().splitlines()
            argvs = [["az", *json.loads(line)["argv"]] for line in lines]
            return {json.dumps(a) for a in argvs if command_words(a) in commands}
        by_azbook, by_plan = calls(azbook_world), calls(self.plan_world)
        for argv in sorted(by_azbook ^ by_plan):
            who = "azbook plan" if argv in by_azbook else "plan.py"
            self.fail("plan", f"only {who} called {' '.join(json.loads(argv)[1:])}")
        not_made = {json.dumps(a) for a in self.plan_skipped_reads}
        for argv in sorted(not_made & by_azbook):
            self.fail("plan", f"azbook made a read its read_when rules out: {' '.join(json.loads(argv)[1:])}")
        if not self.plan_pages or not self.plan_skipped_reads:
            self.fail("plan", "the conformance world no longer exercises paged lists and conditional reads: "
                      f"{len(self.plan_pages)} continuation pages, {len(self.plan_skipped_reads)} reads left out")
        self.notes.append(f"plan: azbook and plan.py asked for the same {len(by_plan)} calls of "
                          f"{', '.join(sorted(commands))}: {len(self.plan_pages)} continuation pages "
                          f"(--marker), and {len(self.plan_skipped_reads)} conditional reads left out as "
                          "read_when says")

    def need_plan(self):
        if not hasattr(self, "plan_json"):
            raise Failure("no azbook plan: the plan stage failed or did not run")

    # ----------------------------------------------------------------------------------------
    # reads

    def read_argvs(self):
        """Every read the playbooks make (discovery, test reads, refresh, skip_if reads) over
        every resource of the world, the `--resource-group` lists, `az group exists` (azbook's
        check of a --resource-group) and errors the service reports; each as azbook finishes
        it. A paged list is here with its first page: `paged_reads` follows its markers."""
        reads = (self.account_reads() + self.storage_reads() + self.sql_server_reads()
                 + self.managed_instance_reads() + self.database_reads() + self.error_reads())
        return [plan.finish(a, s) for a, s in reads]

    def enabled_subscriptions(self):
        return [s["id"] for s in self.world["subscriptions"] if s.get("state", "Enabled") == "Enabled"]

    def default_subscription(self):
        return next(s["id"] for s in self.world["subscriptions"] if s.get("isDefault"))

    def account_reads(self):
        """az's own account commands, and `az group exists` for every group of the world."""
        default = self.default_subscription()
        reads = [(a, default) for a in (["az", "account", "show"], ["az", "account", "list"],
                                        ["az", "account", "list", "--all"])]
        kinds = ("storageAccounts", "sqlServers", "sqlManagedInstances")
        every_group = sorted({(r["subscription"], r["resourceGroup"]) for kind in kinds for r in self.world[kind]})
        return reads + [(["az", "group", "exists", f"--name={g}"], s) for s, g in every_group]

    def storage_reads(self):
        """Accounts (listed, by group, shown), and each scope as the scope playbook's refresh
        reads it; the scope lists themselves are `paged_reads`."""
        w = self.world
        reads = [(["az", "storage", "account", "list"], sub) for sub in self.enabled_subscriptions()]
        groups = sorted({(a["subscription"], a["resourceGroup"]) for a in w["storageAccounts"]})
        reads += [(["az", "storage", "account", "list", f"--resource-group={g}"], s) for s, g in groups]
        for a in w["storageAccounts"]:
            reads.append((["az", "storage", "account", "show", f"--name={a['name']}",
                           f"--resource-group={a['resourceGroup']}"], a["subscription"]))
        for e in w["encryptionScopes"]:
            reads.append((["az", "storage", "account", "encryption-scope", "show", f"--account-name={e['account']}",
                           f"--resource-group={e['resourceGroup']}", f"--name={e['name']}"], e["subscription"]))
        return reads

    def sql_server_reads(self):
        reads = [(["az", "sql", "server", "list"], sub) for sub in self.enabled_subscriptions()]
        for s in self.world["sqlServers"]:
            where, sub = [f"--resource-group={s['resourceGroup']}"], s["subscription"]
            reads += [(["az", "sql", "server", "list", *where], sub),
                      (["az", "sql", "server", "show", f"--name={s['name']}", *where], sub),
                      (["az", "sql", "server", "tde-key", "show", f"--server={s['name']}", *where], sub),
                      (["az", "sql", "server", "key", "list", f"--server={s['name']}", *where], sub),
                      (["az", "sql", "db", "list", f"--server={s['name']}", *where], sub)]
        return reads

    def managed_instance_reads(self):
        """The managed-instance playbook's list, its read, and its skip_if read (`mi key list`)."""
        reads = [(["az", "sql", "mi", "list"], sub) for sub in self.enabled_subscriptions()]
        for mi in self.world["sqlManagedInstances"]:
            where = [f"--managed-instance={mi['name']}", f"--resource-group={mi['resourceGroup']}"]
            sub = mi["subscription"]
            reads += [(["az", "sql", "mi", "list", f"--resource-group={mi['resourceGroup']}"], sub),
                      (["az", "sql", "mi", "tde-key", "show", *where], sub),
                      (["az", "sql", "mi", "key", "list", *where], sub)]
        return reads

    def database_reads(self):
        """Each database shown and its TDE read; a database with its own key also with its keys
        map ($expand=keys), as the database playbook's conditional read `dbkey` makes it
        (`--expand-keys=true`), and in the flag form (`--expand-keys`)."""
        reads = []
        for d in self.world["sqlDatabases"]:
            where, sub = [f"--server={d['server']}", f"--resource-group={d['resourceGroup']}"], d["subscription"]
            reads += [(["az", "sql", "db", "show", f"--name={d['name']}", *where], sub),
                      (["az", "sql", "db", "tde", "show", f"--database={d['name']}", *where], sub)]
            if d.get("encryptionProtector"):
                reads += [(["az", "sql", "db", "show", f"--name={d['name']}", *where, flag], sub)
                          for flag in ("--expand-keys=true", "--expand-keys")]
        return reads

    def error_reads(self):
        """Errors az reports from the service: the exit codes and texts must agree too."""
        prod = self.default_subscription()
        mi = ["--resource-group=rg-sqlmi"]
        scopes = ["--account-name=stfinance01", "--resource-group=rg-finance"]
        return [(argv, prod) for argv in (
            ["az", "storage", "account", "show", "--name=stnosuch01", "--resource-group=rg-payments"],
            ["az", "storage", "account", "list", "--resource-group=rg-nosuch"],
            ["az", "storage", "account", "encryption-scope", "show", *scopes, "--name=nosuch"],
            ["az", "storage", "account", "encryption-scope", "list", "--account-name=stnosuch01",
             "--resource-group=rg-finance", "--include=All"],
            ["az", "sql", "server", "tde-key", "show", "--server=sql-nosuch", "--resource-group=rg-web"],
            ["az", "sql", "mi", "tde-key", "show", "--managed-instance=sqlmi-nosuch", *mi],
            ["az", "sql", "mi", "key", "list", "--managed-instance=sqlmi-nosuch", *mi],
            ["az", "sql", "db", "show", "--name=nosuch", "--server=sql-web-prod", "--resource-group=rg-web"],
            ["az", "sql", "db", "show", "--name=nosuch", "--server=sql-web-prod", "--resource-group=rg-web",
             "--expand-keys=true"],
            ["az", "sql", "db", "tde", "show", "--database=nosuch", "--server=sql-web-prod", "--resource-group=rg-web"],
            # A group that is nowhere, and one of another subscription: `false`, exit 0.
            ["az", "group", "exists", "--name=rg-nosuch"],
            ["az", "group", "exists", "--name=RG-ROTATE"],
        )]

    def paged_lists(self):
        """(argv without what azbook adds, subscription) of each paged list the playbooks make:
        every account's encryption scopes, as the scope playbook's discovery lists them."""
        argvs = []
        scope_lists = [level for pb in self.playbooks() for level in pb["discover"] if level.get("next_marker")
                       and command_words(level["argv"]) == "storage account encryption-scope list"]
        for level in scope_lists:
            argvs += [(plan.render_argv(level["argv"], {"account": a}), a["subscription"])
                      for a in self.world["storageAccounts"] if a["subscription"] != RETIRED["id"]]
        if not argvs:
            raise Failure("no playbook pages `az storage account encryption-scope list` any more: update the suite")
        return argvs

    def paged_reads(self, argv, subscription):
        """Every page of one paged list through both faces, each face given the marker its own
        previous page printed (`--marker=<link>` appended as azbook appends it). A link names
        the host that answered, so the real az's is compared after compare.azure_host."""
        records, real_argv, sim_argv = [], plan.finish(argv, subscription), plan.finish(argv, subscription)
        for _ in range(50):
            real, sim = self.real_az(real_argv), self.cli_face(sim_argv, self.cli_world)
            records.append(self.compare_call("reads", "read", sim_argv, real, sim,
                                             normalize=lambda doc: compare.azure_host(doc, self.base)))
            markers = [self.next_marker(out) for _, out, _ in (real, sim)]
            if not all(markers):
                return records
            real_argv, sim_argv = (plan.finish([*argv, f"--marker={m}"], subscription) for m in markers)
        self.fail("reads", f"{' '.join(argv[1:])}: more than 50 pages")
        return records

    @staticmethod
    def next_marker(out):
        """The marker of a page's trailing `{"nextMarker": ...}` item, or None."""
        try:
            page = json.loads(out)
        except json.JSONDecodeError:
            return None
        if isinstance(page, list) and page and isinstance(page[-1], dict) and set(page[-1]) == {"nextMarker"}:
            return page[-1]["nextMarker"] or None
        return None

    def precheck_reads(self, argv):
        """A precheck (`az keyvault key show --id=...`, Key Vault's data plane, which azsim serve
        does not simulate): the real az, logged in, must fail only at the network (the dead
        proxy), having accepted the argv; the CLI face must print the key it names."""
        real, sim = self.real_az(argv), self.cli_face(argv, self.cli_world)
        record = {"argv": argv, "real": {"exit": real[0], "stderr": real[2]},
                  "cli": {"exit": sim[0], "stderr": sim[2]}}
        if real[0] != 1 or "Unable to connect to proxy" not in real[2]:
            self.fail("reads", f"{' '.join(argv[1:])}: the real az should fail only at the dead proxy: "
                      f"exit {real[0]}: {real[2].strip()[-500:]}")
        key_id = next(a.split("=", 1)[1] for a in argv if a.startswith("--id="))
        kid = (json.loads(sim[1]).get("key") or {}).get("kid", "") if sim[0] == 0 else ""
        if not kid.lower().startswith(key_id.lower()):
            self.fail("reads", f"{' '.join(argv[1:])}: the CLI face exits {sim[0]} with the key {kid!r}: "
                      f"{sim[2].strip()}")
        return record

    def compare_call(self, stage, scope, argv, real, sim, normalize=None):
        """Compares (exit code, stdout, stderr) of the real az and the CLI face; `normalize`
        is applied to the real az's JSON first."""
        command = command_words(argv)
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
                jr = normalize(jr) if normalize else jr
            except json.JSONDecodeError as e:
                self.fail(stage, f"{label}: output is not JSON ({e})")
                return record
            bad, explained = self.allow.split(scope, command, compare.differences(jr, js))
            record.setdefault("explained", []).extend(explained)
            for path, vr, vs in bad:
                self.fail(stage, f"{label}: {path}: real az {json.dumps(vr)}, CLI face {json.dumps(vs)}")
        return record

    def reads(self):
        """Every read through both faces (outputs compared), every page of every paged list, and
        every precheck plan.py renders."""
        self.render_plan()
        argvs = self.read_argvs()

        def one(argv):
            return self.compare_call("reads", "read", argv, self.real_az(argv), self.cli_face(argv, self.cli_world))

        records = self.parallel(one, argvs)
        pages = [r for chain in self.parallel(lambda a: self.paged_reads(*a), self.paged_lists()) for r in chain]
        checks = sorted({json.dumps(a) for c in self.plan_changes for a in c["prechecks"]})
        prechecks = self.parallel(self.precheck_reads, [json.loads(a) for a in checks])
        (self.work / "reads.json").write_text(json.dumps(
            {"reads": records, "pages": pages, "prechecks": prechecks}, indent=1))
        commands = sorted({command_words(r["argv"]) for r in records + pages})
        continued = sum(1 for r in pages if any(a.startswith("--marker=") for a in r["argv"]))
        self.notes.append(f"reads: {len(records) + len(pages)} calls of {len(commands)} commands compared: "
                          + ", ".join(commands) + f"; of them {len(pages)} pages of paged lists, {continued} "
                          f"asked for with --marker (the link's host normalised); {len(prechecks)} distinct "
                          "prechecks accepted by the real az (failing only at the dead proxy) and answered "
                          "by the CLI face")

    # ----------------------------------------------------------------------------------------
    # mutations

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

    def database_key_chains(self):
        """Database-level keys, which the playbooks do not change: `az sql db tde key revert` and
        the `az sql db update` that gives a database its key back (az's GET, full PUT and final
        GET), with az's client-side rules (`--umi` ignored without `-i`) and refusals."""
        dbs = {d["name"]: d for d in self.world["sqlDatabases"]}
        customers, orders = dbs["customers"], dbs["orders"]

        def on(db, *argv, name="--name"):
            return plan.finish(["az", "sql", "db", *argv, f"{name}={db['name']}", f"--server={db['server']}",
                                f"--resource-group={db['resourceGroup']}"], db["subscription"])

        def revert(db):
            return on(db, "tde", "key", "revert", name="--database")

        def restore(db, *extra):
            umi = list(db["identity"]["userAssignedIdentities"])
            return on(db, "update", f"--encryption-protector={db['encryptionProtector']}",
                      "--keys", *db["keys"], "-i", "--umi", *umi, *extra)
        master = dict(customers, name="master")
        # Each chain ends as it started but for what its last updates set; the worlds of both
        # faces must agree after them. Each is named by its database's id: the plan's change of
        # the same database runs first, in the same chain (`serialized`).
        return [
            {"resource": self.database_id(customers), "steps": [
                revert(customers),
                revert(customers),
                on(customers, "show", "--expand-keys"),
                restore(customers),
                on(customers, "update", f"--keys-to-remove={customers['keys'][0]}", "--epauto", "true",
                   "--federated-client-id=0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"),
                on(customers, "show", "--expand-keys"),
            ]},
            {"resource": self.database_id(orders), "steps": [
                # --umi without -i: az ignores it, so only the rotation flag changes.
                on(orders, "update", "--umi", *customers["identity"]["userAssignedIdentities"], "--epauto=false"),
                revert(orders),
                restore(orders, f"--federated-client-id={orders['federatedClientId']}", "--epauto"),
                on(orders, "update", f"--keys-to-remove={orders['encryptionProtector']}"),
                on(orders, "update", "--keys", "https://example.com/k"),
                revert(master),
                on(orders, "show", "--expand-keys"),
            ]},
        ]

    @staticmethod
    def database_id(db):
        return (f"/subscriptions/{db['subscription']}/resourceGroups/{db['resourceGroup']}/providers/"
                f"Microsoft.Sql/servers/{db['server']}/databases/{db['name']}")

    def managed_instance_chains(self):
        """What the managed-instance playbook does not reach on this fleet: a customer key given
        to the instance on the service-managed key (registered, made the protector without
        auto-rotation, shown), and back; and the refusals: a key the instance does not have,
        and AzureKeyVault without --kid (az's own check)."""
        mi = next(m for m in self.world["sqlManagedInstances"] if m["protector"]["serverKeyType"] == "ServiceManaged")
        kid = f"https://kv-ops-prod.vault.azure.net/keys/sqlmi-tde/{KEY}"

        def on(*argv):
            return plan.finish(["az", "sql", "mi", *argv, f"--managed-instance={mi['name']}",
                                f"--resource-group={mi['resourceGroup']}"], mi["subscription"])
        return [{"resource": f"customer key on {mi['name']}", "steps": [
            on("tde-key", "set", "--server-key-type=AzureKeyVault",
               "--kid=https://kv-ops-prod.vault.azure.net/keys/nosuch/" + KEY),
            on("tde-key", "set", "--server-key-type=AzureKeyVault"),
            on("key", "create", f"--kid={kid}"),
            on("key", "list"),
            on("tde-key", "set", "--server-key-type=AzureKeyVault", f"--kid={kid}"),
            on("tde-key", "show"),
            on("tde-key", "set", "--server-key-type=ServiceManaged"),
        ]}]

    def encryption_scope_chains(self):
        """What the scope playbook does not reach on this fleet: a scope on Microsoft-managed
        keys given a versionless Key Vault key (Azure computes the versioned identifier) and
        back; and the refusals: Key Vault without --key-uri (az's own check), a scope that is
        not there. (The update prints the scope as a show would; a show after it would only add
        the time of the change, which the two faces stamp at different moments.)"""
        scope = next(e for e in self.world["encryptionScopes"]
                     if e["source"] == "Microsoft.Storage" and not e.get("requireInfrastructureEncryption"))

        def on(*argv, name=scope["name"]):
            return plan.finish(["az", "storage", "account", "encryption-scope", *argv,
                                f"--account-name={scope['account']}", f"--resource-group={scope['resourceGroup']}",
                                f"--name={name}"], scope["subscription"])
        return [{"resource": f"encryption scope {scope['account']}/{scope['name']}", "steps": [
            on("update", "--key-source=Microsoft.KeyVault"),
            on("update", "--key-source=Microsoft.Storage", name="nosuch"),
            on("update", "--key-source=Microsoft.KeyVault",
               "--key-uri=https://kv-ops-prod.vault.azure.net/keys/scope-new"),
            on("update", "--key-source=Microsoft.Storage"),
        ]}]

    @staticmethod
    def serialized(chains):
        """Chains on the same resource (by id, ignoring case) joined into one, in order: run in
        parallel they would interleave differently on the two faces."""
        joined = {}
        for chain in chains:
            key = chain["resource"].lower()
            if key in joined:
                joined[key]["steps"] = joined[key]["steps"] + chain["steps"]
            else:
                joined[key] = {"resource": chain["resource"], "steps": list(chain["steps"])}
        return list(joined.values())

    def mutations(self):
        self.need_plan()
        chains = self.serialized(
            [{"resource": c["resource"], "steps": c["steps"]} for c in self.plan_chains(self.plan_json)]
            + self.extra_chains() + self.database_key_chains() + self.managed_instance_chains()
            + self.encryption_scope_chains())
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
        self.covered()
        steps = sum(len(c["steps"]) for c in chains)
        kinds = sorted({command_words(s) for c in chains for s in c["steps"]})
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

    # Argv shapes the mutations must include, so that a change to the world or the playbooks
    # cannot quietly drop one: (command words, arguments the argv has, arguments it has not).
    MUST_MUTATE = [
        ("storage account encryption-scope update", ["--key-source=Microsoft.Storage"], []),
        ("storage account encryption-scope update", ["--key-source=Microsoft.KeyVault"], []),
        ("sql mi tde-key set", ["--server-key-type=ServiceManaged"], []),
        ("sql mi tde-key set", ["--server-key-type=AzureKeyVault", "--auto-rotation-enabled=true"], []),
        ("sql mi key create", [], []),
        ("sql db tde key revert", [], []),
        ("sql db update", ["--keys", "--assign-identity=true", "--user-assigned-identity-id",
                           "--encryption-protector-auto-rotation=true"], []),
        # An empty list: not even the option.
        ("sql db update", ["--keys", "--encryption-protector-auto-rotation=false"],
         ["--assign-identity=true", "--user-assigned-identity-id"]),
    ]

    def covered(self):
        """Fails for each MUST_MUTATE shape that no argv of azbook's plan has (the plan's, not
        the extra chains': these are the argvs azbook really runs)."""
        planned = [argv for c in self.plan_chains(self.plan_json) for argv in c["steps"]]
        for words, has, has_not in self.MUST_MUTATE:
            if not any(command_words(a) == words and all(x in a for x in has) and not any(x in a for x in has_not)
                       for a in planned):
                self.fail("mutations", f"azbook's plan over the conformance world has no `{words}` with "
                          f"{has or 'anything'} and without {has_not or 'anything'}: the suite no longer covers it")

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
        # Why a list-valued argument with no values gives nothing, not even its option, and why
        # a value starting with `-` is never passed: az reads both as an option with no value.
        ["az", "sql", "db", "update", "--name=d", "--server=s", "--resource-group=rg",
         "--encryption-protector=https://kv.vault.azure.net/keys/k", "--keys", "--output=json"],
        ["az", "sql", "db", "update", "--name=d", "--server=s", "--resource-group=rg",
         "--keys", "-kv.vault.azure.net/keys/k", "--output=json"],
        ["az", "sql", "db", "update", "--name=d", "--server=s", "--resource-group=rg", "--assign-identity=true",
         "--user-assigned-identity-id", "--output=json"],
        ["az", "sql", "db", "show", "--name=d", "--server=s", "--resource-group=rg", "--expand-keys=yes",
         "--output=json"],
    ]

    def argcheck(self):
        """Every argv azbook's plan emits (implementation steps and backout), the reads of the
        steps' skip_if and of the prechecks (rendered by plan.py: a plan does not list them),
        every read, the continuation pages of paged lists (`--marker=<link>`, as plan.py asked
        for them), and --argv-file's argvs: accepted by az's parser and validators."""
        self.need_plan()
        sourced = []
        for change in self.plan_json["changes"]:
            for step in change["steps"]:
                if step.get("kind", "az") == "az" and step.get("argv"):
                    sourced.append((step["argv"], "azbook plan: implement"))
            for argv in change.get("backout", []):
                sourced.append((argv["argv"] if isinstance(argv, dict) else argv, "azbook plan: backout"))
        for change in self.plan_changes:
            for step in change["steps"]:
                if "skip_if_read" in step:
                    sourced.append((step["skip_if_read"], "skip_if read"))
            sourced += [(argv, "precheck") for argv in change.get("prechecks", [])]
        sourced += [(argv, "read") for argv in self.read_argvs()]
        sourced += [(argv, "page") for argv in self.plan_pages]
        if self.args.argv_file:
            sourced += [(argv, "argv-file") for argv in plan.steps_from_plan_file(self.args.argv_file)]
        unique, seen = [], set()
        for argv, source in sourced:
            if json.dumps(argv) not in seen:
                seen.add(json.dumps(argv))
                unique.append((argv, source))
        items = [{"argv": a, "expect": "accepted", "source": src} for a, src in unique]
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
                self.fail("argcheck", f"{r.get('source', 'negative control')}: {' '.join(r['argv'][1:])}: "
                          f"{r['verdict']} (exit {r['exit_code']}), "
                          f"expected {r['expect']}: {r['stderr'].strip()}")
            if r["expect"] == "rejected":
                # The CLI face must reject it the same way (exit code and text).
                rc, _, err = self.cli_face(r["argv"], self.cli_world)
                if rc != r["exit_code"] or err != r["stderr"]:
                    diffs = [("stderr", r["stderr"], err)]
                    bad, _ = self.allow.split("stderr", command_words(r["argv"]), diffs)
                    if bad or rc != r["exit_code"]:
                        self.fail("argcheck", f"{' '.join(r['argv'][1:])}: the real az exits {r['exit_code']} "
                                  f"with {r['stderr']!r}, the CLI face {rc} with {err!r}")
        counts = {}
        for _, src in unique:
            counts[src] = counts.get(src, 0) + 1
        accepted = sum(1 for r in results if r["expect"] == "accepted" and r["verdict"] == "accepted")
        rejected = sum(1 for r in results if r["expect"] == "rejected" and r["verdict"] == "rejected")
        self.notes.append(f"argcheck: {accepted} of {len(unique)} distinct argvs ("
                          + ", ".join(f"{n} {src}" for src, n in counts.items())
                          + f") accepted by az's parser and validators, logged out, in one process; "
                          f"{rejected} of {len(self.NEGATIVE)} negative controls rejected")

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

    def azbook(self, az, world, extra, cwd=None):
        cwd = cwd or self.fresh_dir("azbook-cwd")
        # Each working directory keeps its own change logs: the runbook's two faces and each
        # drift case are separate change windows (azbook's default state directory is per user).
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.work), "NO_COLOR": "1",
               "AZSIM_WORLD": str(world), "AZSIM_LOG": str(world) + ".calls.jsonl",
               "AZURE_CONFIG_DIR": str(self.fresh_dir("azbook-cli-config")),
               "AZBOOK_STATE_DIR": str(Path(cwd) / "azbook-state")}
        done = subprocess.run([self.args.azbook, "--az", str(az), *extra], env=env, capture_output=True,
                              text=True, timeout=1800, cwd=cwd)
        return done.returncode, done.stdout, done.stderr

    def dump(self, world):
        return json.loads(self.azsim_run(["dump"], world).stdout)

    def arm_calls(self):
        """The ARM face's invocation log so far."""
        return [json.loads(line) for line in Path(str(self.arm_world) + ".calls.jsonl").read_text().splitlines()]

    @staticmethod
    def report_key(result):
        return (result["playbook"], result["resource"])

    def compare_reports(self, what, left, right, left_name, right_name, normalize=None):
        """Fails on every difference between two azbook JSON reports (results and changes are
        compared per playbook and resource, whatever their order)."""
        def index(report):
            out = {k: v for k, v in json.loads(json.dumps(report)).items() if k != "run"}
            # When a report was made is the one field two runs never share.
            (out.get("context") or {}).pop("generatedAt", None)
            for field in ("results", "changes"):
                if field in out:
                    items = [normalize(x) if normalize else x for x in out[field]]
                    out[field] = {" ".join(self.report_key(x)): x for x in items}
            return out
        diffs = compare.differences(index(left), index(right))
        for path, vl, vr in diffs[:25]:
            self.fail("runbook", f"{what}: {path}: {left_name} {json.dumps(vl)}, {right_name} {json.dumps(vr)}")
        if len(diffs) > 25:
            self.fail("runbook", f"{what}: {len(diffs) - 25} more differences")
        return not diffs

    # The fields the control touches, per kind of resource in `azsim dump`: (noun, the field
    # naming its parent, [(path, how compared)]). Key source is compared case-insensitively
    # (Azure prints it in more than one casing, and az sends only `Microsoft.Keyvault`);
    # everything else exactly: a key version of null, "" and a version are three different
    # states, and a scope's key URI versioned (pinned) or versionless (following the key) two.
    # Computed values: `registeredKeys` (a server's or instance's key URIs, which must hold its
    # protector's), `keySet` (a database's own keys), `identityIds` (its user-assigned ids).
    RESTORED = {
        "storageAccounts": ("storage account", None, [
            ("encryption.keySource", "casefold"),
            ("encryption.keyVaultProperties.keyVaultUri", "exact"),
            ("encryption.keyVaultProperties.keyName", "exact"),
            ("encryption.keyVaultProperties.keyVersion", "exact"),
            ("encryption.encryptionIdentity.encryptionUserAssignedIdentity", "exact"),
            ("encryption.encryptionIdentity.encryptionFederatedIdentityClientId", "exact"),
        ]),
        "encryptionScopes": ("encryption scope", "account", [
            ("source", "casefold"),
            ("keyVaultProperties.keyUri", "exact"),
            ("state", "exact"),
        ]),
        "sqlServers": ("SQL server", None, [
            ("protector.serverKeyType", "exact"),
            ("protector.uri", "exact"),
            ("protector.autoRotationEnabled", "exact"),
            ("registeredKeys", "exact"),
        ]),
        "sqlManagedInstances": ("SQL managed instance", None, [
            ("protector.serverKeyType", "exact"),
            ("protector.uri", "exact"),
            ("protector.autoRotationEnabled", "exact"),
            ("registeredKeys", "exact"),
        ]),
        "sqlDatabases": ("SQL database", "server", [
            ("tdeState", "exact"),
            ("encryptionProtector", "exact"),
            ("encryptionProtectorAutoRotation", "exact"),
            ("keySet", "exact"),
            ("identity.type", "exact"),
            ("identityIds", "exact"),
            ("federatedClientId", "exact"),
        ]),
    }

    @staticmethod
    def field(resource, path):
        """The value at a dotted path: null below a null parent (as JMESPath reads it), and
        "<absent>" for a field the resource does not have; or one of the computed values."""
        if path == "registeredKeys":
            return sorted((k.get("uri") or "").lower() for k in resource.get("keys") or [])
        if path == "keySet":
            return sorted(resource.get("keys") or [])
        if path == "identityIds":
            return sorted(((resource.get("identity") or {}).get("userAssignedIdentities") or {}).keys())
        value = resource
        for part in path.split("."):
            if value is None:
                return None
            if not isinstance(value, dict) or part not in value:
                return "<absent>"
            value = value[part]
        return value

    @staticmethod
    def same(how, then, now):
        if how == "casefold" and isinstance(then, str) and isinstance(now, str):
            return then.lower() == now.lower()
        return then == now and type(then) is type(now)

    def restored(self, start, now, label):
        """[(resource, field, value at start, value now)] for every field the control touches that
        differs, plus resources that appeared or disappeared."""
        problems = []
        for kind, (noun, parent, fields) in self.RESTORED.items():
            def name(r):
                where = f"{r['subscription'][:8]}/{r['resourceGroup']}"
                return f"{noun} {r[parent] + '/' if parent else ''}{r['name']} ({where})"
            before = {name(r): r for r in start.get(kind, [])}
            after = {name(r): r for r in now.get(kind, [])}
            for key in sorted(set(before) | set(after)):
                if key not in before or key not in after:
                    problems.append((key, "(the resource)", "present" if key in before else "absent",
                                     "present" if key in after else "absent"))
                    continue
                problems += [(key, *p) for p in self.field_problems(before[key], after[key], fields)]
        for key, path, vb, va in problems:
            self.fail("runbook", f"{label}: {key}: {path}: at the start {vb}, now {va}")
        return problems

    def field_problems(self, then, now, fields):
        """[(field, value then, value now)] of one resource; where the resource has a protector,
        the key protecting it must also be among its registered keys."""
        problems = []
        for path, how in fields:
            vb, va = self.field(then, path), self.field(now, path)
            if path == "registeredKeys":
                uri = self.field(now, "protector.uri")
                if isinstance(uri, str) and uri.lower() not in va:
                    problems.append(("the protector's key", f"registered ({uri})",
                                     f"not registered (keys: {json.dumps(va)})"))
            if not self.same(how, vb, va):
                problems.append((path, json.dumps(vb), json.dumps(va)))
        return problems

    def protected_by_customer_keys(self):
        """(kind, name, key URI) of the SQL server and the managed instance whose protector
        key the runbook removes after apply: sql-rotate-dev's versionless key, and the first
        instance on a customer key."""
        mi = next(m for m in self.world["sqlManagedInstances"] if m["protector"]["serverKeyType"] == "AzureKeyVault")
        return [("sqlServers", ROTATE_SERVER, ROTATE_KID), ("sqlManagedInstances", mi["name"], mi["protector"]["uri"])]

    def remove_key(self, world, kind, name, kid):
        """Removes a Key Vault key from a server or instance in a world file, as someone might
        after the apply: backout must then register it again before making it the protector."""
        data = self.dump(world)
        server = next(s for s in data[kind] if s["name"] == name)
        if server["protector"]["serverKeyType"] != "ServiceManaged":
            raise Failure(f"{name}'s protector is {server['protector']} after apply: expected ServiceManaged")
        kept = [k for k in server["keys"] if k["uri"].lower() != kid.lower()]
        if len(kept) == len(server["keys"]):
            raise Failure(f"{kid} is not registered on {name} after apply")
        server["keys"] = kept
        self.load(world, data)

    def check_prechecks(self, applied, statuses):
        """The prechecks (`az keyvault key show --id=...`, Key Vault's data plane) cannot reach
        Key Vault offline: each must fail only at the network (the dead proxy), which shows that
        the real az, logged in, accepted the argv; azbook turns it into a warning. There must be
        one per precheck plan.py renders for a change apply made (a precheck whose `when` is
        false, as for a database without its own key, is not made)."""
        prechecks = 0
        for change in applied["changes"]:
            for warning in change.get("warnings") or []:
                if "keyvault key show" not in warning:
                    continue
                prechecks += 1
                if "Unable to connect to proxy" not in warning:
                    self.fail("runbook", f"apply: the precheck of {change['resource']} failed other than at the "
                              f"network (was its argv rejected?): {warning}")
        rendered = {(c["playbook"], c["resource"]): len(c["prechecks"]) for c in self.plan_changes}
        expected = sum(rendered.get(key, 0) for key, status in statuses.items() if status == "done")
        if prechecks != expected:
            self.fail("runbook", f"apply through the real az: {prechecks} Key Vault precheck warnings, expected "
                      f"{expected} (one per precheck plan.py renders for a change made: Key Vault is out of reach)")
        return prechecks

    def check_registered_again(self, calls):
        """Backout must have registered each removed key again (its skip_if read shows it is not
        there), and no other key (where the key is still there, skip_if skips the step)."""
        key_puts = sorted(c["argv"][1].split("?")[0] for c in calls
                          if c.get("via") == "arm" and c["argv"][0] == "PUT" and "/keys/" in c["argv"][1])
        wanted = sorted(f"/{'servers' if kind == 'sqlServers' else 'managedInstances'}/{name}/keys/"
                        for kind, name, _ in self.protected_by_customer_keys())
        others = [put for put in key_puts if not any(w in put for w in wanted)]
        if others or any(sum(w in put for put in key_puts) != 1 for w in wanted):
            self.fail("runbook", f"backout should have registered the removed keys again on "
                      f"{', '.join(w.split('/')[2] for w in wanted)}, and no other key: key PUTs {key_puts}")

    def runbook(self):
        """The whole runbook, with azbook driving the real az against the ARM face and, on an
        identical world, the CLI face: test, plan --out, apply, test, (keys removed), backout,
        test. Each step's exit code and report must be the same through both; the world must be
        restored."""
        self.render_plan()
        self.load(self.arm_world, self.world)
        self.load(self.cli_world, self.world)
        out_dir = self.work / "runbook"
        out_dir.mkdir()
        faces = {
            "real az": {"az": self.az_wrapper(), "world": self.arm_world, "cwd": self.fresh_dir("runbook-real")},
            "CLI face": {"az": self.sim_az(), "world": self.cli_world, "cwd": self.fresh_dir("runbook-cli")},
        }
        start = {face: self.dump(f["world"]) for face, f in faces.items()}
        (out_dir / "world.start.json").write_text(json.dumps(start["real az"], indent=1))
        jobs = ["--jobs", str(self.args.jobs)]
        took = {}
        counter = [0]

        def step(name, args, expect):
            """Runs one azbook command through both faces: {face: parsed JSON stdout}."""
            counter[0] += 1
            reports = {}
            for face, f in faces.items():
                began = time.monotonic()
                rc, out, err = self.azbook(f["az"], f["world"], jobs + args, cwd=f["cwd"])
                slug = f"{counter[0]}-{name}.{face.replace(' ', '-')}"
                (out_dir / f"{slug}.json").write_text(out)
                (out_dir / f"{slug}.stderr").write_text(err)
                if face == "real az":
                    took[name if name not in took else f"{name} {counter[0]}"] = round(time.monotonic() - began, 1)
                if rc != expect:
                    raise Failure(f"`azbook {' '.join(args)}` through the {face} exits {rc}, expected {expect}:\n"
                                  f"{err[-2500:]}{self.troubles(out)}")
                try:
                    reports[face] = json.loads(out)
                except json.JSONDecodeError:
                    raise Failure(f"`azbook {' '.join(args)}` through the {face} printed no JSON: {out[:300]!r}") from None
            return reports

        test_args = ["test", "--all-subscriptions", "--output", "json"]

        # 1. test: the audit, read-only
        calls_before = len(self.arm_calls())
        first = step("test", test_args, 1)
        self.compare_reports("azbook test", first["real az"], first["CLI face"], "real az", "CLI face")
        calls = self.arm_calls()[calls_before:]
        if any(c.get("mutating") for c in calls):
            self.fail("runbook", "azbook test made a change through the real az")
        if self.world_changed(start):
            self.fail("runbook", "the world changed during azbook test")

        # 2. plan, saved
        plans = step("plan", ["plan", "--all-subscriptions", "--output", "json", "--out", "plan.json"], 0)
        self.compare_reports("azbook plan", plans["real az"], plans["CLI face"], "real az", "CLI face")
        if hasattr(self, "plan_json"):
            # The plan argcheck checked (made in the plan stage, over the same world) is this one.
            self.compare_reports("azbook plan", plans["real az"], self.plan_json, "through the real az",
                                 "in the plan stage")
        planned = {self.report_key(c): c for c in plans["real az"]["changes"]}
        manual = {k for k, c in planned.items() if any(s.get("kind") == "manual" for s in c["steps"])}
        if self.world_changed(start):
            self.fail("runbook", "the world changed during azbook plan")

        # 3. apply that plan
        applied = step("apply", ["apply", "plan.json", "--yes", "--max-changes", "1000", "--output", "json"], 0)
        # Warnings differ by design: the CLI face answers the Key Vault precheck, the real az
        # cannot reach Key Vault offline (checked below).
        strip = lambda c: {k: v for k, v in c.items() if k != "warnings"}  # noqa: E731
        self.compare_reports("azbook apply", applied["real az"], applied["CLI face"], "real az", "CLI face",
                             normalize=strip)
        statuses = {self.report_key(c): c["status"] for c in applied["real az"]["changes"]}
        for key, change in planned.items():
            want = "skipped" if key in manual and not any(s.get("kind") == "az" for s in change["steps"]) else "done"
            if statuses.get(key) != want:
                self.fail("runbook", f"apply: {key[1]} ({key[0]}): {statuses.get(key)}, expected {want}")
        for key in set(statuses) - set(planned):
            self.fail("runbook", f"apply changed {key[1]} ({key[0]}), which the plan did not list")
        prechecks = self.check_prechecks(applied["real az"], statuses)
        after_apply = {face: self.dump(f["world"]) for face, f in faces.items()}
        bad, _ = self.allow.split("world", None, compare.differences(after_apply["real az"], after_apply["CLI face"]))
        for path, va, vc in bad:
            self.fail("runbook", f"after apply the worlds differ at {path}: through the real az {json.dumps(va)}, "
                      f"through the CLI face {json.dumps(vc)}")

        # 4. test: only what needs a manual step is left (az 2.91 can express every database key
        # setup azsim holds, so on this world nothing is: exit 0)
        second = step("test", test_args, 1 if manual else 0)
        self.compare_reports("azbook test after apply", second["real az"], second["CLI face"], "real az", "CLI face")
        left = {self.report_key(r): r["status"] for r in second["real az"]["results"]
                if r["status"] not in ("compliant", "skipped")}
        if set(left) != manual or any(status != "noncompliant" for status in left.values()):
            self.fail("runbook", f"after apply, left noncompliant: {sorted(left.items())}; expected only the "
                      f"targets with a manual step: {sorted(manual)}")

        # 5. someone removes the protector keys from sql-rotate-dev (versionless) and from a
        # managed instance
        removed = self.protected_by_customer_keys()
        for f in faces.values():
            for kind, name, kid in removed:
                self.remove_key(f["world"], kind, name, kid)

        # 6. backout
        calls_before = len(self.arm_calls())
        backed = step("backout", ["backout", "--yes", "--output", "json"], 0)
        self.compare_reports("azbook backout", backed["real az"], backed["CLI face"], "real az", "CLI face",
                             normalize=strip)
        for change in backed["real az"]["changes"]:
            if change["status"] != "restored":
                self.fail("runbook", f"backout: {change['resource']}: {change['status']}: {change.get('message')}")
        done = {k for k, v in statuses.items() if v == "done"}
        if {self.report_key(c) for c in backed["real az"]["changes"]} != done:
            self.fail("runbook", "backout did not revert exactly the changes apply made")
        self.check_registered_again(self.arm_calls()[calls_before:])

        # 7. test: as at the start
        third = step("test", test_args, 1)
        self.compare_reports("azbook test after backout", third["real az"], third["CLI face"], "real az", "CLI face")

        def casefold_source(result):
            result = json.loads(json.dumps(result))
            ev = result.get("evidence") or {}
            if isinstance(ev.get("encryption.keySource"), str):
                ev["encryption.keySource"] = ev["encryption.keySource"].lower()
            return result
        self.compare_reports("azbook test after backout vs before apply", first["real az"], third["real az"],
                             "before", "after", normalize=casefold_source)

        # 8. the world, restored
        end = {face: self.dump(f["world"]) for face, f in faces.items()}
        (out_dir / "world.end.json").write_text(json.dumps(end["real az"], indent=1))
        explained = self.check_world_restored(start, end)

        s1 = first["real az"]["summary"]
        self.notes.append(
            f"runbook: azbook drove the real az through test (summary {s1}), plan ({len(planned)} changes, "
            f"{len(manual)} manual), apply ({sum(1 for v in statuses.values() if v == 'done')} done; "
            f"{prechecks} Key Vault prechecks failed only at the dead proxy, so az accepted them), test "
            f"(left: {len(left)} manual), backout after the protector keys of "
            f"{', '.join(name for _, name, _ in removed)} were removed "
            f"({len(backed['real az']['changes'])} restored, the keys registered again), test; every step's "
            "report equal to the CLI face's, and the world restored on every field the control touches "
            f"({', '.join(kind for kind in self.RESTORED)})")
        self.notes.append("runbook: the restored world differs from the start only as the allow-list "
                          "explains: " + (", ".join(f"{n} x {e}" for e, n in sorted(
                              {e[3]: sum(1 for x in explained if x[3] == e[3]) for e in explained}.items()))
                                          or "nothing"))
        self.notes.append(f"runbook timings through the real az (s): {took}")

    def check_world_restored(self, start, end):
        """After backout, through each face, every field the control touches is as at the start
        (RESTORED); the real az's world differs from the start only as the allow-list's
        `runbook-world` entries explain, and from the CLI face's only as `world` ones do.
        Returns the explained differences."""
        for face in start:
            self.restored(start[face], end[face], f"not restored by backout through the {face}")
        bad, explained = self.allow.split("runbook-world", None, compare.differences(start["real az"], end["real az"]))
        for path, vs, ve in bad:
            self.fail("runbook", f"after backout through the real az the world differs from the start at {path}: "
                      f"{json.dumps(vs)} then, {json.dumps(ve)} now")
        bad, _ = self.allow.split("world", None, compare.differences(end["real az"], end["CLI face"]))
        for path, va, vc in bad:
            self.fail("runbook", f"after backout the worlds differ at {path}: through the real az {json.dumps(va)}, "
                      f"through the CLI face {json.dumps(vc)}")
        return explained

    def drift(self):
        """Drift judged on every field backout writes, with azbook driving the real az against
        the ARM face: a storage account whose customer key is put back by someone else between
        apply and backout, from another vault or pinned to another version, and an encryption
        scope whose key URI is put back at another version, are `drifted` (exit 3) and left as
        they are; a SQL server whose auto-rotation moves between `plan --out` and `apply FILE`
        ends, after backout, exactly as it was just before the apply."""
        for label, field in (("another vault", "encryption.keyVaultProperties.keyVaultUri"),
                             ("another version", "encryption.keyVaultProperties.keyVersion")):
            self.drift_account(label, field)
        self.drift_scope()
        self.drift_saved_plan()
        self.notes.append("drift: through the real az, a customer key put back from another vault or at another "
                          "version between apply and backout (a storage account), and a scope's key URI put back "
                          "at another version, were drifted (exit 3) and left as they were; a saved plan applied "
                          f"after {ROTATE_SERVER}'s auto-rotation moved was backed out to the state just before "
                          "the apply")

    def drift_azbook(self, args, expect, cwd):
        """azbook through the real az (the ARM face's world), its JSON report."""
        if not hasattr(self, "_drift_az"):
            self._drift_az = self.az_wrapper()
        rc, out, err = self.azbook(self._drift_az, self.arm_world, ["--jobs", str(self.args.jobs), *args], cwd=cwd)
        if rc != expect:
            raise Failure(f"drift: `azbook {' '.join(args)}` through the real az exits {rc}, expected "
                          f"{expect}:\n{err[-2500:]}{self.troubles(out)}")
        return json.loads(out)

    def drift_apply(self, playbook, name):
        """A fresh world, one target changed through the real az: the working directory whose
        change log backout will read."""
        self.load(self.arm_world, self.world)
        cwd = self.fresh_dir("drift")
        applied = self.drift_azbook(["apply", "--yes", "--all-subscriptions", "--playbook", playbook,
                                     "--name", name, "--output", "json"], 0, cwd)
        if [c["status"] for c in applied["changes"]] != ["done"]:
            self.fail("drift", f"apply of {name}: {[c['status'] for c in applied['changes']]}, expected done")
        return cwd

    def drift_backout(self, cwd, name, label, field):
        """Backout after someone else changed the target: `drifted` naming `field`, exit 3, and
        not one change made."""
        found = self.dump(self.arm_world)
        calls_before = len(self.arm_calls())
        backed = self.drift_azbook(["backout", "--yes", "--output", "json"], 3, cwd)
        (Path(cwd) / "backout.json").write_text(json.dumps(backed, indent=1))
        change = backed["changes"][0]
        fields = [d["field"] for d in change.get("differences") or []]
        if change["status"] != "drifted" or field not in fields:
            self.fail("drift", f"backout of {name} after {label}: {change['status']} naming {fields}, "
                      f"expected drifted naming {field}")
        if any(c.get("mutating") for c in self.arm_calls()[calls_before:]):
            self.fail("drift", f"backout changed {name}, which had drifted ({label})")
        for path, then, now in compare.differences(found, self.dump(self.arm_world)):
            self.fail("drift", f"a drifted target was not left as it was ({label}): {path}: "
                      f"{json.dumps(then)} then, {json.dumps(now)} now")

    def drift_account(self, label, field):
        """A storage account on a pinned customer key: after apply, its key is put back from
        another vault or at another version."""
        account = next((a for a in self.world["storageAccounts"]
                        if str((a.get("encryption") or {}).get("keySource", "")).lower() == "microsoft.keyvault"
                        and ((a["encryption"].get("keyVaultProperties") or {}).get("keyVersion"))
                        and a["subscription"] != RETIRED["id"]), None)
        if account is None:
            raise Failure("drift: the conformance world has no storage account on a pinned customer key")
        cwd = self.drift_apply("storage-account-mmk", account["name"])
        world = self.dump(self.arm_world)
        kv = json.loads(json.dumps(account["encryption"]))
        if label == "another vault":
            kv["keyVaultProperties"]["keyVaultUri"] = "https://kv-put-back-elsewhere.vault.azure.net/"
        else:
            kv["keyVaultProperties"]["keyVersion"] = "ffffffffffffffffffffffffffffffff"
        next(a for a in world["storageAccounts"] if a["name"] == account["name"])["encryption"] = kv
        self.load(self.arm_world, world)
        self.drift_backout(cwd, account["name"], f"its key was put back from {label}", field)

    def drift_scope(self):
        """An enabled encryption scope on a pinned key (stlogs01's, alone on the last page of its
        list: apply finds it through the real az's pages): after apply, someone gives it its key
        back, but at another version."""
        scope = next((e for e in self.world["encryptionScopes"]
                      if e["source"] == "Microsoft.KeyVault" and e["state"] == "Enabled"
                      and len(e["keyVaultProperties"]["keyUri"].rstrip("/").split("/")) == 6), None)
        if scope is None:
            raise Failure("drift: the conformance world has no enabled encryption scope on a pinned key")
        cwd = self.drift_apply("storage-encryption-scope-mmk", scope["name"])
        world = self.dump(self.arm_world)
        other = scope["keyVaultProperties"]["keyUri"].rsplit("/", 1)[0] + "/ffffffffffffffffffffffffffffffff"
        now = next(e for e in world["encryptionScopes"]
                   if e["account"] == scope["account"] and e["name"] == scope["name"])
        now["source"] = "Microsoft.KeyVault"
        now["keyVaultProperties"] = dict(scope["keyVaultProperties"], keyUri=other, currentVersionedKeyIdentifier=other)
        self.load(self.arm_world, world)
        self.drift_backout(cwd, f"{scope['account']}/{scope['name']}", "its key URI was put back at another version",
                           "keyVaultProperties.keyUri")

    def drift_saved_plan(self):
        """Auto-rotation moves between plan --out and apply FILE (the service may change it):
        backout gives back the state just before the apply, not the one planned."""
        self.load(self.arm_world, self.world)
        cwd = self.fresh_dir("drift-plan")
        self.drift_azbook(["plan", "--all-subscriptions", "--playbook", "sql-server-tde-protector-mmk", "--name",
                           ROTATE_SERVER, "--out", "plan.json", "--output", "json"], 0, cwd)
        world = self.dump(self.arm_world)
        server = next(s for s in world["sqlServers"] if s["name"] == ROTATE_SERVER)
        server["protector"]["autoRotationEnabled"] = False
        for key in server["keys"]:
            key["autoRotationEnabled"] = False
        self.load(self.arm_world, world)
        just_before = self.dump(self.arm_world)
        applied = self.drift_azbook(["apply", "plan.json", "--yes", "--output", "json"], 0, cwd)
        if [c["status"] for c in applied["changes"]] != ["done"]:
            self.fail("drift", f"apply of the saved plan after auto-rotation moved: "
                      f"{[c['status'] for c in applied['changes']]}, expected done")
        self.drift_azbook(["backout", "--yes", "--output", "json"], 0, cwd)
        bad, _ = self.allow.split("runbook-world", None,
                                  compare.differences(just_before, self.dump(self.arm_world)))
        for path, then, now in bad:
            self.fail("drift", f"after apply FILE and backout, {ROTATE_SERVER} is not as just before the "
                      f"apply at {path}: {json.dumps(then)} then, {json.dumps(now)} now")

    @staticmethod
    def troubles(out):
        """The results or changes of an azbook JSON report that went wrong, with their messages."""
        try:
            report = json.loads(out)
        except json.JSONDecodeError:
            return ""
        fine = {"compliant", "noncompliant", "skipped", "waived", "pending", "manual", "done", "restored", "unchanged"}
        bad = [f"\n  {x.get('status')}: {x.get('resource')}: {x.get('message')}"
               for x in report.get("results", []) + report.get("changes", []) if x.get("status") not in fine]
        bad += [f"\n  error: {json.dumps(e)[:500]}" for e in report.get("errors", [])]
        return "".join(bad[:15])

    def world_changed(self, start):
        return self.dump(self.arm_world) != start["real az"]

    # ----------------------------------------------------------------------------------------

    STAGES = ("plan", "reads", "mutations", "argcheck", "protector", "faults", "runbook", "drift")

    def run(self):
        self.timed("setup", self.setup)
        if self.failures:
            return
        stages = self.args.stages or self.STAGES
        for name in self.STAGES:
            if name in stages:
                self.timed(name, getattr(self, name))
        if stages == self.STAGES:
            for entry in self.allow.unused():
                self.fail("allow-list", f"entry '{entry}' matched no difference: remove it or fix the test")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--az", required=True, help="the real az executable")
    parser.add_argument("--az-python", required=True, help="the Python that az runs on")
    parser.add_argument("--azsim", required=True)
    parser.add_argument("--azbook", required=True)
    parser.add_argument("--work", required=True, help="a new or empty directory for the run")
    parser.add_argument("--argv-file", help="also check these argvs (a JSON list, or an azbook plan) with az's parser")
    parser.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--stages", type=lambda v: tuple(x for x in v.split(",") if x),
                        help="run setup and only these stages (comma-separated; default all)")
    args = parser.parse_args()
    for name in args.stages or ():
        if name not in Suite.STAGES:
            parser.error(f"unknown stage {name}; the stages are {', '.join(Suite.STAGES)}")
    work = Path(args.work)
    if work.exists():
        # Only an empty directory or an earlier run's is replaced, never anything else.
        if any(work.iterdir()) and not (work / "report.json").exists() and not (work / "setup.started").exists():
            parser.error(f"--work {work} is not empty and holds no earlier conformance run: choose another")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "setup.started").touch()
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
