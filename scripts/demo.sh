#!/usr/bin/env bash
# The main job, on a fresh machine, with no Azure account: build azbook and azsim, seed a demo
# Azure world with every edge case the MMK control has, and run the whole runbook against it:
# test, plan, apply, test again, backout, test again.
#
# It never touches a real subscription, whatever `az login` this machine has: the `az` that
# azbook runs is azsim (a link named `az` in a private bin directory, also passed as --az), and
# AZURE_CONFIG_DIR points at a new empty directory.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --workspace --bins --quiet
root=$PWD
demo=$root/target/demo
rm -rf "$demo"
mkdir -p "$demo/bin" "$demo/azure-config"
ln -s "$root/target/debug/azsim" "$demo/bin/az"

export AZSIM_WORLD=$demo/world.db
export AZURE_CONFIG_DIR=$demo/azure-config
export PATH=$demo/bin:$PATH
unset AZBOOK_AZ

"$root/target/debug/azsim" seed --fleet demo >/dev/null

azbook=("$root/target/debug/azbook" --az "$demo/bin/az" --state-dir "$demo/state")
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

# Exit 1 from `test` means "noncompliant found": expected here, so only 2 and 3 stop the demo.
run() {
  local status=0
  "${azbook[@]}" "$@" || status=$?
  if [ "$status" -ge 2 ]; then
    echo "azbook $* exited $status" >&2
    exit "$status"
  fi
}

step "1. test: audit the demo fleet"
run test "$@"
step "2. plan: what apply would change, and how each change is undone"
run plan "$@"
step "3. apply: make the changes (each written to the change log first)"
run apply --yes "$@"
step "4. test again: only what needs a person is left"
run test "$@"
step "5. backout: restore the exact prior state from the change log"
run backout --yes
step "6. test again: the fleet is back as it was"
run test "$@"
step "the change log"
run runs

cat >&2 <<EOT

Exit codes: 0 all compliant, 1 noncompliant found, 2 nothing ran, 3 some targets could not be
tested or changed. To explore the same world yourself:
  export AZSIM_WORLD=$AZSIM_WORLD AZURE_CONFIG_DIR=$AZURE_CONFIG_DIR PATH=$demo/bin:\$PATH
  target/debug/azbook --state-dir $demo/state test --output json
  target/debug/azbook --state-dir $demo/state log <run id>
  target/debug/azsim dump        # the whole world as JSON
EOT
