#!/usr/bin/env bash
# Every test azbook has: formatting, lints, unit tests, end-to-end tests of both binaries
# against azsim, and the demo itself. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo test (unit and end-to-end)"
cargo test --locked --workspace --all-targets

step "crash test: apply killed at 52 points, then backout (scripts/crash-test.sh)"; scripts/crash-test.sh

# Benchmarks are not tests: this only checks that scripts/bench.sh still works (small fleet).
step "benchmark script, small fleet (scripts/bench.sh --quick)"; scripts/bench.sh --quick

step "the README's demo (scripts/demo.sh)"
demo_out=$(scripts/demo.sh 2>&1) || { printf '%s\n' "$demo_out" >&2; echo "scripts/demo.sh failed" >&2; exit 1; }
# The demo fleet has both compliant and noncompliant resources of every kind; the demo must
# show them, so a demo that silently printed nothing fails here.
for expect in "^noncompliant +storage-account-mmk" "^compliant +sql-server-tde-protector-mmk" \
  "^skipped +sql-database-tde-mmk" "^done +storage-account-mmk" "^restored +storage-account-mmk" \
  "removes the customer's control of the key"; do
  if ! grep -qE -- "$expect" <<<"$demo_out"; then
    printf '%s\n' "$demo_out" >&2
    echo "the demo output lacks: $expect" >&2
    exit 1
  fi
done

# The real azure-cli (pinned; installed once into ~/.cache/azbook) against azsim's ARM and CLI faces.
step "conformance with the real Azure CLI (scripts/conformance.sh)"; scripts/conformance.sh

step "all tests passed"
