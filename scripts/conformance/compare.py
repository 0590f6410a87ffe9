"""Field-by-field comparison of two JSON documents, and the reviewed allow-list of differences.

A difference is a path (`encryption.keyVaultProperties.keyVersion`, list items by index) whose
value differs, or that exists on one side only. The allow-list (allowlist.json) names the
differences that are understood, each with a reason: an entry has a `scope` (`read`,
`mutation-output`, `world`, `stderr`), an optional `command` (az command words the entry is
limited to), a `path` pattern (`*` matches one segment, `**` any number) and a `reason`.
Every entry must be used by the run, or the suite fails: a stale entry would hide a future
difference.

One difference is normalised before comparing instead of allowed: the host of a paged list's
next link (`azure_host`), which is by nature the host az talked to.
"""

import json


def flatten(value, prefix=()):
    """{path tuple: leaf value}; empty objects and lists are leaves."""
    if isinstance(value, dict) and value:
        out = {}
        for k, v in value.items():
            out.update(flatten(v, prefix + (str(k),)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, prefix + (str(i),)))
        return out
    return {prefix: value}


def differences(left, right):
    """[(path string, left value or "<absent>", right value or "<absent>")], sorted."""
    a, b = flatten(left), flatten(right)
    out = []
    for path in sorted(set(a) | set(b)):
        va, vb = a.get(path, "<absent>"), b.get(path, "<absent>")
        if va != vb or (path in a) != (path in b):
            out.append((".".join(path), va, vb))
    return out


AZURE_RESOURCE_MANAGER = "https://management.azure.com"


def azure_host(value, serve_base):
    """`value` with each `nextMarker` link that starts at `serve_base` (azsim serve's
    https://127.0.0.1:PORT) moved to Azure Resource Manager's host.

    Why: az 2.91 prints a paged list's next link (`az storage account encryption-scope list`'s
    trailing `{"nextMarker": ...}`) as the service gave it, and the service names its own host:
    through the real az that is azsim serve on loopback, while the CLI face answers as Azure
    does, with https://management.azure.com. Only that prefix, only in `nextMarker`, is
    rewritten, so that the rest of the link (path, api-version, $include, $skipToken) is still
    compared exactly; a link to any other host is left as it is, and then differs."""
    if isinstance(value, list):
        return [azure_host(v, serve_base) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: azure_host(v, serve_base) for k, v in value.items()}
    link = out.get("nextMarker")
    if isinstance(link, str) and link.startswith(serve_base.rstrip("/") + "/"):
        out["nextMarker"] = AZURE_RESOURCE_MANAGER + link[len(serve_base.rstrip("/")):]
    return out


def _match(pattern, path):
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and (head in ("*", path[0])) and _match(rest, path[1:])


class AllowList:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.entries = json.load(f)["entries"]
        for i, entry in enumerate(self.entries):
            missing = {"id", "scope", "path", "reason"} - set(entry)
            if missing or not entry["reason"].strip():
                raise SystemExit(f"allow-list entry {i} lacks {sorted(missing) or ['a reason']}")
        self.used = {}

    def allowed(self, scope, command, path):
        """The id of the entry that allows a difference at `path`, or None."""
        for entry in self.entries:
            if entry["scope"] != scope:
                continue
            if entry.get("command") and entry["command"] != command:
                continue
            if _match(entry["path"].split("."), path.split(".")):
                self.used[entry["id"]] = self.used.get(entry["id"], 0) + 1
                return entry["id"]
        return None

    def split(self, scope, command, diffs):
        """(unexplained differences, explained ones with the entry id)."""
        bad, explained = [], []
        for d in diffs:
            entry = self.allowed(scope, command, d[0])
            (explained if entry else bad).append(d + ((entry,) if entry else ()))
        return bad, explained

    def unused(self):
        return [e["id"] for e in self.entries if e["id"] not in self.used]


def _self_test():
    assert differences({"a": {"b": 1, "c": [1, 2]}}, {"a": {"b": 1, "c": [1, 3]}}) == [
        ("a.c.1", 2, 3)
    ]
    assert differences({"a": None, "b": 1}, {"b": 1}) == [("a", None, "<absent>")]
    assert differences({"a": {}}, {"a": {}}) == []
    assert _match("x.*.z".split("."), "x.0.z".split("."))
    assert _match("**.ts".split("."), "a.b.ts".split("."))
    assert not _match("x.*".split("."), "x.0.z".split("."))
    page = [{"name": "a"}, {"nextMarker": "https://127.0.0.1:8443/subscriptions/s?$skipToken=b"}]
    assert azure_host(page, "https://127.0.0.1:8443")[1] == {
        "nextMarker": "https://management.azure.com/subscriptions/s?$skipToken=b"}
    assert azure_host(page, "https://127.0.0.1:9") == page


_self_test()
