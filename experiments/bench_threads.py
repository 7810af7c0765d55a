"""Times the run's pieces that use thread pools other than XLA's, per thread count.

python experiments/bench_threads.py [--threads 1 2] [--busy 2] [--features 500]
                                    [--tsne-points 2000]

Two libraries start one thread per core by default, and those threads wait for each other at
every barrier, so they suffer when anything else wants the cores (XLA's own threads, a
second job, the other pytest worker):
- SciPy's OpenBLAS, behind jaxlib's CPU linear algebra. At every progress line a run reads the
  validators (adda_jax/validators.py) on 1,000 target predictions and, with --source-val-size,
  DEV's density-ratio weights: a logistic regression fitted by Newton's method on 1,000
  source and 1,000 target feature vectors, each step an LU solve of a (features+1)-square
  system. adda_jax sets OPENBLAS_NUM_THREADS=1 (adda_jax/__init__.py).
- OpenMP, behind scikit-learn's t-SNE in the report (1,000 points per domain). The tests and
  `experiments/sweep.py` share the cores out between the processes running at once.
This script times those pieces in one fresh process per `--threads` value (OPENBLAS_NUM_THREADS
and OMP_NUM_THREADS both set to it), with `--busy N` processes spinning beside them the whole
time. The last line is one JSON object: median seconds per piece, per thread count.
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
sys.path.insert(0, ROOT)

from experiments.sweep import positive  # noqa: E402


def time_pieces(features: int, tsne_points: int, repeats: int) -> dict[str, float]:
  """Median seconds of the validators' readings and of one t-SNE, at a run's sizes."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from sklearn.manifold import TSNE

  from adda_jax import validators
  from adda_jax.report import tsne_perplexity
  rng = np.random.default_rng(0)
  source, target, held_out = (jnp.asarray(rng.normal(size=(n, features)) + shift, jnp.float32)
                              for n, shift in ((1000, 0.0), (1000, 0.3), (1000, 0.0)))
  logits = jnp.asarray(rng.normal(size=(validators.SUBSET, 10)), jnp.float32)
  points = rng.normal(size=(tsne_points, features))
  jitted = {"scores": lambda: validators.scores(logits),
            "domain_weights": lambda: validators.domain_weights(source, target, held_out)}
  for piece in jitted.values():
    jax.block_until_ready(piece())  # Compile first.
  tsne = lambda: TSNE(2, perplexity=tsne_perplexity(tsne_points), init="pca",
                      random_state=0).fit_transform(points)
  medians = {}
  # The t-SNE takes seconds, not milliseconds: once is enough.
  for name, piece, runs in [*((n, p, repeats) for n, p in jitted.items()), ("tsne", tsne, 1)]:
    times = []
    for _ in range(runs):
      start = time.perf_counter()
      jax.block_until_ready(piece())
      times.append(time.perf_counter() - start)
    medians[name] = statistics.median(times)
  return medians


def spin() -> None:
  while True:
    pass


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--threads", nargs="+", type=positive, default=[1, 2],
                      help="OpenBLAS and OpenMP thread counts to time, each in its own process")
  parser.add_argument("--busy", type=int, default=0,
                      help="processes that spin on the CPU while the pieces are timed")
  parser.add_argument("--features", type=positive, default=500,
                      help="feature width (LeNet's is 500)")
  parser.add_argument("--tsne-points", type=positive, default=2000,
                      help="points in the t-SNE (a report's: 1,000 per domain)")
  parser.add_argument("--repeats", type=positive, default=5)
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.busy < 0:
    parser.error(f"argument --busy: {args.busy} is below 0")
  if args.child:
    print(json.dumps(time_pieces(args.features, args.tsne_points, args.repeats)))
    return
  spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.busy)]
  for spinner in spinners:
    spinner.start()
  seconds = {}
  try:
    for threads in args.threads:
      child = subprocess.run(
          [sys.executable, __file__, "--child", "--features", str(args.features),
           "--tsne-points", str(args.tsne_points), "--repeats", str(args.repeats)],
          env={**os.environ, "OPENBLAS_NUM_THREADS": str(threads),
               "OMP_NUM_THREADS": str(threads)},
          capture_output=True, text=True)
      if child.returncode != 0:
        sys.exit(f"the timing process failed: {child.stderr.strip().splitlines()[-1]}")
      seconds[threads] = json.loads(child.stdout.splitlines()[-1])
      print(f"{threads} thread(s): " + ", ".join(
          f"{name} {value * 1e3:.1f} ms" for name, value in seconds[threads].items()))
  finally:
    for spinner in spinners:
      spinner.terminate()
  print(json.dumps({"busy": args.busy, "features": args.features,
                    "tsne_points": args.tsne_points, "seconds": seconds}))


if __name__ == "__main__":
  main()
