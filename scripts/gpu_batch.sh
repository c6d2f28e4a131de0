#!/usr/bin/env bash
# Run gpu grids on a (possibly time-limited) GPU machine and pack the new rows into one archive.
#
#   scripts/gpu_batch.sh OUT_DIR SECONDS EXPERIMENT[:EXECUTOR] ...
#
# Each experiment gets what is left of SECONDS as its --time-budget (no new run starts after it; a
# rerun resumes). Rows written during this call are packed into OUT_DIR/rows.tar.gz, relative to the
# result root: unpack with `tar -xzf rows.tar.gz -C data/results` in the checkout that commits them. Data and the encoder are read from
# POTLIB_DATA and POTLIB_MINILM_DIR as usual; when the tree has no .git, set POTLIB_GIT_COMMIT (and
# POTLIB_GIT_DIRTY) so the rows name the commit they ran from.
#
# Example (parser and credit grids, 9 minutes):
#   POTLIB_DATA=.data POTLIB_MINILM_DIR=.data/minilm16 POTLIB_GIT_COMMIT=$(git rev-parse HEAD) \
#     scripts/gpu_batch.sh "$OUT" 540 poh_gradient_modes credit_ladder:replicas
set -euo pipefail
out=${1:?usage: gpu_batch.sh OUT_DIR SECONDS EXPERIMENT[:EXECUTOR] ...}
budget=${2:?usage: gpu_batch.sh OUT_DIR SECONDS EXPERIMENT[:EXECUTOR] ...}
shift 2
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
marker=$(mktemp)
start=$(date +%s)
export PYTHONUNBUFFERED=1
for item in "$@"; do
  exp=${item%%:*}
  executor=inline
  [[ $item == *:* ]] && executor=${item#*:}
  left=$(( budget - ($(date +%s) - start) ))
  if (( left <= 0 )); then echo "time budget spent before $exp"; break; fi
  "$python" -m potlib run "$exp" --profile gpu --executor "$executor" --time-budget "$left" || true
done
"$python" -m potlib status --profile gpu || true
mkdir -p "$out"
out=$(cd "$out" && pwd)
root=${POTLIB_RESULTS:-data/results}
(cd "$root" && find . -type f -newer "$marker" ! -name '.*' -print0 | tar --null -czf "$out/rows.tar.gz" -T -)
echo "packed $(tar -tzf "$out/rows.tar.gz" | grep -c '\.json$') rows into $out/rows.tar.gz"
