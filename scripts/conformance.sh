#!/usr/bin/env bash
# Conformance with the real Azure CLI: installs a pinned azure-cli from PyPI into a cached
# virtualenv and runs scripts/conformance/run.py, which puts the real `az` against
# `azsim serve` (the ARM face) and compares it with azsim's CLI face (see run.py's docstring
# for the stages). It never skips: if azure-cli cannot be installed or run, it fails.
#
#   scripts/conformance.sh [--argv-file FILE] [--work DIR] [--stages plan,runbook,...]
#
# --stages runs setup and only the stages named (for work on the suite; see run.py).
#
# Environment:
#   AZBOOK_CONFORMANCE_AZ           an az executable to use instead of installing one
#   AZBOOK_CONFORMANCE_AZ_PYTHON    the Python that az runs on (default: the python next to az)
#   AZBOOK_CONFORMANCE_AZ_VERSION   the azure-cli version to install (default 2.91.0)
#   AZBOOK_CONFORMANCE_CACHE        where virtualenvs are kept (default ~/.cache/azbook)
#   AZBOOK_CONFORMANCE_ARGVS        same as --argv-file: more argvs to check with az's parser (a
#                                   JSON list of argvs, or an `azbook plan --output json`), besides
#                                   those of azbook's own plan over the conformance world
#   AZBOOK_CONFORMANCE_JOBS         az processes at once (default: the number of CPUs, at least 2)
set -euo pipefail
invoked_from=$PWD
cd "$(dirname "$0")/.."
root=$PWD

version=${AZBOOK_CONFORMANCE_AZ_VERSION:-2.91.0}
cache=${AZBOOK_CONFORMANCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/azbook}
target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$target_dir/conformance
argv_file=${AZBOOK_CONFORMANCE_ARGVS:-}
stages=
while [ $# -gt 0 ]; do
  case $1 in
    --argv-file) argv_file=$2; shift 2 ;;
    --work) work=$2; case $work in /*) ;; *) work=$invoked_from/$work ;; esac; shift 2 ;;
    --stages) stages=$2; shift 2 ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "conformance.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
# A path given relative to where the script was started from.
case $argv_file in '' | /*) ;; *) argv_file=$invoked_from/$argv_file ;; esac

fail() { printf 'conformance.sh: FAILED: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

start=$(now)
echo "== building azsim and azbook" >&2
cargo build --locked --workspace --bins --quiet
azsim=$target_dir/debug/azsim
azbook=$target_dir/debug/azbook

install_started=$(now)
if [ -n "${AZBOOK_CONFORMANCE_AZ:-}" ]; then
  az=$AZBOOK_CONFORMANCE_AZ
  [ -x "$az" ] || fail "AZBOOK_CONFORMANCE_AZ=$az is not an executable"
  az_python=${AZBOOK_CONFORMANCE_AZ_PYTHON:-$(dirname "$az")/python}
  echo "== using $az" >&2
else
  venv=$cache/azure-cli-$version
  az=$venv/bin/az
  az_python=${AZBOOK_CONFORMANCE_AZ_PYTHON:-$venv/bin/python}
  # A venv is reused only when its install completed (the marker is written last) and its
  # Python still runs (a venv breaks when the Python it was made from goes away).
  if [ -f "$venv/.azbook-complete" ] && "$venv/bin/python" -c 'import azure.cli.core' 2>/dev/null; then
    echo "== reusing azure-cli $version in $venv" >&2
  else
    echo "== installing azure-cli $version into $venv (about a minute and 730 MB)" >&2
    command -v python3 >/dev/null || fail "python3 is needed to install azure-cli"
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv" || fail "cannot create a virtualenv (python3 -m venv) in $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "azure-cli==$version" \
      || fail "pip could not install azure-cli==$version from PyPI"
    touch "$venv/.azbook-complete"
  fi
fi
[ -x "$az_python" ] || fail "no Python for az at $az_python (set AZBOOK_CONFORMANCE_AZ_PYTHON)"
"$az_python" -c 'import azure.cli.core, jmespath' \
  || fail "$az_python cannot import azure.cli.core (is it the Python that $az runs on?)"
install_time=$(elapsed "$install_started")

args=(--az "$az" --az-python "$az_python" --azsim "$azsim" --azbook "$azbook" --work "$work")
[ -n "$argv_file" ] && args+=(--argv-file "$argv_file")
[ -n "$stages" ] && args+=(--stages "$stages")
[ -n "${AZBOOK_CONFORMANCE_JOBS:-}" ] && args+=(--jobs "$AZBOOK_CONFORMANCE_JOBS")
suite_started=$(now)
status=0
"$az_python" scripts/conformance/run.py "${args[@]}" || status=$?
printf 'conformance.sh: az install or check %ss, suite %ss, total %ss\n' \
  "$install_time" "$(elapsed "$suite_started")" "$(elapsed "$start")" >&2
exit "$status"
