"""The argvs azbook emits for the built-in playbooks over a world, rendered independently of
azbook, the way ARCHITECTURE.md ("How to add a playbook", "The data flow of apply and backout")
says azbook renders them: discovery per subscription, the test reads per target, the verdict, the
prior state (`before`, the fields in `record`), and the implementation and backout steps of every
noncompliant target (with the reads of `skip_if` and `precheck`), each argv ending in
`--subscription=<id>` (resource commands) and `--output=json`.

The suite takes its argvs from `azbook plan --output json` itself (`steps_from_plan_file` reads
that format, or a plain JSON list of argvs); this second rendering is the cross-check: run.py
fails when the two disagree, since then azbook or this reading of the playbooks is wrong. It also
supplies the argvs a plan does not list (the `skip_if` and `precheck` reads).

The reads that rendering needs run against azsim's CLI face (what azbook would see from az).
"""

import json
import re
import subprocess

import jmespath
from jmespath import functions

try:
    import tomllib
except ImportError:  # Python 3.10: azure-cli still supports it
    import tomli as tomllib


class _Functions(functions.Functions):
    """azbook's JMESPath additions: lower(s) and upper(s), null staying null."""

    @functions.signature({"types": ["string", "null"]})
    def _func_lower(self, s):
        return None if s is None else s.lower()

    @functions.signature({"types": ["string", "null"]})
    def _func_upper(self, s):
        return None if s is None else s.upper()


_OPTIONS = jmespath.Options(custom_functions=_Functions())
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# Commands that take no --subscription: azbook adds it only to calls that read or change a
# resource (ARCHITECTURE.md, Layers and why).
_NO_SUBSCRIPTION = (("account", "show"), ("account", "list"), ("version",))


class Unrenderable(Exception):
    """A placeholder whose value is null or missing: azbook would not emit this argv."""


def evaluate(expression, data):
    return jmespath.search(expression, data, options=_OPTIONS)


def lookup(path, roots):
    value = roots
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def render_arg(template, roots):
    def fill(match):
        value = lookup(match.group(1).strip(), roots)
        if value is None:
            raise Unrenderable(match.group(1))
        return value if isinstance(value, str) else json.dumps(value)

    return _PLACEHOLDER.sub(fill, template)


def render_argv(argv, roots):
    out = []
    for item in argv:
        if isinstance(item, dict):
            if evaluate(item["when"], roots) is not True:
                continue
            item = item["arg"]
        out.append(render_arg(item, roots))
    return out


def finish(argv, subscription):
    """What azbook adds: --subscription on resource commands (none when `subscription` is None,
    as for a data-plane precheck), --output=json on every call."""
    words = tuple(a for a in argv[1:] if not a.startswith("-"))
    full = list(argv)
    if subscription is not None and not any(words[: len(w)] == w for w in _NO_SUBSCRIPTION):
        full.append(f"--subscription={subscription}")
    full.append("--output=json")
    return full


def set_path(target, path, value):
    parts = path.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


class Renderer:
    """Renders playbooks over the world behind `az` (a callable: argv -> parsed JSON)."""

    def __init__(self, az_json):
        self.az_json = az_json

    def targets(self, playbook, subscription):
        """(roots, target) pairs of the last discovery level, skipped ones left out."""
        levels = playbook["discover"]
        frontier = [{}]
        for i, level in enumerate(levels):
            next_frontier = []
            for roots in frontier:
                argv = finish(render_argv(level["argv"], roots), subscription)
                for item in self.az_json(argv) or []:
                    r = dict(roots)
                    r[level["name"]] = item
                    if i == len(levels) - 1:
                        r["target"] = item
                        if any(evaluate(s["when"], item) is True for s in level.get("skip", [])):
                            continue
                    next_frontier.append(r)
            frontier = next_frontier
        return frontier

    def state(self, playbook, roots, subscription):
        test = playbook["test"]
        if "read" in test:
            return self.az_json(finish(render_argv(test["read"], roots), subscription))
        if "reads" in test:
            return {
                name: self.az_json(finish(render_argv(argv, roots), subscription))
                for name, argv in test["reads"].items()
            }
        return roots["target"]

    def plan(self, playbook, subscription):
        """Per noncompliant target: its implementation then its backout steps, as azbook's
        plan would list them. skip_if is not applied: the skipped step's argv is still one
        azbook emits when the condition does not hold, so it is checked too."""
        changes = []
        for roots in self.targets(playbook, subscription):
            state = self.state(playbook, roots, subscription)
            if evaluate(playbook["test"]["compliant"], state) is True:
                continue
            before = {}
            for path in playbook["test"].get("record", []):
                set_path(before, path, lookup(path, state))
            step_roots = dict(roots)
            step_roots["before"] = before
            steps = []
            for phase in ("implement", "backout"):
                for step in playbook.get(phase, []):
                    if step.get("kind", "az") == "manual":
                        continue
                    if "when" in step and evaluate(step["when"], step_roots) is not True:
                        continue
                    try:
                        argv = finish(render_argv(step["argv"], step_roots), subscription)
                    except Unrenderable as missing:
                        raise SystemExit(
                            f"playbook {playbook['id']}: step '{step['name']}' has no value for "
                            f"{{{missing}}} on {roots['target'].get('id')}"
                        ) from None
                    steps.append({"phase": phase, "name": step["name"], "argv": argv})
                    if "skip_if" in step:
                        read = finish(render_argv(step["skip_if"]["read"], step_roots), subscription)
                        steps[-1]["skip_if_read"] = read
            prechecks = []
            for check in playbook.get("precheck", []):
                sub = subscription if check.get("subscription", True) else None
                try:
                    prechecks.append(finish(render_argv(check["read"], step_roots), sub))
                except Unrenderable:
                    pass  # azbook turns this into a warning; no argv is emitted
            if steps:
                changes.append(
                    {"playbook": playbook["id"], "resource": roots["target"]["id"], "steps": steps,
                     "prechecks": prechecks}
                )
        return changes


def load_playbooks(paths):
    out = []
    for path in paths:
        with open(path, "rb") as f:
            out.append(tomllib.load(f))
    return out


def steps_from_plan_file(path):
    """The argvs of a plan file: `azbook plan --output json` ({"changes": [{"steps":
    [{"argv": [...], "kind": "az" | "manual"}], "backout": [argv, ...]}]}) or a plain JSON list
    of argvs."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if isinstance(data, list):
        return [a["argv"] if isinstance(a, dict) else a for a in data]
    argvs = []
    for change in data.get("changes", []):
        for step in change.get("steps", []):
            if step.get("kind", "az") == "az" and step.get("argv"):
                argvs.append(step["argv"])
        for argv in change.get("backout", []):
            argvs.append(argv["argv"] if isinstance(argv, dict) else argv)
    return argvs


def cli_face(azsim, world, log):
    """az_json over azsim's CLI face (`azsim az ...`)."""

    def az_json(argv):
        env = {"AZSIM_WORLD": world, "AZSIM_LOG": log, "PATH": "/usr/bin:/bin"}
        done = subprocess.run([azsim, "az", *argv[1:]], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"azsim CLI face failed on {argv}: {done.stderr}")
        return json.loads(done.stdout) if done.stdout.strip() else None

    return az_json
