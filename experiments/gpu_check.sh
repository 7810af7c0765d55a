#!/usr/bin/env bash
# One prepared GPU check (device tool): benchmark, a timed paper-length MNIST->USPS run, and a
# sweep of the protocol choices on MNIST<->USPS, all from raw files.
#
# The GPU host has JAX with CUDA but no TFDS/TensorFlow and no network, and ../shared does not
# travel, so first, on the development machine (both folders are git-ignored):
#   mkdir -p .gpu_data && cp -r ../shared/data/mnist ../shared/data/usps .gpu_data/
#   cp ../shared/bench/torch_adda_reference.py .gpu_data/      # optional: PyTorch CUDA figures
#   pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       flax==0.12.8 optax==0.2.8 orbax-checkpoint==0.12.8 chex==0.1.92   # our pins, optional
# then run with the device tool: command "bash experiments/gpu_check.sh", carry
# [".gpu_data", ".whl"]. Figures go to $OUT (default ./gpu_out): gpu.txt, bench.txt,
# torch_cuda.txt, run.txt, sweep.csv, sweep_logs.tar.gz.
# For a dry run on CPU: STEPS (default 10000) shortens every run, BENCH_STEPS (500) the
# benchmark blocks; SWEEP_SECONDS (300) caps the sweep.
set -uo pipefail
out=${OUT:-gpu_out}
steps=${STEPS:-10000}
sweep_seconds=${SWEEP_SECONDS:-300}
bench_steps=${BENCH_STEPS:-500}
mkdir -p "$out/logs"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/adda_site .whl/*.whl && export PYTHONPATH=/tmp/adda_site
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  python3 -c "import jax, flax, optax, orbax.checkpoint as o, chex; print('jax', jax.__version__,
  'flax', flax.__version__, 'optax', optax.__version__, 'orbax', o.__version__, 'chex',
  chex.__version__, jax.devices())"
} 2>&1 | tee "$out/gpu.txt"

python3 experiments/benchmark.py --no-torch --baseline --block-steps "$bench_steps" 2>&1 | tee "$out/bench.txt"
python3 experiments/benchmark.py --no-torch --steps-per-call 1 --block-steps "$((bench_steps / 5))" 2>&1 \
  | tee -a "$out/bench.txt"
if [ -f .gpu_data/torch_adda_reference.py ]; then
  python3 -c "import runpy, sys, torch
torch.set_default_device('cuda' if torch.cuda.is_available() else 'cpu')
sys.argv = ['torch_adda_reference.py', '--steps', '$bench_steps']
runpy.run_path('.gpu_data/torch_adda_reference.py', run_name='__main__')
print('device', torch.get_default_device())" 2>&1 | tee "$out/torch_cuda.txt"
fi

common=(--data-source raw --raw-dir .gpu_data --pretrain-steps "$steps" --adapt-steps "$steps")
start=$(date +%s.%N)  # the whole command: data load, compiles, both stages, evaluation
python3 experiments/run.py --pair mnist_usps --seed 0 "${common[@]}" --workdir /tmp/gpu/timed \
  --fresh --results "$out/sweep.csv" 2>&1 | tee "$out/run.txt"
python3 -c "import sys, time; print('wall_seconds', round(time.time() - float(sys.argv[1]), 1))" \
  "$start" | tee -a "$out/run.txt"

# Protocol sweep, four runs at a time on the one GPU, USPS->MNIST first.
sweep() {
  for pair in usps_mnist mnist_usps; do
    for seed in 0 1 2; do
      for variant in paper logits full full_logits; do
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
  esac
  python3 experiments/run.py --pair "$pair" --seed "$seed" "${common[@]}" "${flags[@]}" \
    --workdir "/tmp/gpu/$pair/$variant/seed$seed" --fresh \
    --results "$out/logs/$pair-$variant-$seed.csv" >"$out/logs/$pair-$variant-$seed.log" 2>&1
}
export -f one
export out steps
export common_flags="${common[*]}"
sweep | timeout "$sweep_seconds" xargs -P 4 -L 1 bash -c \
  'common=($common_flags); one "$@"' _
for f in "$out"/logs/*.csv; do tail -n +2 "$f"; done >>"$out/sweep.csv"
tar -czf "$out/sweep_logs.tar.gz" -C "$out" logs && rm -rf "$out/logs"
echo "sweep rows: $(($(wc -l <"$out/sweep.csv") - 1))"
