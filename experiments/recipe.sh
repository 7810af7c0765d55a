#!/usr/bin/env bash
# The adda_selftrain recipe (docs/recipe.md) on the digit pairs, seeds 0-2, full sets, last
# step and SND-selected model; rows go to results/recipe/rows.csv, runs to runs/recipe/PAIR.
#   PAIRS="mnist_usps usps_mnist" SEEDS=0-2 bash experiments/recipe.sh
# Extra flags for run.py (--raw-dir, --data-dir) come from RUN_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
for pair in ${PAIRS:-mnist_usps usps_mnist}; do
  python experiments/run.py --pair "$pair" --recipe adda_selftrain --seeds "${SEEDS:-0-2}" \
    --workdir "runs/recipe/$pair" --results results/recipe/rows.csv --no-pictures \
    ${RUN_FLAGS:-}
done
