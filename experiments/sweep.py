"""Methods x pairs x seeds, N runs at a time, resumable; then the comparison table and plot.

python experiments/sweep.py --pairs mnist_usps usps_mnist --seeds 0-2 --jobs 2 \
    --raw-dir ../shared/data --data-dir data/tfds --results results/methods_cpu.csv

Each cell is one `experiments/run.py` process in ROOT/PAIR/seedS/VARIANT that appends its
rows to --results (under the file's lock, so concurrent cells never interleave or lose rows).
A cell whose workdir already holds a summary is finished and not run again, so rerunning the
same command resumes the sweep (an interrupted cell resumes from its own checkpoints). Stage 1
(source pretraining) is trained once per pair and seed: the `source_only` cell trains it, and
every other cell but those without a source pretraining (the oracle, CoGAN) starts only
after it and copies it (`--pretrained-from`).
At the end, `experiments/method_table.py` turns --results into the table and the plot.
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from adda_jax.errors import UserError  # noqa: E402
from adda_jax.seeds import parse_seeds  # noqa: E402

# Variant -> run.py flags. The name is the one the tables use.
VARIANTS = {
    "source_only": ["--method", "source_only"],
    "target_oracle": ["--method", "target_oracle"],
    "adda": ["--method", "adda"],
    "adda_minimax": ["--method", "adda", "--adversarial-loss", "minimax"],
    "adda_confusion": ["--method", "adda", "--adversarial-loss", "confusion"],
    "adda_tied": ["--method", "adda", "--sharing", "tied"],
    "adda_partial": ["--method", "adda", "--sharing", "partial"],
    "dann": ["--method", "dann"],
    "ddc": ["--method", "ddc"],
    "confusion": ["--method", "confusion"],
    "can": ["--method", "can"],
    "cogan": ["--method", "cogan", "--batch-size", "64"],  # The CoGAN release's batch.
}
PRETRAINING = "source_only"  # The cell whose stage 1 the others copy.
INDEPENDENT = ("target_oracle", "cogan")  # Cells with no source pretraining to wait for.


def seeds(text: str) -> list[int]:
  """"0-2,5" -> [0, 1, 2, 5], as run.py --seeds reads it."""
  try:
    return parse_seeds(text)
  except UserError as e:
    raise argparse.ArgumentTypeError(str(e)) from None


def positive(text: str) -> int:
  if not text.isdigit() or int(text) < 1:
    raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
  return int(text)


def cells(pairs, seed_list, variants, root):
  """(pair, seed, variant, workdir): pretraining cells first, then variant by variant in the
  order given, so the first variants finish on every pair and seed before the later ones."""
  order = sorted(variants, key=lambda v: v != PRETRAINING)
  return [(pair, seed, variant, os.path.join(root, pair, f"seed{seed}", variant))
          for variant in order for seed in seed_list for pair in pairs]


def command(cell, args) -> list[str]:
  pair, seed, variant, workdir = cell
  cmd = [sys.executable, "experiments/run.py", "--pair", pair, "--seed", str(seed),
         *VARIANTS[variant], "--workdir", workdir, "--results", args.results, *args.extra]
  if args.raw_dir:
    cmd += ["--raw-dir", args.raw_dir]
  if args.data_dir:
    cmd += ["--data-dir", args.data_dir]
  if variant not in INDEPENDENT and variant != PRETRAINING:
    cmd += ["--pretrained-from", pretraining_dir(cell)]
  return cmd


def pretraining_dir(cell) -> str:
  return os.path.join(os.path.dirname(cell[3]), PRETRAINING)


def finished(workdir: str) -> bool:
  return os.path.exists(os.path.join(workdir, "summary.json"))


def child_environment(jobs: int, environ=os.environ) -> dict[str, str]:
  """The runs' environment: the cores shared out between the `jobs` running at once for the
  OpenMP threads of their reports' t-SNE, whose default of one per core in every run makes
  them wait on each other at each barrier (docs/speed.md); a value the user set is kept."""
  return {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs)), **environ}


def run(all_cells, args) -> list[str]:
  """Runs every unfinished cell, `args.jobs` at a time; returns the failed cells' names."""
  pending = [c for c in all_cells if not finished(c[3])]
  print(f"[sweep] {len(all_cells) - len(pending)} of {len(all_cells)} cells already finished",
        flush=True)
  running, failed = {}, []
  environment = child_environment(args.jobs)
  while pending or running:
    for cell in list(pending):
      if len(running) >= args.jobs:
        break
      needs = (cell[2] not in INDEPENDENT and cell[2] != PRETRAINING)
      blocked = pretraining_dir(cell) in failed
      if blocked:
        pending.remove(cell)
        failed.append(cell[3])
        continue
      if needs and not finished(pretraining_dir(cell)):
        continue
      pending.remove(cell)
      os.makedirs(os.path.dirname(cell[3]), exist_ok=True)
      log = open(cell[3] + ".log", "a")
      running[cell] = (subprocess.Popen(command(cell, args), cwd=ROOT, stdout=log,
                                        stderr=subprocess.STDOUT, env=environment),
                       log, time.time())
      print(f"[sweep] started {cell[0]} seed {cell[1]} {cell[2]}", flush=True)
    time.sleep(2)
    for cell, (proc, log, start) in list(running.items()):
      if proc.poll() is None:
        continue
      log.close()
      del running[cell]
      state = "finished" if proc.returncode == 0 else f"failed ({cell[3]}.log)"
      if proc.returncode != 0:
        failed.append(cell[3])
      print(f"[sweep] {state}: {cell[0]} seed {cell[1]} {cell[2]} in "
            f"{time.time() - start:.0f} s", flush=True)
  return failed


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--pairs", nargs="+", default=["mnist_usps", "usps_mnist"])
  parser.add_argument("--seeds", type=seeds, default="0-2", help="e.g. 0-2 or 0,3,5")
  parser.add_argument("--variants", nargs="+", default=list(VARIANTS),
                      choices=list(VARIANTS), metavar="VARIANT",
                      help=f"in order of priority; default all: {', '.join(VARIANTS)}")
  parser.add_argument("--jobs", type=positive, default=os.cpu_count() or 1,
                      help="cells at a time (default: one per core)")
  parser.add_argument("--root", default=os.path.join("runs", "sweep"))
  parser.add_argument("--results", default=os.path.join("results", "methods_cpu.csv"))
  parser.add_argument("--table", default=os.path.join("results", "methods"),
                      help="writes TABLE.md and TABLE.png from --results at the end")
  parser.add_argument("--raw-dir")
  parser.add_argument("--data-dir")
  parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                      help="flags passed to every run.py, e.g. --extra --rgb32 (last)")
  parser.add_argument("--dry-run", action="store_true", help="print the commands only")
  args = parser.parse_args()
  needs_stage_one = any(v not in INDEPENDENT for v in args.variants)
  variants = list(dict.fromkeys([PRETRAINING] * needs_stage_one + args.variants))
  all_cells = cells(args.pairs, args.seeds, variants, args.root)
  if args.dry_run:
    for cell in all_cells:
      print(("# finished: " if finished(cell[3]) else "") + " ".join(command(cell, args)))
    return
  failed = run(all_cells, args)
  if os.path.exists(args.results):
    try:  # matplotlib may be missing on an accelerator host: the rows are what matters there.
      from experiments import method_table
    except ImportError as e:
      print(f"[sweep] no table here ({e}); run experiments/method_table.py {args.results}")
    else:
      method_table.main([args.results, "--out", args.table])
  if failed:
    sys.exit(f"[sweep] {len(failed)} cells failed: {', '.join(failed)}")


if __name__ == "__main__":
  main()
