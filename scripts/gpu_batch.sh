#!/usr/bin/env bash
# One call on a (possibly time-limited) GPU machine: CUDA-only tests, `bench` on the GPU, then the
# unfinished `gpu` grids in priority order under one time budget; new rows packed into one archive.
#
#   scripts/gpu_batch.sh [--dry-run] OUT_DIR SECONDS [EXPERIMENT[:EXECUTOR] ...]
#
# Without experiments the priority order is HRM, parser, CIFAR, then the ladder grids. Each grid gets
# what is left of SECONDS: no new run starts in its last minute (--time-budget), and at the end a
# `timeout` stops the sweep (SIGTERM: it logs what it finished and stops its workers), so the call ends
# within SECONDS even when a run is longer than the time left; a rerun resumes where it stopped, so
# successive calls work through the grids shard by shard. After every grid the rows written so far
# are packed into OUT_DIR/rows.tar.gz (a machine that is taken away mid-call still leaves the rows of
# the grids before), relative to the result root: unpack with
# `tar -xzf rows.tar.gz -C data/results` in the checkout that commits them. Data and the encoder are
# read from POTLIB_DATA and POTLIB_MINILM_DIR as usual; when the tree has no .git, set
# POTLIB_GIT_COMMIT (and POTLIB_GIT_DIRTY) so the rows name the commit they ran from.
# --dry-run prints the plan and runs nothing (tested on CPU).
#
# Example (9 minutes):
#   POTLIB_DATA=.data POTLIB_MINILM_DIR=.data/minilm16 POTLIB_GIT_COMMIT=$(git rev-parse HEAD) \
#     scripts/gpu_batch.sh "$OUT" 540
set -euo pipefail
dry=0
if [[ ${1:-} == --dry-run ]]; then dry=1; shift; fi
usage="usage: gpu_batch.sh [--dry-run] OUT_DIR SECONDS [EXPERIMENT[:EXECUTOR] ...]"
out=${1:?$usage}
budget=${2:?$usage}
[[ $budget =~ ^[0-9]+$ ]] && (( budget > 0 )) || { echo "SECONDS = '$budget' is not allowed: a positive integer" >&2; exit 2; }
shift 2
items=("$@")
if (( ${#items[@]} == 0 )); then
  items=(hrm_memory hrm_depth_width hrm_layers_computed hrm_act hrm_dynamics poh_gradient_modes poh_memory
         credit_cifar:replicas credit_ladder:replicas credit_ablations)
fi
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
start=$(date +%s)
export PYTHONUNBUFFERED=1
step() {  # run (or, with --dry-run, print) one step
  if (( dry )); then echo "would run: $*"; else "$@" || true; fi
}
left() { echo $(( budget - ($(date +%s) - start) )); }
marker=$(mktemp)
root=${POTLIB_RESULTS:-data/results}
pack() {  # rows written during this call, relative to the result root, into one archive
  if (( dry )); then echo "would pack rows newer than this call into $out/rows.tar.gz"; return; fi
  mkdir -p "$out"
  local dest
  dest=$(cd "$out" && pwd)/rows.tar.gz
  mkdir -p "$root"
  (cd "$root" && find . -type f -newer "$marker" ! -name '.*' -print0 | tar --null -czf "$dest.tmp" -T - && mv "$dest.tmp" "$dest")
}
step timeout 120 "$python" -m pytest -q -m gpu tests -p no:nbval -o addopts=""
step timeout 90 "$python" -m potlib bench --profile gpu --workload ladder_L4 --replicas 32
for item in "${items[@]}"; do
  exp=${item%%:*}
  executor=local
  [[ $item == *:* ]] && executor=${item#*:}
  l=$(left)
  if (( l <= 0 )); then echo "time budget spent before $exp"; break; fi
  # no new run in the last minute; SIGTERM at the end (then SIGKILL 20 s later) keeps the call within SECONDS
  step timeout --kill-after=20 "$l" "$python" -m potlib run "$exp" --profile gpu --executor "$executor" \
    --time-budget "$(( l > 120 ? l - 60 : l ))" --quiet
  pack
done
step "$python" -m potlib status --profile gpu
pack
if (( dry )); then exit 0; fi
echo "packed $(tar -tzf "$out/rows.tar.gz" | grep -c '\.json$') rows into $out/rows.tar.gz"
