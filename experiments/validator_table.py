"""How well each label-free validator tracks target accuracy along runs' progress lines.

python experiments/validator_table.py runs/e2e/validators [more workdirs] --stage adapt \
    --out results/validators_cpu.md

For each workdir's summary.json, over the stage's progress lines (each has the validators,
read without labels, and the target accuracy, read with them): the accuracy at the line each
validator prefers, its gap to the best line's (the "oracle" choice, which reads target labels
and is shown only to measure the validators), the last line's accuracy (no selection), and
the Spearman rank correlation between the validator (signed so that higher is preferred) and
target accuracy. Progress lines are not checkpoints: this measures the signals, it selects
nothing.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adda_jax import cli, validators  # noqa: E402
from adda_jax.errors import UserError  # noqa: E402


def spearman(a: np.ndarray, b: np.ndarray) -> float:
  """Rank correlation (ties get their mean rank)."""
  def ranks(x):
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x))
    for value in np.unique(x):
      r[x == value] = r[x == value].mean()
    return r
  ra, rb = ranks(a), ranks(b)
  if ra.std() == 0 or rb.std() == 0:
    return float("nan")
  return float(np.corrcoef(ra, rb)[0, 1])


def rows_for(history: list[dict], label: str) -> list[dict]:
  accuracy = np.array([line["target_accuracy"] for line in history])
  out = []
  for name, prefers in validators.PREFERS.items():
    if f"val_{name}" not in history[0]:  # source_accuracy needs --source-val-size.
      continue
    score = validators.ranked(name, [line[f"val_{name}"] for line in history])
    signed = score if prefers == "max" else -score
    picked = int(np.argmax(signed))
    out.append({"run": label, "validator": name, "picked_step": history[picked]["step"],
                "picked": 100 * accuracy[picked], "oracle": 100 * accuracy.max(),
                "last": 100 * accuracy[-1], "spearman": spearman(signed, accuracy)})
  return out


def table(workdirs: list[str], stage: str) -> list[dict]:
  """Rows for every workdir, each named by its path below the folder they all share (its
  basename when they are siblings: seed0, seed1, ...)."""
  rows = []
  common = os.path.commonpath([os.path.dirname(os.path.abspath(w)) for w in workdirs])
  for workdir in workdirs:
    path = os.path.join(workdir, "summary.json")
    try:
      with open(path) as f:
        history = json.load(f)[f"{stage}_history"]
    except (OSError, ValueError, KeyError) as e:
      raise UserError(f"{path}: no {stage} history to read ({type(e).__name__}); pass the "
                      f"workdir of a finished run")
    if not history or "val_entropy" not in history[0] or "target_accuracy" not in history[0]:
      raise UserError(f"{path}: its {stage} progress lines lack the validators or the target "
                      f"monitor; rerun it with this version, without --no-target-monitor")
    rows += rows_for(history, os.path.relpath(os.path.abspath(workdir), common))
  return rows


def markdown(rows: list[dict], stage: str) -> str:
  lines = [f"Stage `{stage}`: target accuracy (%) at the progress line each validator prefers, "
           "beside the best line's (oracle: reads target labels) and the last line's "
           "(no selection); Spearman: rank correlation of the validator with target accuracy "
           "over the lines.", "",
           "| run | validator | picked step | picked | oracle | gap | last | Spearman |",
           "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['run']} | {r['validator']} | {r['picked_step']} | {r['picked']:.2f} | "
                 f"{r['oracle']:.2f} | {r['picked'] - r['oracle']:+.2f} | {r['last']:.2f} | "
                 f"{r['spearman']:+.2f} |")
  return "\n".join(lines) + "\n"


def main() -> None:
  parser = cli.Parser(description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("workdirs", nargs="+")
  parser.add_argument("--stage", default="adapt")
  parser.add_argument("--out", help="also write the table to this markdown file")
  args = parser.parse_args()
  text = markdown(table(args.workdirs, args.stage), args.stage)
  print(text, end="")
  if args.out:
    try:
      with open(args.out + ".tmp", "w") as f:
        f.write(text)
      os.replace(args.out + ".tmp", args.out)  # Readers never see half a table.
    except OSError as e:
      raise UserError(f"cannot write --out {args.out} ({e.strerror}); choose a writable path")


if __name__ == "__main__":
  cli.main_guard(main)
