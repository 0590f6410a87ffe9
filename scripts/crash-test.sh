#!/usr/bin/env bash
# The crash test (issue 5): kill `azbook apply` at 52 points spread over a run against azsim,
# back out after each, and prove that every resource it touched is restored. See
# scripts/crash/crash_test.py for what each point does and checks; RELIABILITY.md for the
# latest figures. Options (--only REGEX, --list, --latency MS, --jitter MS) go to the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --workspace --bins
PYTHONDONTWRITEBYTECODE=1 exec python3 scripts/crash/crash_test.py "$@"
