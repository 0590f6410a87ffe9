#!/usr/bin/env bash
# The main job, on a fresh machine, with no Azure account: build azbook and azsim, seed a demo
# Azure world with every edge case the MMK control has, and audit it.
#
# It never touches a real subscription, whatever `az login` this machine has: the `az` that
# azbook runs is azsim (a link named `az` in a private bin directory, also passed as --az), and
# AZURE_CONFIG_DIR points at a new empty directory.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --bins --quiet
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

status=0
"$root/target/debug/azbook" --az "$demo/bin/az" test "$@" || status=$?

cat >&2 <<EOT

azbook exited $status (0 all compliant, 1 noncompliant found, 2 nothing ran, 3 some targets
could not be tested). The demo fleet is meant to hold noncompliant resources.
To explore the same world yourself:
  export AZSIM_WORLD=$AZSIM_WORLD AZURE_CONFIG_DIR=$AZURE_CONFIG_DIR PATH=$demo/bin:\$PATH
  target/debug/azbook test --output json
  target/debug/azsim dump        # the whole world as JSON
EOT
case $status in
  0 | 1) exit 0 ;;
  *) exit "$status" ;;
esac
