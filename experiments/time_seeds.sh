#!/usr/bin/env bash
# Times four seeds three ways, whole commands, one after another: four run.py invocations
# (one per seed), `--seeds 0-3` one after another in one process, `--seeds 0-3` vmapped.
#   bash experiments/time_seeds.sh    # env: STEPS per stage (500), RAW (../shared/data), DATA_DIR
# Prints "<arm> <seconds>" lines; rows go to runs/seeds_timing/<arm>.csv.
set -u
cd "$(dirname "$0")/.."
steps=${STEPS:-500}
out=runs/seeds_timing
mkdir -p "$out"
flags=(--pair mnist_usps --raw-dir "${RAW:-../shared/data}" ${DATA_DIR:+--data-dir "$DATA_DIR"}
       --pretrain-steps "$steps" --adapt-steps "$steps" --no-pictures --fresh)
since() { python -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$1"; }

start=$(date +%s.%N)
for seed in 0 1 2 3; do
  python experiments/run.py "${flags[@]}" --seed "$seed" --workdir "$out/separate/seed$seed" \
    --results "$out/separate.csv" >"$out/separate_seed$seed.log" 2>&1
done
echo "separate $(since "$start")"
for strategy in sequential vmap; do
  start=$(date +%s.%N)
  python experiments/run.py "${flags[@]}" --seeds 0-3 --seeds-strategy "$strategy" \
    --workdir "$out/$strategy" --results "$out/$strategy.csv" >"$out/$strategy.log" 2>&1
  echo "$strategy $(since "$start")"
done
