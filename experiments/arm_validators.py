"""Choosing among a sweep's arms without target labels: which arm each validator would keep.

python experiments/arm_validators.py runs/recipe/mnist_usps/seed* \
    runs/ablation/mnist_usps/*/seed* --stage selftrain --out results/recipe/arm_validators

Each workdir is one finished run; its arm is how its config differs from `--recipe
adda_selftrain` (read from its summary, "recipe" when it does not). From the last progress line
of `--stage` (the model the run ends with) come the label-free validators and the target
accuracy (read with labels, to measure the validators only). For each seed, each validator
picks the arm it scores best; the table gives the mean target accuracy of its picks beside the
fixed recipe's and the oracle's (the arm with the best target accuracy per seed: reads target
labels, a bound, never a result), and Spearman's rank correlation of the validator with target
accuracy across the arms, averaged over seeds. Writes OUT.csv (the scores, one row per run) and
OUT.md.
"""
import argparse
import collections
import csv
import json
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adda_jax import cli, validators  # noqa: E402
from adda_jax.config import Config  # noqa: E402
from adda_jax.configs import get_config  # noqa: E402
from adda_jax.configs.recipes import RECIPES, apply_recipe  # noqa: E402
from adda_jax.errors import UserError  # noqa: E402
from adda_jax.methods.base import PRETRAIN_REGULARISERS  # noqa: E402
from experiments.validator_table import spearman  # noqa: E402

RECIPE = "adda_selftrain"
# What an arm may change: the recipe's settings, stage 1's regularisers, the encoder's input.
SETTINGS = tuple(dict.fromkeys(("method", *RECIPES[RECIPE], *PRETRAIN_REGULARISERS,
                                "input_norm")))


def arm_of(cfg: Config) -> str:
  """The recipe settings `cfg` changes, as name=value, or "recipe"."""
  recipe = apply_recipe(get_config(cfg.pair), RECIPE)
  changed = [f"{name}={getattr(cfg, name)}" for name in SETTINGS
             if getattr(cfg, name) != getattr(recipe, name) and name != "select"]
  return " ".join(changed) or "recipe"


def read_runs(workdirs: list[str], stage: str) -> list[dict]:
  """One row per run: pair, arm, seed, the stage's last step, target accuracy, validators."""
  rows, seen = [], {}
  for workdir in workdirs:
    path = os.path.join(workdir, "summary.json")
    try:
      with open(path) as f:
        summary = json.load(f)
      last = summary[f"{stage}_history"][-1]
    except (OSError, ValueError, KeyError, IndexError) as e:
      raise UserError(f"{path}: no {stage} history to read ({type(e).__name__}); pass the "
                      f"workdir of a finished run")
    cfg = Config.from_json(summary["config"])
    arm = arm_of(cfg)
    if (cfg.pair, arm, cfg.seed) in seen:
      raise UserError(f"{seen[cfg.pair, arm, cfg.seed]} and {workdir} are the same arm ({arm}) "
                      f"and seed ({cfg.seed}); pass one of them")
    seen[cfg.pair, arm, cfg.seed] = workdir
    rows.append({"pair": cfg.pair, "arm": arm, "seed": cfg.seed, "step": last["step"],
                 "target_accuracy": last["target_accuracy"],
                 **{name: last[f"val_{name}"] for name in validators.PREFERS
                    if f"val_{name}" in last}})
  return rows


def choices(rows: list[dict]) -> dict[str, dict]:
  """{pair: the validators' and the oracle's picks per seed, their mean target accuracy and
  mean Spearman across arms}, over the seeds that ran every arm of their pair (a seed with
  fewer arms would be compared on a smaller menu). A tie counts as the mean of the tied arms,
  the expected accuracy of breaking it at random."""
  out = {}
  by_pair = collections.defaultdict(lambda: collections.defaultdict(list))
  for row in rows:
    by_pair[row["pair"]][row["seed"]].append(row)
  for pair, seeds in by_pair.items():
    arms = sorted({r["arm"] for runs in seeds.values() for r in runs})
    complete = {s: runs for s, runs in sorted(seeds.items()) if len(runs) == len(arms)}
    entries = []
    for name in ("oracle", *validators.PREFERS):
      if not complete or any(name not in run for runs in complete.values() for run in runs
                             if name != "oracle"):
        continue
      picks, picked, rhos = [], [], []
      for seed, runs in complete.items():
        accuracy = np.array([run["target_accuracy"] for run in runs])
        score = accuracy if name == "oracle" else validators.ranked(
            name, [run[name] for run in runs])
        # Runs made by different versions read the same count of held-out images as 0.993 or
        # 0.99300003 (float32): rounding keeps such equal scores a tie.
        score = np.round(score, 6)
        signed = -score if validators.PREFERS.get(name) == "min" else score
        best = np.flatnonzero(signed == signed.max())
        picks.append(f"{seed}: {' = '.join(runs[i]['arm'] for i in best)}")
        picked.append(100 * accuracy[best].mean())
        rhos.append(spearman(signed, accuracy))
      entries.append({"validator": name, "picks": picks, "mean": statistics.mean(picked),
                      "spearman": None if name == "oracle" else float(np.nanmean(rhos))})
    recipe = [100 * r["target_accuracy"] for runs in complete.values() for r in runs
              if r["arm"] == "recipe"]
    out[pair] = {"entries": entries, "recipe": statistics.mean(recipe) if recipe else None,
                 "arms": arms, "seeds": list(complete)}
  return out


def markdown(picked: dict) -> str:
  lines = []
  for pair, result in picked.items():
    if len(result["arms"]) < 2 or not result["seeds"]:
      lines += [f"### {pair}: nothing to choose (needs two arms, each run on the same seed)",
                ""]
      continue
    oracle = next(e["mean"] for e in result["entries"] if e["validator"] == "oracle")
    recipe = "-" if result["recipe"] is None else f"{result['recipe']:.2f}"
    lines += [f"### {pair}: {len(result['arms'])} arms, seeds "
              f"{', '.join(map(str, result['seeds']))}; the fixed recipe {recipe}%", "",
              "| validator | arm it keeps, per seed | target % of its picks (mean) | gap to the "
              "oracle | Spearman across arms (mean over seeds) |", "|---|---|---|---|---|"]
    for e in result["entries"]:
      name = ("oracle (READS TARGET LABELS; a bound, not a result)"
              if e["validator"] == "oracle" else e["validator"])
      rho = "-" if e["spearman"] is None else f"{e['spearman']:+.2f}"
      lines.append(f"| {name} | {'; '.join(e['picks'])} | {e['mean']:.2f} | "
                   f"{e['mean'] - oracle:+.2f} | {rho} |")
    lines.append("")
  return "\n".join(lines)


def main() -> None:
  parser = cli.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("workdirs", nargs="+")
  parser.add_argument("--stage", default="selftrain")
  parser.add_argument("--out", default=os.path.join("results", "recipe", "arm_validators"),
                      help="writes OUT.csv and OUT.md")
  args = parser.parse_args()
  rows = read_runs(args.workdirs, args.stage)
  text = markdown(choices(rows))
  print(text)
  columns = ["pair", "arm", "seed", "step", "target_accuracy", *validators.PREFERS]
  try:
    with open(args.out + ".csv.tmp", "w", newline="") as f:
      writer = csv.DictWriter(f, columns, restval="")
      writer.writeheader()
      writer.writerows(sorted(rows, key=lambda r: (r["pair"], r["arm"], r["seed"])))
    os.replace(args.out + ".csv.tmp", args.out + ".csv")
    with open(args.out + ".md.tmp", "w") as f:
      f.write(text + "\n")
    os.replace(args.out + ".md.tmp", args.out + ".md")
  except OSError as e:
    raise UserError(f"cannot write --out {args.out} ({e.strerror}); choose a writable path")


if __name__ == "__main__":
  cli.main_guard(main)
