#!/usr/bin/env bash
# A named recipe (docs/recipe.md) on the digit pairs, seeds 0-2, full sets, last step and
# SND-selected model. adda_selftrain: rows to results/recipe/rows.csv, runs to
# runs/recipe/PAIR; adda_selftrain_zoom: results/recipe/zoom_rows.csv, runs/recipe_zoom/PAIR.
#   RECIPE=adda_selftrain PAIRS="mnist_usps usps_mnist" SEEDS=0-2 bash experiments/recipe.sh
# Extra flags for run.py (--raw-dir, --data-dir) come from RUN_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${RECIPE:-adda_selftrain}
variant=${recipe#adda_selftrain}  # "" or "_zoom"
rows="results/recipe/${variant#_}${variant:+_}rows.csv"  # rows.csv or zoom_rows.csv
for pair in ${PAIRS:-mnist_usps usps_mnist}; do
  python experiments/run.py --pair "$pair" --recipe "$recipe" --seeds "${SEEDS:-0-2}" \
    --workdir "runs/recipe$variant/$pair" --results "$rows" \
    --no-pictures ${RUN_FLAGS:-}
done
