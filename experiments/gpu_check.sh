#!/usr/bin/env bash
# One prepared GPU check (device tool): benchmark + a paper-length MNIST->USPS run from raw files.
# The GPU host has JAX with CUDA but no TFDS/TensorFlow and no network, and ../shared does not
# travel, so first, on the development machine (the folder is git-ignored):
#   mkdir -p .gpu_data && cp -r ../shared/data/mnist ../shared/data/usps .gpu_data/
# then run with the device tool: command "bash experiments/gpu_check.sh", carry [".gpu_data"].
# Figures go to $OUT (default ./gpu_out): bench.txt, run.txt, gpu_results.csv.
set -uo pipefail
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import jax, flax, optax, orbax.checkpoint, chex; print(jax.__version__, jax.devices())" \
  | tee -a "$out/gpu.txt"
python3 experiments/benchmark.py --no-torch --baseline 2>&1 | tee "$out/bench.txt"
start=$(date +%s.%N)  # whole command: data load, compiles, both stages, evaluation
python3 experiments/run.py --pair mnist_usps --seed 0 --data-source raw --raw-dir .gpu_data \
  --workdir /tmp/gpu_run --fresh --results "$out/gpu_results.csv" 2>&1 | tee "$out/run.txt"
python3 -c "import sys, time; print('wall_seconds', round(time.time() - float(sys.argv[1]), 1))" \
  "$start" | tee -a "$out/run.txt"
