"""Checks argvs with the real azure-cli's own parser and validators, logged out, in ONE process.

Run with az's own Python (the venv's `python`), in a throw-away AZURE_CONFIG_DIR with the guard
environment (`guard_env` in run.py; README.md, "Conformance with the real Azure CLI"):

    python argcheck.py ARGV_FILE > results.json

ARGV_FILE is JSON: a list whose items are argv lists (`["az", "storage", ...]`, the leading "az"
optional) or objects with an "argv" list (other keys are passed through). A logged-out az ends
every accepted command with `Please run 'az login' to setup account.` (exit 1): the parser and
the command's validators accepted the argv (a command that needs no login, such as
`az account list`, exits 0). Exit 2 is a rejection by the parser or a validator;
any other exit-1 error is a rejection raised while the command ran. The result for each argv is
{"argv", "exit_code", "verdict": "accepted" | "rejected", "stderr"} plus the passed-through keys.
"""

import io
import json
import logging
import sys

LOGIN_NEEDED = "Please run 'az login' to setup account."


def check(argv):
    from azure.cli.core import get_default_cli

    args = argv[1:] if argv and argv[0] == "az" else list(argv)
    err = io.StringIO()
    out = io.StringIO()
    saved_err = sys.stderr
    sys.stderr = err
    # knack attaches its console handler to sys.stderr at configure time; start clean so
    # that it attaches to the captured stream and earlier invocations' handlers are gone.
    for name in ("", "cli", "azure"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    try:
        cli = get_default_cli()
        try:
            code = cli.invoke(args, out_file=out)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.stderr = saved_err
    text = err.getvalue()
    # `az account list` logged out prints an empty list with a warning and exits 0.
    accepted = code == 0 or (code == 1 and LOGIN_NEEDED in text)
    return {
        "argv": ["az"] + args,
        "exit_code": code,
        "verdict": "accepted" if accepted else "rejected",
        "stderr": text,
    }


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        items = json.load(f)
    results = []
    for item in items:
        extra = dict(item) if isinstance(item, dict) else {}
        argv = extra.pop("argv", None) if extra else item
        result = check(list(argv))
        result.update({k: v for k, v in extra.items() if k not in result})
        results.append(result)
    json.dump(results, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
