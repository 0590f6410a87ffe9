#!/usr/bin/env bash
# Benchmarks (issue 6): azbook against azsim's generated fleets with injected latency, against
# the lower bound of ARCHITECTURE.md (Performance model) and against "the seed's way" (one az
# call per resource, in sequence), all in one run. Prints a table and writes BENCHMARKS.md.
#
#   scripts/bench.sh [--only small|medium|large]... [--quick] [options]
#
#   --only FLEET       run only this fleet (repeatable, or comma-separated); default all three
#   --quick            the small fleet only, latency 20 ms, a debug build, a report under
#                      target/bench-quick/ (not BENCHMARKS.md): checks that the script works,
#                      for scripts/test.sh; asserts nothing about speed
#   --jobs N           azbook --jobs (default 16)
#   --latency MS       azsim latencyMs (default 200; --quick 20)
#   --jitter MS        azsim jitterMs (default 20; --quick 5)
#   --seed-sample N    the seed's way runs N calls of each kind (for scope lists: N accounts,
#                      every page of each), evenly spread, and estimates the rest (default: every
#                      call at small and medium, 100 of each kind at large; 0 means every call)
#   --version-runs N   runs of `azbook --version` (default 200; --quick 20)
#   --pairs N          pairs of `test` with every playbook and without the scope playbook, run in
#                      turn to measure what the per-account scope list costs (default 3, 1 at
#                      large; --quick 1)
#   --note TEXT        a line for the report's Notes (repeatable): why a fleet was left out, say
#   --real-az yes|no   also run the small fleet through the real az and `azsim serve`, when the
#                      conformance tooling's azure-cli is installed (default yes; --quick no)
#   --profile P        release (default) or debug (--quick's default)
#   --out FILE         where the report goes (default BENCHMARKS.md; --quick target/bench-quick/)
#   --render RESULTS   measure nothing: write the report again from a results file of an earlier
#                      run (target/bench/results.jsonl), e.g. after changing scripts/bench/*
#
# It never touches a real subscription: the az that azbook runs is azsim, linked as `az` in a
# private bin directory and passed with --az, and AZURE_CONFIG_DIR is a new empty directory.
# The real-az row runs the real azure-cli only against `azsim serve`, with the conformance
# suite's guard (custom cloud, dead HTTPS proxy). Exits non-zero when anything fails.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
root=$PWD
command_line="scripts/bench.sh${*:+ $*}"

fleets=() quick=0 render='' jobs=16 latency='' jitter='' seed_sample='' version_runs='' real_az='' profile='' out=''
pairs='' notes=()
usage() { sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --only) IFS=, read -r -a more <<<"$2"; fleets+=("${more[@]}"); shift 2 ;;
    --quick) quick=1; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --latency) latency=$2; shift 2 ;;
    --jitter) jitter=$2; shift 2 ;;
    --seed-sample) seed_sample=$2; shift 2 ;;
    --version-runs) version_runs=$2; shift 2 ;;
    --pairs) pairs=$2; shift 2 ;;
    --note) notes+=("$2"); shift 2 ;;
    --real-az) real_az=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --render) render=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for f in "${fleets[@]}"; do
  case $f in small | medium | large) ;; *) echo "bench.sh: unknown fleet '$f' (small, medium, large)" >&2; exit 2 ;; esac
done
target_dir=${CARGO_TARGET_DIR:-$root/target}
if [ "$quick" = 1 ]; then
  [ ${#fleets[@]} -eq 0 ] && fleets=(small)
  : "${latency:=20}" "${jitter:=5}" "${version_runs:=20}" "${real_az:=no}" "${profile:=debug}" "${pairs:=1}"
  work=$target_dir/bench-quick
  : "${out:=$work/BENCHMARKS.md}"
else
  [ ${#fleets[@]} -eq 0 ] && fleets=(small medium large)
  : "${latency:=200}" "${jitter:=20}" "${version_runs:=200}" "${real_az:=yes}" "${profile:=release}"
  work=$target_dir/bench
  : "${out:=$root/BENCHMARKS.md}"
fi
case $profile in release | debug) ;; *) echo "bench.sh: --profile is release or debug" >&2; exit 2 ;; esac

fail() { printf 'bench.sh: FAILED: %s\n' "$*" >&2; exit 1; }
say() { printf '== %s\n' "$*" >&2; }
py() { python3 "$root/scripts/bench/bench.py" "$@"; }
command -v python3 >/dev/null || fail "python3 is needed (scripts/bench/bench.py reads the JSON)"
if [ -n "$render" ]; then
  [ -f "$render" ] || fail "no results file $render"
  py report "$render" --md "$out"
  say "report written to $out from $render (nothing measured)"
  exit 0
fi
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# CPU seconds (user + system) of every child this shell has waited for: `snap_children FILE`
# must run in this shell, not in $(...) (a subshell's children start from zero).
snap_children() { times >"$1"; }
children_cpu() {
  awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); s += p[1] * 60 + p[2] } printf "%.3f", s }' "$1"
}
# Busy CPU seconds of the whole machine, from /proc/stat (USER_HZ is 100 on Linux).
machine_cpu() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; printf "%.2f", (t - $5 - $6) / 100 }' /proc/stat; }
load1() { cut -d' ' -f1 /proc/loadavg; }

rm -rf "$work"
mkdir -p "$work/bin" "$work/azure-config" "$(dirname "$out")"
say "building azbook and azsim ($profile; compiler output in $work/build.log)"
build=(cargo build --locked --workspace --bins)
[ "$profile" = release ] && build+=(--release)
"${build[@]}" >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; fail "${build[*]}"; }
bin_dir=$target_dir/$profile
ln -s "$bin_dir/azsim" "$work/bin/az"
az=$work/bin/az
azsim=$bin_dir/azsim
azbook=$bin_dir/azbook
export AZURE_CONFIG_DIR=$work/azure-config PATH=$work/bin:$PATH NO_COLOR=1
unset AZBOOK_AZ AZBOOK_STATE_DIR AZSIM_LOG
results=$work/results.jsonl
: >"$results"

# ---- the machine and the run
cores=$(nproc)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gb=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
os_name=$( (. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-Linux}") || echo Linux)
git_desc=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock playbooks 2>/dev/null)" ]; then
  git_desc="commit $git_desc plus uncommitted changes in src/, Cargo.toml, Cargo.lock or playbooks/"
else
  git_desc="commit $git_desc"
fi
load_start=$(load1)

# ---- azbook --version: start-up time, many runs, the median
say "azbook --version, $version_runs runs"
if command -v hyperfine >/dev/null; then
  hyperfine --runs "$version_runs" --warmup 5 -N --export-json "$work/version.json" "$azbook --version" >/dev/null 2>&1 \
    || fail "hyperfine $azbook --version"
  version_json=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; t=sorted(x*1000 for x in r["times"]); print(json.dumps({"runs":len(t),"median":r["median"]*1000,"p90":t[int(0.9*len(t))-1],"min":t[0],"tool":"hyperfine"}))' "$work/version.json")
else
  for _ in 1 2 3 4 5; do "$azbook" --version >/dev/null; done
  for ((i = 0; i < version_runs; i++)); do
    t0=${EPOCHREALTIME/./}
    "$azbook" --version >/dev/null
    t1=${EPOCHREALTIME/./}
    echo "$(((t1 - t0)))"
  done | awk '{ printf "%.3f\n", $1 / 1000 }' >"$work/version.ms"
  version_json=$(py median <"$work/version.ms" | python3 -c 'import json,sys; d=json.load(sys.stdin); d["tool"]="a bash loop (EPOCHREALTIME around each run, fork and exec included)"; print(json.dumps(d))')
fi
azbook_version=$("$azbook" --version)

# ---- one measured azbook command
# measure FLEET PHASE OK_EXIT_CODES CMD...: wall time, calls (from the phase's own invocation
# log), azbook's own CPU and peak memory (its -v line), the CPU of everything it waited for,
# and the CPU the rest of the machine used meanwhile.
measure() {
  local fleet=$1 phase=$2 ok=$3
  shift 3
  local dir=$work/$fleet rc=0 m0 m1 c0 c1 t0 t1 wall self_cpu=null peak=null line
  export AZSIM_LOG=$dir/$phase.calls.jsonl
  : >"$AZSIM_LOG"
  m0=$(machine_cpu)
  snap_children "$work/.times0"
  t0=$EPOCHREALTIME
  "$@" >"$dir/$phase.out" 2>"$dir/$phase.err" </dev/null || rc=$?
  t1=$EPOCHREALTIME
  snap_children "$work/.times1"
  m1=$(machine_cpu)
  c0=$(children_cpu "$work/.times0")
  c1=$(children_cpu "$work/.times1")
  unset AZSIM_LOG
  if ! [[ " $ok " == *" $rc "* ]]; then
    tail -n 20 "$dir/$phase.err" >&2
    fail "$fleet: azbook $phase exited $rc (expected $ok); see $dir/$phase.err"
  fi
  wall=$(sub "$t0" "$t1")
  line=$(grep -E 'azbook itself used [0-9.]+s of CPU and at most [0-9.]+ MB' "$dir/$phase.err" | tail -n 1 || true)
  if [ -n "$line" ]; then
    self_cpu=$(sed -E 's/.*used ([0-9.]+)s of CPU.*/\1/' <<<"$line")
    peak=$(sed -E 's/.*at most ([0-9.]+) MB.*/\1/' <<<"$line")
  fi
  local children other
  children=$(sub "$c0" "$c1")
  other=$(awk -v m="$(sub "$m0" "$m1")" -v c="$children" 'BEGIN { o = m - c; if (o < 0) o = 0; printf "%.2f", o }')
  printf '{"kind":"%s","fleet":"%s","wall":%s,"rc":%s,"self_cpu":%s,"peak_mb":%s,"children_cpu":%s,"other_cpu":%s,"calls":%s}\n' \
    "$phase" "$fleet" "$wall" "$rc" "$self_cpu" "$peak" "$children" "$other" "$(py calls "$dir/$phase.calls.jsonl")" >>"$results"
  printf '   %-8s %-8s %8ss  exit %s  %s\n' "$fleet" "$phase" "$wall" "$rc" "$(tail -n 2 "$dir/$phase.err" | head -n 1)" >&2
}

# ---- the seed's way: one az call per resource, in sequence (bench.py seed-way runs and times
# each call, following a paged list's markers)
seed_way() {
  local fleet=$1 dir=$work/$1
  export AZSIM_LOG=$dir/seed-way.calls.jsonl
  : >"$AZSIM_LOG"
  py seed-way "$az" "$dir" "$fleet" >>"$results" || fail "$fleet: the seed's way failed"
  unset AZSIM_LOG
  printf '   %-8s %-8s for %s calls\n' "$fleet" "seed-way" "$(wc -l <"$dir/seed-way.times")" >&2
}

# ---- the cost of the per-account scope list: `test` without the scope playbook (B), alternated
# with `test` with every playbook (A), A B A B, so that each pair's ratio shares the machine's
# state; the first A is the fleet's `test` measurement itself.
without_scopes=(--playbook storage-account-mmk --playbook sql-server-tde-protector-mmk
  --playbook sql-managed-instance-tde-protector-mmk --playbook sql-database-tde-mmk)
scope_cost() {
  local fleet=$1 dir=$work/$1 n=$2 i
  shift 2
  for ((i = 1; i <= n; i++)); do
    if [ "$i" -gt 1 ]; then
      measure "$fleet" "test-again-$i" "0 1" "$@" test --all-subscriptions --output json
      py check-test "$dir/test-again-$i.out" "$dir/inventory.json" >/dev/null \
        || fail "$fleet: azbook test (again) did not cover the fleet"
    fi
    measure "$fleet" "without-scopes-$i" "0 1" "$@" test --all-subscriptions --output json "${without_scopes[@]}"
    py check-test "$dir/without-scopes-$i.out" "$dir/inventory.json" --without-scopes >/dev/null \
      || fail "$fleet: azbook test without the scope playbook did not cover the rest of the fleet"
  done
}

# ---- one fleet, every measurement
run_fleet() {
  local fleet=$1 dir=$work/$1 sample
  mkdir -p "$dir"
  export AZSIM_WORLD=$dir/world.db
  say "$fleet fleet: seeding"
  "$azsim" seed --fleet "$fleet" --noncompliant-percent 30 >&2
  "$azsim" settings "latencyMs=$latency" "jitterMs=$jitter" >/dev/null
  "$azsim" dump >"$dir/seeded.json"
  if [ -n "$seed_sample" ]; then sample=$seed_sample; elif [ "$fleet" = large ]; then sample=100; else sample=0; fi
  local inv
  inv=$(py inventory "$dir/seeded.json" "$dir" --sample "$sample")
  py record inventory "$fleet" @"$dir/inventory.json" >>"$results"
  say "$fleet fleet: $inv"
  local targets
  targets=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(d[k] for k in ("A", "scopes", "V", "M", "D")))' "$dir/inventory.json")
  local ab=("$azbook" --az "$az" --jobs "$jobs" --state-dir "$dir/state" -v)

  # test: exit 1 (noncompliant found) is the expected outcome on these fleets
  measure "$fleet" test "0 1" "${ab[@]}" test --all-subscriptions --output json
  py check-test "$dir/test.out" "$dir/inventory.json" >/dev/null || fail "$fleet: azbook test did not cover the fleet"
  local n_pairs=$pairs
  [ -z "$n_pairs" ] && { [ "$fleet" = large ] && n_pairs=1 || n_pairs=3; }
  say "$fleet fleet: the scope lists' cost ($n_pairs pair(s): with every playbook, then without the scope playbook)"
  scope_cost "$fleet" "$n_pairs" "${ab[@]}"
  say "$fleet fleet: the seed's way"
  seed_way "$fleet"
  measure "$fleet" plan "0" "${ab[@]}" plan --all-subscriptions
  "$azsim" dump >"$dir/before-apply.json"
  measure "$fleet" apply "0" "${ab[@]}" apply --all-subscriptions --yes --max-changes "$targets"
  measure "$fleet" backout "0" "${ab[@]}" backout --yes
  "$azsim" dump >"$dir/after-backout.json"
  if ! cmp -s <(py controlled "$dir/before-apply.json") <(py controlled "$dir/after-backout.json"); then
    fail "$fleet: after apply and backout the controlled fields differ from the seeded world (see $dir)"
  fi
  grep -qE '[1-9][0-9]* done' "$dir/apply.err" || fail "$fleet: apply changed nothing"
  rm -f "$dir/seeded.json" "$dir/before-apply.json" "$dir/after-backout.json"
  unset AZSIM_WORLD
}

say "machine: $cores cores, $cpu_model, $mem_gb GB; load average $load_start; fleets: ${fleets[*]}; --jobs $jobs, latency ${latency}+0..${jitter} ms"
for f in "${fleets[@]}"; do run_fleet "$f"; done

# ---- the real az, once, at the small size
real_json='{"status":"not run","reason":"--real-az no"}'
real_failed=0
if [ "$real_az" = yes ]; then
  cache=${AZBOOK_CONFORMANCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/azbook}
  venv=$cache/azure-cli-${AZBOOK_CONFORMANCE_AZ_VERSION:-2.91.0}
  if [[ " ${fleets[*]} " != *" small "* ]]; then
    real_json='{"status":"not run","reason":"the small fleet was not run (--only)"}'
  elif [ ! -f "$root/scripts/conformance/run.py" ]; then
    real_json='{"status":"not run","reason":"the conformance tooling (scripts/conformance/run.py) is not in this tree"}'
  elif [ ! -f "$venv/.azbook-complete" ] || ! "$venv/bin/python" -c 'import azure.cli.core' 2>/dev/null; then
    real_json=$(python3 -c 'import json,sys; print(json.dumps({"status":"not run","reason":f"no complete azure-cli install in {sys.argv[1]} (scripts/conformance.sh installs it; this script does not)"}))' "$venv")
  else
    say "small fleet through the real az and azsim serve"
    # --jobs as asked, azbook's default (2 x cores, 4 to 16), and around it: the measurement
    # behind the default.
    default_jobs=$((cores * 2)); [ $default_jobs -lt 4 ] && default_jobs=4; [ $default_jobs -gt 16 ] && default_jobs=16
    rjobs=$(printf '%s\n' "$jobs" "$default_jobs" 8 "$cores" | awk '!seen[$0]++' | paste -sd, -)
    if raw=$("$venv/bin/python" "$root/scripts/bench/real_az.py" --az "$venv/bin/az" --az-python "$venv/bin/python" \
      --azsim "$azsim" --azbook "$azbook" --work "$work/real-az" --jobs "$rjobs" \
      --latency "$latency" --jitter "$jitter" 2>"$work/real-az.err"); then
      real_json=$(py record real_az - status=run @/dev/stdin <<<"$raw" | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop("kind"); print(json.dumps(d))')
    else
      # Reported in the table, and the script still exits non-zero, after writing the report.
      tail -n 20 "$work/real-az.err" >&2
      real_failed=1
      real_json=$(py record real_az - status=failed reason="real_az.py failed: see $work/real-az.err" | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop("kind"); print(json.dumps(d))')
    fi
  fi
fi

# ---- the report
load_end=$(load1)
[ "$profile" = debug ] && notes+=("debug build: figures from a debug build say nothing about speed")
notes_json=$(printf '%s\n' "${notes[@]+"${notes[@]}"}" | python3 -c 'import json,sys; print(json.dumps([l for l in sys.stdin.read().splitlines() if l]))')
py record meta - date="$(date -u '+%Y-%m-%d %H:%M UTC')" cores:="$cores" cpu_model="$cpu_model" \
  mem_gb:="$mem_gb" os="$os_name" kernel="$(uname -r)" rustc="$(rustc --version)" git="$git_desc" \
  azbook_version="$azbook_version" profile="$profile" quick:="$quick" jobs:="$jobs" latency_ms:="$latency" \
  jitter_ms:="$jitter" noncompliant_percent:=30 load_start="$load_start" load_end="$load_end" \
  command="$command_line" version_ms:="$version_json" real_az:="$real_json" notes:="$notes_json" >>"$results"
echo
py report "$results" --md "$out"
echo
say "report written to $out (raw measurements in $results)"
[ "$real_failed" = 0 ] || fail "the real-az run failed (see $work/real-az.err)"
