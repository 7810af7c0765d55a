"""The recipe's ablation table and plot: which self-training component buys how much.

python experiments/ablation_table.py results/recipe/rows.csv results/recipe/ablation_rows.csv \
    --out results/recipe/ablation

Reads the last-step rows of `--recipe adda_selftrain*` runs (method `adda+selftrain`), the
ADDA rows they start from, and `--method source_only` runs (stage 3 without ADDA); an arm is
the set of self-training or stage-1 regulariser flags its command adds to the recipe
(experiments/ablation.sh), "recipe" when none; another named recipe counts as the flags that
would turn `adda_selftrain` into it. For each arm: target test accuracy (%)
per seed, mean ± std, and its change from the recipe on the same seeds (stage-3 arms share
stages 1-2 seed by seed, so the paired difference is the component's effect; a stage-1 arm
retrains all three stages, and its ADDA model gets a row of its own). Only last-step models:
no selection, nothing read from target labels but the accuracy reported.
"""
import collections
import csv
import os
import shlex
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from adda_jax.configs.recipes import RECIPES  # noqa: E402
from adda_jax.methods.base import PRETRAIN_REGULARISERS  # noqa: E402
from adda_jax.methods.self_training import OPTIONS  # noqa: E402
from experiments.recipe_table import PAIRS, cell, recipe_of, table_main  # noqa: E402

STAGE1_FLAGS = {"--" + name.replace("_", "-") for name in (*PRETRAIN_REGULARISERS, "input_norm")}
FLAGS = ({"--" + name.replace("_", "-") for name in OPTIONS} | {"--no-class-balanced"}
         | STAGE1_FLAGS)
RECIPE, ADDA, NO_ADDA = "recipe", "ADDA only (no stage 3)", "stage 3 on the source model (no ADDA)"
BASE = "adda_selftrain"  # The recipe every arm is a change of.


def recipe_flags(name: str) -> list[str]:
  """The flags that turn the base recipe into recipe `name`, in its settings' order."""
  base, recipe = RECIPES[BASE], RECIPES[name]
  return [f"--{key.replace('_', '-')} {value}" for key, value in recipe.items()
          if base.get(key) != value]


def flags_in(words: list[str], wanted: set[str]) -> list[str]:
  """Each wanted flag among `words` with its value ("--flag value", or "--flag" alone)."""
  found = []
  for i, word in enumerate(words):
    if word in wanted:
      value = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else ""
      found.append(f"{word} {value}".strip())
  return found


def arm_of(command: str) -> str:
  """The self-training and stage-1 flags (with their values) a row's command sets, after
  those its recipe stands for, in command order."""
  arm = recipe_flags(recipe_of(command) or BASE) + flags_in(shlex.split(command), FLAGS)
  return " ".join(arm) or RECIPE


def stage1_flags(arm: str) -> str:
  """The part of an arm that changes stage 1 (and so the ADDA model every later stage
  starts from)."""
  return " ".join(flags_in(arm.split(), STAGE1_FLAGS))


def read(paths: list[str]) -> dict[str, dict[str, dict[int, float]]]:
  """{pair: {arm: {seed: accuracy %}}} from recipe runs; the latest row of a cell wins."""
  table: dict[str, dict[str, dict[int, float]]] = collections.defaultdict(dict)
  for path in paths:
    with open(path, newline="") as f:
      for row in csv.DictReader(f):
        if recipe_of(row["command"]) not in RECIPES:
          continue
        if row["method"] == "adda+selftrain":
          arm = arm_of(row["command"])
        elif row["method"] == "adda":
          # Arms that leave stage 1 alone share the recipe's ADDA model.
          changed = stage1_flags(arm_of(row["command"]))
          arm = f"{ADDA}, {changed}" if changed else ADDA
        elif row["method"] == "source_only+selftrain":
          changed = arm_of(row["command"])
          arm = NO_ADDA if changed == RECIPE else f"{NO_ADDA}, {changed}"
        else:
          continue
        table[row["pair"]].setdefault(arm, {})[int(row["seed"])] = (
            100 * float(row["target_accuracy"]))
  return table


def paired_change(arm: dict[int, float], recipe: dict[int, float]) -> list[float]:
  return [arm[s] - recipe[s] for s in sorted(arm) if s in recipe]


def markdown(table) -> str:
  lines = []
  for pair, arms in table.items():
    recipe = arms.get(RECIPE, {})
    lines += [f"### {PAIRS.get(pair, pair)}", "",
              "| arm (flags added to the recipe) | target test % (mean ± std, seeds) | "
              "per seed | change from the recipe, same seeds |", "|---|---|---|---|"]
    for arm in sorted(arms, key=lambda a: (a != RECIPE, a != ADDA, a)):
      values = arms[arm]
      change = paired_change(values, recipe) if arm != RECIPE else []
      shown = (f"{statistics.mean(change):+.2f} ({', '.join(f'{c:+.2f}' for c in change)})"
               if change else "-")
      lines.append(f"| {arm} | {cell(list(values.values()))} | "
                   f"{', '.join(f'{s}: {v:.2f}' for s, v in sorted(values.items()))} | "
                   f"{shown} |")
    lines.append("")
  return "\n".join(lines)


def plot(table, path: str) -> None:
  """The stage-3 arms' changes per pair that has any (stage 3 without ADDA stays in the
  table only: its -12 points would squeeze the others' scale to nothing)."""
  shown = {pair: arms for pair, arms in table.items()
           if set(arms) - {RECIPE, ADDA, NO_ADDA}} or table
  fig, axes = plt.subplots(1, len(shown), figsize=(8 * len(shown), 3.8), squeeze=False)
  for ax, (pair, arms) in zip(axes[0], shown.items()):
    recipe = arms.get(RECIPE, {})
    names = sorted((a for a in arms
                    if a not in (RECIPE, NO_ADDA) and paired_change(arms[a], recipe)),
                   key=lambda a: statistics.mean(paired_change(arms[a], recipe)))
    for y, name in enumerate(names):
      change = paired_change(arms[name], recipe)
      mean = statistics.mean(change)
      ax.barh(y, mean, color="tab:blue" if mean >= 0 else "tab:orange", alpha=0.8)
      ax.plot(change, [y] * len(change), "k.", ms=6)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("target test accuracy change from the recipe (points)")
    ax.set_title(f"{PAIRS.get(pair, pair)}: recipe "
                 f"{statistics.mean(recipe.values()) if recipe else float('nan'):.2f}%; "
                 f"bars the mean change, dots the seeds", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main() -> None:
  table_main(__doc__, os.path.join("results", "recipe", "ablation"), read, markdown, plot)


if __name__ == "__main__":
  main()
