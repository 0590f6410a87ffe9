"""The argvs azbook emits for the built-in playbooks over a world, rendered independently of
azbook, the way ARCHITECTURE.md ("How to add a playbook", "The data flow of apply and backout")
says azbook renders them: discovery per subscription, the test reads per target, the verdict, the
prior state (`before`, the fields in `record`), and the implementation and backout steps of every
noncompliant target (with the reads of `skip_if` and `precheck`), each argv ending in
`--subscription=<id>` (resource commands) and `--output=json`. It reads the whole playbook
language: paged lists (`next_marker`: every page through `--marker=<link>`), conditional named
reads (`[test.read_when]`: null and no call where the condition is false), conditional and
list-valued arguments (`{ arg, when }`, `{ arg, each }`) and conditional prechecks (`when`).

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


class PlanError(Exception):
    """The playbooks cannot be rendered over this world the way azbook's loader and renderer
    promise (a step with no value, a list-valued argument with a value az would misread, a
    condition that is not a boolean, a list that pages for ever): run.py reports it as a
    failure of the plan stage, never as a crash of the suite."""


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


def condition(expression, roots):
    """A `when`: azbook refuses one that gives anything but a boolean, so this does too
    (treating it as false would drop an argument azbook's render would have failed on)."""
    value = evaluate(expression, roots)
    if not isinstance(value, bool):
        raise PlanError(f"`{expression}` must give true or false, but gave {json.dumps(value)}")
    return value


def list_values(option, expression, roots):
    """The values of a list-valued argument (`{ arg = "--keys", each = "..." }`): a list of
    strings, null meaning none. A value that is empty or starts with `-` would be read by az as
    nothing or as an option, and one with a control character is refused: azbook refuses to
    render all three (README.md, "Playbooks"), so they are errors here, never arguments."""
    values = evaluate(expression, roots)
    if values is None:
        return []
    if not isinstance(values, list):
        raise PlanError(f"`{expression}` (the values of {option}) gave {json.dumps(values)}, not a list")
    for value in values:
        if not isinstance(value, str):
            raise PlanError(f"`{expression}` (the values of {option}) gave a non-string {json.dumps(value)}")
        if value == "" or value.startswith("-") or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise PlanError(f"{option} would get the value {value!r}, which az would misread")
    return values


def render_argv(argv, roots):
    """Each element one argument; a conditional one (`when`) only where its condition holds;
    a list-valued one (`each`) as its option then one argument per value, and nothing at all,
    not even the option, for an empty list."""
    out = []
    for item in argv:
        if not isinstance(item, dict):
            out.append(render_arg(item, roots))
            continue
        if "when" in item and not condition(item["when"], roots):
            continue
        option = render_arg(item["arg"], roots)
        if "each" not in item:
            out.append(option)
            continue
        values = list_values(option, item["each"], roots)
        if values:
            out += [option, *values]
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
        # Every continuation page asked for (`--marker=<link>`): argvs the reads stage and
        # argcheck check too.
        self.pages = []
        # The conditional reads not made (their condition was false): none may be called.
        self.skipped_reads = []

    def listed(self, level, roots, subscription):
        """The items of one discovery level under `roots`. A paged level (`next_marker`, see
        ARCHITECTURE.md, "Paged lists") is asked for every page: a last item that is an object
        with `nextMarker` alone is dropped, and while its marker is neither null nor "", the same
        argv runs again with `<option>=<marker>` appended (before what azbook adds)."""
        argv = render_argv(level["argv"], roots)
        option = level.get("next_marker")
        items = self.az_json(finish(argv, subscription)) or []
        if not option:
            return items
        out, seen = [], set()
        while True:
            marker = None
            if items and isinstance(items[-1], dict) and set(items[-1]) == {"nextMarker"}:
                marker = items.pop()["nextMarker"]
            out += items
            if not marker:
                return out
            if marker in seen:
                raise PlanError(f"{' '.join(argv)}: the page marker {marker!r} came twice")
            seen.add(marker)
            page = finish([*argv, f"{option}={marker}"], subscription)
            self.pages.append(page)
            items = self.az_json(page) or []

    def targets(self, playbook, subscription):
        """(roots, target) pairs of the last discovery level, skipped ones left out."""
        levels = playbook["discover"]
        frontier = [{}]
        for i, level in enumerate(levels):
            next_frontier = []
            for roots in frontier:
                for item in self.listed(level, roots, subscription):
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
        """The document the verdict sees: the read's output, the listed target, or, with named
        reads, `{"target": <listed item>, <name>: <output>}`, where a read whose `read_when`
        does not hold (judged on the listed target and the levels) is null and never made."""
        test = playbook["test"]
        if "read" in test:
            return self.az_json(finish(render_argv(test["read"], roots), subscription))
        if "reads" not in test:
            return roots["target"]
        state = {"target": roots["target"]}
        only_when = test.get("read_when", {})
        for name, argv in test["reads"].items():
            if name in only_when and not condition(only_when[name], roots):
                state[name] = None
                self.skipped_reads.append(finish(render_argv(argv, roots), subscription))
                continue
            state[name] = self.az_json(finish(render_argv(argv, roots), subscription))
        return state

    def plan(self, playbook, subscription):
        """Per noncompliant target: its implementation then its backout steps, as azbook's
        plan would list them. skip_if is not applied: the skipped step's argv is still one
        azbook emits when the condition does not hold, so it is checked too."""
        changes = []
        for roots in self.targets(playbook, subscription):
            state = self.state(playbook, roots, subscription)
            if condition(playbook["test"]["compliant"], state):
                continue
            step_roots = dict(roots, before=recorded(playbook, state))
            steps = [step for phase in ("implement", "backout")
                     for step in self.steps(playbook, phase, step_roots, subscription)]
            if steps:
                changes.append({"playbook": playbook["id"], "resource": roots["target"]["id"], "steps": steps,
                                "prechecks": prechecks(playbook, step_roots, subscription)})
        return changes

    @staticmethod
    def steps(playbook, phase, roots, subscription):
        """The az steps of one phase that apply to this change (manual steps have no argv)."""
        steps = []
        for step in playbook.get(phase, []):
            if step.get("kind", "az") == "manual":
                continue
            if "when" in step and not condition(step["when"], roots):
                continue
            try:
                argv = finish(render_argv(step["argv"], roots), subscription)
            except Unrenderable as missing:
                raise PlanError(f"playbook {playbook['id']}: step '{step['name']}' has no value for "
                                f"{{{missing}}} on {roots['target'].get('id')}") from None
            steps.append({"phase": phase, "name": step["name"], "argv": argv})
            if "skip_if" in step:
                steps[-1]["skip_if_read"] = finish(render_argv(step["skip_if"]["read"], roots), subscription)
        return steps


def recorded(playbook, state):
    """`before`: only the fields in `record`, each at its path (null where the state has none).
    A `*` segment keeps every key of the map there, each with what the rest of the path names
    (nothing: `{}`), as azbook's `FieldPath::project` does."""
    before = {}
    for path in playbook["test"].get("record", []):
        if ".*" not in path:
            set_path(before, path, lookup(path, state))
            continue
        head, rest = path.split(".*", 1)
        value = every_key(lookup(head, state), rest.lstrip("."))
        current = lookup(head, before)
        if isinstance(current, dict) and isinstance(value, dict):
            for key, kept in value.items():
                current.setdefault(key, {}).update(kept)
        else:
            set_path(before, head, value)
    return before


def every_key(mapping, rest):
    """A map's keys, each with only the field path `rest` of its value ({} for none)."""
    if not isinstance(mapping, dict):
        return None
    out = {}
    for key, value in mapping.items():
        kept = {}
        if rest:
            set_path(kept, rest, lookup(rest, value))
        out[key] = kept
    return out


def prechecks(playbook, roots, subscription):
    """The precheck reads azbook makes before this change: a check whose `when` is false is not
    about this change and is skipped; one with no value is a warning in azbook, no argv."""
    argvs = []
    for check in playbook.get("precheck", []):
        if "when" in check and not condition(check["when"], roots):
            continue
        sub = subscription if check.get("subscription", True) else None
        try:
            argvs.append(finish(render_argv(check["read"], roots), sub))
        except Unrenderable:
            pass
    return argvs


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
            raise PlanError(f"azsim CLI face failed on {argv}: {done.stderr}")
        return json.loads(done.stdout) if done.stdout.strip() else None

    return az_json
