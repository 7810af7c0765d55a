"""Times one progress line's label-free validator readings, per BLAS thread count.

python experiments/bench_validators.py [--blas-threads 1 2] [--busy 2] [--features 500]

At every progress line a run reads the validators (adda_jax/validators.py) on 1,000 target
predictions and, with --source-val-size, DEV's density-ratio weights: a logistic regression
fitted by Newton's method on 1,000 source and 1,000 target feature vectors. The Newton
steps solve a (features+1)-square system with jaxlib's LAPACK, i.e. SciPy's OpenBLAS,
whose thread count adda_jax sets to one (adda_jax/__init__.py). This script times those
readings in one fresh process per `--blas-threads` value, with `--busy N` processes spinning
beside them the whole time (a second job on the machine, or the other pytest worker). The
last line is one JSON object: median seconds per reading, per thread count.
"""
import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def time_readings(features: int, repeats: int) -> dict[str, float]:
  """Median seconds of `validators.scores` and `validators.domain_weights` at a run's sizes."""
  import jax
  import jax.numpy as jnp
  import numpy as np

  from adda_jax import validators
  rng = np.random.default_rng(0)
  source, target, held_out = (jnp.asarray(rng.normal(size=(n, features)) + shift, jnp.float32)
                              for n, shift in ((1000, 0.0), (1000, 0.3), (1000, 0.0)))
  logits = jnp.asarray(rng.normal(size=(validators.SUBSET, 10)), jnp.float32)
  readings = {"scores": lambda: validators.scores(logits),
              "domain_weights": lambda: validators.domain_weights(source, target, held_out)}
  medians = {}
  for name, reading in readings.items():
    jax.block_until_ready(reading())  # Compile.
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(reading())
      times.append(time.perf_counter() - start)
    medians[name] = statistics.median(times)
  return medians


def spin() -> None:
  while True:
    pass


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--blas-threads", nargs="+", default=["1", "2"],
                      help="OPENBLAS_NUM_THREADS values to time, each in its own process")
  parser.add_argument("--busy", type=int, default=0,
                      help="processes that spin on the CPU while the readings are timed")
  parser.add_argument("--features", type=int, default=500,
                      help="feature width (LeNet's is 500)")
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    sys.path.insert(0, ROOT)
    print(json.dumps(time_readings(args.features, args.repeats)))
    return
  spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
  for spinner in spinners:
    spinner.start()
  seconds = {}
  try:
    for threads in args.blas_threads:
      child = subprocess.run(
          [sys.executable, __file__, "--child", "--features", str(args.features),
           "--repeats", str(args.repeats)],
          env={**os.environ, "OPENBLAS_NUM_THREADS": threads}, capture_output=True, text=True)
      if child.returncode != 0:
        sys.exit(f"the timing process failed: {child.stderr.strip().splitlines()[-1]}")
      seconds[threads] = json.loads(child.stdout.splitlines()[-1])
      print(f"OPENBLAS_NUM_THREADS={threads}: " + ", ".join(
          f"{name} {value * 1e3:.1f} ms" for name, value in seconds[threads].items()))
  finally:
    for spinner in spinners:
      spinner.terminate()
  print(json.dumps({"busy": args.busy, "features": args.features, "seconds": seconds}))


if __name__ == "__main__":
  main()
