#!/usr/bin/env bash
# The recipe's ablation: each arm changes one self-training component of --recipe
# adda_selftrain (docs/recipe.md); rows go to results/recipe/ablation_rows.csv, runs to
# runs/ablation/PAIR/ARM. Stages 1-2 do not read these options, so each arm copies them from
# runs/recipe/PAIR/seedN when that run exists (experiments/recipe.sh) and trains stage 3 only.
#   PAIRS=mnist_usps SEEDS="0 1 2" ARMS="no_pseudo plus_im" bash experiments/ablation.sh
# Extra flags for run.py (--raw-dir, --data-dir) come from RUN_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A FLAGS=(
  [no_pseudo]="--pseudo-weight 0"
  [no_consistency]="--consistency-weight 0"
  [no_target_terms]="--pseudo-weight 0 --consistency-weight 0"
  [no_augment]="--augment-shift 0 --augment-noise 0"
  [no_source]="--self-train-source-weight 0"
  [no_teacher]="--teacher-decay 0"
  [plus_im]="--self-train-im-weight 1"
  [plus_vat]="--vat-weight 1"
  [class_balanced]="--class-balanced"
)
for pair in ${PAIRS:-mnist_usps}; do
  for arm in ${ARMS:-no_pseudo no_consistency no_target_terms no_augment plus_im plus_vat \
                   class_balanced no_source no_teacher}; do
    if [[ -z "${FLAGS[$arm]:-}" ]]; then
      echo "unknown arm $arm; choose from ${!FLAGS[*]}" >&2
      exit 2
    fi
    for seed in ${SEEDS:-0 1 2}; do
      workdir="runs/ablation/$pair/$arm/seed$seed"
      for stage in pretrain adapt; do
        if [[ -d "runs/recipe/$pair/seed$seed/$stage" && ! -d "$workdir/$stage" ]]; then
          mkdir -p "$workdir"
          cp -r "runs/recipe/$pair/seed$seed/$stage" "$workdir/.$stage.copying"
          mv "$workdir/.$stage.copying" "$workdir/$stage"
        fi
      done
      # shellcheck disable=SC2086
      python experiments/run.py --pair "$pair" --recipe adda_selftrain ${FLAGS[$arm]} \
        --seed "$seed" --workdir "$workdir" --results results/recipe/ablation_rows.csv \
        --no-pictures ${RUN_FLAGS:-}
    done
  done
done
