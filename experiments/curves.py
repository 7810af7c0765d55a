"""Adaptation curves: target accuracy and discriminator accuracy against the stage-2 step.

python experiments/curves.py runs/usps_mnist/seed*_curve runs/mnist_usps/seed*_curve \
    --csv results/adapt_curves.csv --plot results/adapt_curves.png

Reads each run's summary.json (`adapt_history`, logged every --log-every steps by run.py),
writes the points as CSV rows and draws one panel per pair, update rule and encoder, one colour
per seed.
Step 0 is the source-only model (M_t = M_s). Target accuracy here is for watching runs, as in
the logs: every reported ADDA number is the last step's, never a selected one.
"""
import argparse
import collections
import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from summarize import ENCODERS, PAPER  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from adda_jax.config import Config  # noqa: E402

COLUMNS = ("pair", "adapt_update", "encoder", "seed", "step", "target_accuracy", "disc_accuracy",
           "eval_split", "device", "commit", "workdir")


def points(workdir: str) -> list[dict]:
  path = os.path.join(workdir, "summary.json")
  try:
    with open(path) as f:
      summary = json.load(f)
  except (OSError, ValueError) as e:
    raise SystemExit(f"error: {path} is missing or unreadable ({e}); pass finished run folders")
  history = summary.get("adapt_history") or []
  if not history or "target_accuracy" not in history[0]:
    raise SystemExit(f"error: {path} has no adaptation curve; rerun it with this version of "
                     f"experiments/run.py (without --no-target-monitor)")
  common = {k: summary[k] for k in ("pair", "seed", "eval_split", "device")}
  cfg = Config.from_json(summary["config"])  # Also reads runs saved before a field existed.
  common.update(adapt_update=cfg.adapt_update,
                encoder=ENCODERS[cfg.conv_relu],
                commit=summary.get("adapt_commit", summary["commit"]))
  start = {"step": 0, "target_accuracy": summary["source_only_accuracy"], "disc_accuracy": ""}
  return [{**common, **{k: h[k] for k in ("step", "target_accuracy", "disc_accuracy")},
           "workdir": workdir} for h in [start, *history]]


def plot(rows: list[dict], path: str) -> None:
  panels = collections.defaultdict(lambda: collections.defaultdict(list))
  for r in rows:
    panels[(r["pair"], r["adapt_update"], r["encoder"])][r["seed"]].append(r)
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
  for ax, ((pair, update, encoder), seeds) in zip(axes[0], sorted(panels.items())):
    for seed, curve in sorted(seeds.items()):
      color = f"C{int(seed) % 10}"  # One colour per seed across panels.
      ax.plot([p["step"] for p in curve], [100 * p["target_accuracy"] for p in curve],
              color=color, label=f"seed {seed}: target accuracy")
      adapted = [p for p in curve if p["disc_accuracy"] != ""]
      ax.plot([p["step"] for p in adapted], [100 * p["disc_accuracy"] for p in adapted],
              color=color, ls=":", label=f"seed {seed}: D accuracy")
    if (pair, "adda") in PAPER:
      ax.axhline(PAPER[(pair, "adda")], color="r", ls="--", lw=1, label="paper ADDA")
    ax.set_title(f"{pair}, {update}, {encoder} (target {curve[0]['eval_split']}, "
                 f"{curve[0]['device']})", fontsize=9)
    ax.set_xlabel("adaptation step (0 = source only)")
    ax.set_ylabel("%")
    ax.set_ylim(40, 100)
    ax.legend(fontsize=7, loc="lower right")
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("workdirs", nargs="+", help="finished run folders (run.py --workdir)")
  parser.add_argument("--csv", default="results/adapt_curves.csv")
  parser.add_argument("--plot", default="results/adapt_curves.png")
  args = parser.parse_args()
  rows = []
  for workdir in args.workdirs:
    curve = points(workdir)
    best = max(curve, key=lambda p: p["target_accuracy"])
    print(f"{workdir}: {curve[-1]['pair']} seed {curve[-1]['seed']}, source only "
          f"{100 * curve[0]['target_accuracy']:.2f}%, last (step {curve[-1]['step']}) "
          f"{100 * curve[-1]['target_accuracy']:.2f}%, highest {100 * best['target_accuracy']:.2f}%"
          f" at step {best['step']}")
    rows += curve
  with open(args.csv, "w", newline="") as f:
    writer = csv.DictWriter(f, COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
  plot(rows, args.plot)
  print(f"wrote {args.csv} and {args.plot}")


if __name__ == "__main__":
  main()
