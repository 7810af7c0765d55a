#!/usr/bin/env bash
# Prepared GPU checks (device tool), all from raw files:
#   bench        benchmark.py (500 steps per dispatch, and 1) and the PyTorch CUDA reference;
#                bench_seeds.py: 1 and 10 vmapped seeds, library vs batched-matmul convolutions
#   timed        one paper-length MNIST->USPS run, whole-command wall time
#   determinism  the same run twice more (the library asks XLA for deterministic GPU kernels)
#   sweep        MNIST<->USPS x seeds 0-2 x variants, PARALLEL (4) runs at a time on the one GPU;
#                SWEEP=protocols: paper, logits, full, full_logits;
#                SWEEP=authors: simultaneous, authors (the released code's whole protocol);
#                SWEEP=pretraining: paper, caffe_lenet, caffe_solver, caffe_lenet_caffe_solver;
#                VARIANTS and SEEDS (default "0 1 2") override the lists;
#                SWEEP=methods: experiments/sweep.py (every method, SWEEP_PAIRS, SEEDS "0-2",
#                VARIANTS, EXTRA flags such as --rgb32), rows appended to
#                /tmp/gpu/methods.csv, which lasts while the machine stays warm; a copy of it
#                and its table come back in methods.csv/.md/.png, each run's log, summary,
#                metrics and sample grids (CoGAN) in methods_logs.tar.gz
#   seeds        run.py --seeds 0-9 (SEED_LIST), paper MNIST->USPS, --no-pictures, whole
#                commands timed, one per SEEDS_STRATEGIES (default: vmap, vmap_matmul,
#                sequential): as one vmapped program, the same with its convolutions as
#                batched matmuls (each capped at VMAP_SECONDS, 150: H200's vmap took 99 s),
#                then one after another in one process (capped at SEQUENTIAL_SECONDS, 240),
#                so the three fit one device call (600 s); rows in seeds_STRATEGY.csv
#   recipe       run.py --recipe RECIPE (adda_selftrain, or any name in configs/recipes.py)
#                --seeds SEEDS (0-2) on RECIPE_PAIRS (default
#                mnist_usps usps_mnist mnist_mnistm; MNIST-M as 32x32 RGB with --encoder dtn),
#                each pair capped at RECIPE_SECONDS (240), then the ablation without ADDA
#                (--method source_only: self-training straight from the source model); rows
#                in recipe.csv, logs in recipe_ARM_PAIR.txt, summaries and metrics in
#                recipe_logs.tar.gz
#   kernels      the two GPU kernel policies (adda_jax/xla_options.py: deterministic, no
#                autotuning; autotuned): bench_seeds.py under each, then CoGAN on MNIST->USPS
#                for KERNEL_STEPS (2000) steps under each and once more autotuned (is it
#                repeatable from one invocation to the next?); logs kernels_*.txt, rows
#                kernels.csv
# PARTS picks them (default "bench timed sweep", SWEEP=protocols). EXTRA: flags added to
# every run.py command, e.g. EXTRA="--gpu-kernels autotuned".
#
# The GPU host has JAX with CUDA but no TFDS/TensorFlow and no network, and ../shared does not
# travel, so first, on the development machine (the folder is git-ignored):
#   mkdir -p .gpu_data && cp -r ../shared/data/mnist ../shared/data/usps .gpu_data/
#   cp ../shared/bench/torch_adda_reference.py .gpu_data/      # optional: PyTorch CUDA figures
# then run with the device tool: command "bash experiments/gpu_check.sh", carry [".gpu_data"].
# MNIST-M (mnist_m.tar.gz, 134 MB) is over what one call carries (64 MiB): split it into
# .gpu_mnistm_1/ .gpu_mnistm_2/ ... (git-ignored) with its sha256 beside,
#   for i in 1 2 3; do mkdir -p .gpu_mnistm_$i; done
#   split -n 3 -d ../shared/data/mnist_m/mnist_m.tar.gz part- && for i in 0 1 2; do
#     mv part-0$i .gpu_mnistm_$((i + 1))/; done
#   (cd ../shared/data/mnist_m && sha256sum mnist_m.tar.gz) >.gpu_mnistm_1/SHA256SUMS
# carry one folder per call on a warm machine (what earlier calls left stays there); the
# script joins the parts into .gpu_data/mnist_m/ once all have arrived and the sum matches.
# That copy's .git may not be the commit sent: set ADDA_COMMIT=<hash> to record the right one.
# Use the host's own flax/optax/orbax: flax 0.12.8 (our CPU pin) does not import on jax 0.11.
# Figures go to $OUT (default ./gpu_out): gpu.txt, bench.txt, torch_cuda.txt, run.txt,
# determinism.txt, sweep.csv, sweep_logs.tar.gz.
# For a dry run on CPU: STEPS (default 10000) shortens every run, BENCH_STEPS (500) the
# benchmark blocks; SWEEP_SECONDS (300) caps the sweep.
set -uo pipefail
out=${OUT:-gpu_out}
steps=${STEPS:-10000}
sweep_seconds=${SWEEP_SECONDS:-300}
bench_steps=${BENCH_STEPS:-500}
parts=${PARTS:-bench timed sweep}
sweep_kind=${SWEEP:-protocols}
mkdir -p "$out/logs"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
has() { [[ " $parts " == *" $1 "* ]]; }
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  python3 -c "import jax, flax, optax, orbax.checkpoint as o, chex; print('jax', jax.__version__,
  'flax', flax.__version__, 'optax', optax.__version__, 'orbax', o.__version__, 'chex',
  chex.__version__, jax.devices())"
} 2>&1 | tee "$out/gpu.txt"

if has bench; then
  python3 experiments/benchmark.py --no-torch --baseline --block-steps "$bench_steps" 2>&1 \
    | tee "$out/bench.txt"
  python3 experiments/benchmark.py --no-torch --steps-per-call 1 \
    --block-steps "$((bench_steps / 5))" 2>&1 | tee -a "$out/bench.txt"
  python3 experiments/bench_seeds.py --seeds 1 10 --block-steps "$bench_steps" 2>&1 \
    | tee "$out/bench_seeds.txt"
  if [ -f .gpu_data/torch_adda_reference.py ]; then
    python3 -c "import runpy, sys, torch
torch.set_default_device('cuda' if torch.cuda.is_available() else 'cpu')
sys.argv = ['torch_adda_reference.py', '--steps', '$bench_steps']
runpy.run_path('.gpu_data/torch_adda_reference.py', run_name='__main__')
print('device', torch.get_default_device())" 2>&1 | tee "$out/torch_cuda.txt"
  fi
fi

common=(--data-source raw --raw-dir .gpu_data --pretrain-steps "$steps" --adapt-steps "$steps"
        ${EXTRA:-})
timed_run() {  # $1: log file; the whole command is timed: data load, compiles, stages, eval
  local start=$(date +%s.%N)
  python3 experiments/run.py --pair mnist_usps --seed 0 "${common[@]}" --workdir /tmp/gpu/timed \
    --fresh --results "$out/sweep.csv" 2>&1 | tee -a "$1"
  python3 -c "import sys, time; print('wall_seconds', round(time.time() - float(sys.argv[1]), 1))" \
    "$start" | tee -a "$1"
}
has timed && timed_run "$out/run.txt"
if has determinism; then
  timed_run "$out/determinism.txt"
  timed_run "$out/determinism.txt"
fi
if has seeds; then
  for strategy in ${SEEDS_STRATEGIES:-vmap vmap_matmul sequential}; do
    cap=$([ "$strategy" = sequential ] && echo "${SEQUENTIAL_SECONDS:-240}" \
          || echo "${VMAP_SECONDS:-150}")
    start=$(date +%s.%N)
    timeout "$cap" python3 experiments/run.py --pair mnist_usps --seeds "${SEED_LIST:-0-9}" \
      --seeds-strategy "$strategy" "${common[@]}" --no-pictures --fresh \
      --workdir "/tmp/gpu/seeds_$strategy" --results "$out/seeds_$strategy.csv" 2>&1 \
      | tee "$out/seeds_$strategy.txt"
    python3 -c "import sys, time; print('wall_seconds', round(time.time() - float(sys.argv[1]), 1))" \
      "$start" | tee -a "$out/seeds_$strategy.txt"
  done
fi
if has kernels; then
  python3 experiments/bench_seeds.py --seeds 1 10 --block-steps "$bench_steps" \
    --gpu-kernels deterministic autotuned 2>&1 | tee "$out/kernels_seeds.txt"
  for run in deterministic autotuned autotuned_again; do
    timeout "${KERNEL_SECONDS:-150}" python3 experiments/run.py --pair mnist_usps --seed 0 \
      --method cogan --batch-size 64 --adapt-steps "${KERNEL_STEPS:-2000}" \
      --gpu-kernels "${run%_again}" --data-source raw --raw-dir .gpu_data --no-pictures \
      --fresh --workdir "/tmp/gpu/kernels_$run" --results "$out/kernels.csv" 2>&1 \
      | tee "$out/kernels_cogan_$run.txt"
  done
fi
join_mnistm() {  # The parts carried by earlier calls, joined once the checksum matches.
  local whole=.gpu_data/mnist_m/mnist_m.tar.gz
  [ -f "$whole" ] || ! ls .gpu_mnistm_*/part-* >/dev/null 2>&1 && return
  mkdir -p .gpu_data/mnist_m
  cat $(ls .gpu_mnistm_*/part-* | sort -t- -k2) >"$whole.tmp"
  if (cd .gpu_data/mnist_m && sed 's/mnist_m.tar.gz$/mnist_m.tar.gz.tmp/' \
      "$OLDPWD"/.gpu_mnistm_1/SHA256SUMS | sha256sum -c --quiet); then
    mv "$whole.tmp" "$whole" && echo "MNIST-M joined"
  else
    rm -f "$whole.tmp"; echo "MNIST-M: $(ls .gpu_mnistm_*/part-* | wc -l) parts here, not whole yet"
  fi
}
if has recipe; then  # The target-aware recipe (docs/recipe.md), full sets, seeds vmapped.
  join_mnistm 2>&1 | tee -a "$out/gpu.txt"
  for pair in ${RECIPE_PAIRS:-mnist_usps usps_mnist mnist_mnistm}; do
    extra=(); [ "$pair" = mnist_mnistm ] && extra=(--rgb32 --encoder dtn)
    for arm in adda source_only; do  # source_only: the ablation without ADDA's stage 2
      timeout "${RECIPE_SECONDS:-240}" python3 experiments/run.py --pair "$pair" \
        --recipe "${RECIPE:-adda_selftrain}" --method "$arm" --seeds "${SEEDS:-0-2}" \
        --data-source raw \
        --pretrain-steps "$steps" --adapt-steps "$steps" --self-train-steps "$((steps / 2))" \
        --raw-dir .gpu_data --workdir "/tmp/gpu/recipe/$arm/$pair" --results "$out/recipe.csv" \
        --no-pictures "${extra[@]}" ${EXTRA:-} 2>&1 | tee "$out/recipe_${arm}_$pair.txt"
    done
  done
  find /tmp/gpu/recipe \( -name summary.json -o -name metrics.jsonl \) -print0 \
    | tar -czf "$out/recipe_logs.tar.gz" --null -T -
fi
has sweep || exit 0
if [ "$sweep_kind" = methods ]; then  # The method table; stage 1 once per pair and seed.
  join_mnistm 2>&1 | tee -a "$out/gpu.txt"
  timeout "$sweep_seconds" python3 experiments/sweep.py --pairs ${SWEEP_PAIRS:-mnist_usps usps_mnist} \
    --seeds "${SEEDS:-0-2}" --jobs "${PARALLEL:-4}" --root /tmp/gpu/methods \
    --results /tmp/gpu/methods.csv --table "$out/methods" --raw-dir .gpu_data \
    ${VARIANTS:+--variants $VARIANTS} \
    --extra --data-source raw --pretrain-steps "$steps" --adapt-steps "$steps" ${EXTRA:-} 2>&1 \
    | tee "$out/methods.txt"
  cp /tmp/gpu/methods.csv "$out/" 2>/dev/null
  find /tmp/gpu/methods \( -name '*.log' -o -name summary.json -o -name metrics.jsonl \
    -o -path '*/samples/*.png' \) -print0 | tar -czf "$out/methods_logs.tar.gz" --null -T -
  exit 0
fi

# PARALLEL runs at a time on the one GPU, USPS->MNIST first.
sweep() {
  local variants="paper logits full full_logits"
  [ "$sweep_kind" = authors ] && variants="simultaneous authors"
  [ "$sweep_kind" = pretraining ] && variants="paper caffe_lenet caffe_solver caffe_lenet_caffe_solver"
  variants=${VARIANTS:-$variants}
  for pair in usps_mnist mnist_usps; do
    for seed in ${SEEDS:-0 1 2}; do
      for variant in $variants; do
        echo "$pair $seed $variant"
      done
    done
  done
}
one() {
  local pair=$1 seed=$2 variant=$3 flags=()
  case $variant in
    logits) flags=(--disc-input logits) ;;
    full) flags=(--full-sets) ;;
    full_logits) flags=(--full-sets --disc-input logits) ;;
    simultaneous) flags=(--adapt-update simultaneous) ;;
    caffe_lenet) flags=(--no-conv-relu) ;;
    caffe_solver) flags=(--pretrain-solver caffe_lenet) ;;
    caffe_lenet_caffe_solver) flags=(--no-conv-relu --pretrain-solver caffe_lenet) ;;
    authors) flags=(--full-sets --disc-input logits --adapt-update simultaneous
                    --eval-split train) ;;
  esac
  local name="$pair-$variant-$seed" workdir="/tmp/gpu/$pair/$variant/seed$seed"
  python3 experiments/run.py --pair "$pair" --seed "$seed" "${common[@]}" "${flags[@]}" \
    --workdir "$workdir" --fresh --results "$out/logs/$name.csv" >"$out/logs/$name.log" 2>&1
  if [ "$variant" = authors ]; then  # The same checkpoints on the target test split too.
    python3 experiments/evaluate.py --workdir "$workdir" --eval-split test --data-source raw \
      --raw-dir .gpu_data --results "$out/logs/$name.csv" >>"$out/logs/$name.log" 2>&1
  fi
}
export -f one
export out
export common_flags="${common[*]}"
sweep | timeout "$sweep_seconds" xargs -P "${PARALLEL:-4}" -L 1 bash -c \
  'common=($common_flags); one "$@"' _
csvs=("$out"/logs/*.csv)
if [ -f "${csvs[0]}" ]; then
  [ -f "$out/sweep.csv" ] || head -n 1 "${csvs[0]}" >"$out/sweep.csv"
  for f in "${csvs[@]}"; do tail -n +2 "$f"; done >>"$out/sweep.csv"
fi
tar -czf "$out/sweep_logs.tar.gz" -C "$out" logs && rm -rf "$out/logs"
echo "sweep rows: $(($(wc -l <"$out/sweep.csv") - 1))"
