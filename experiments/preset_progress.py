"""How far each recipe preset stands from the issue's bars: one panel per pair, the presets
left to right in the order adda_jax/configs/recipes.py defines them.

python experiments/preset_progress.py results/recipe/*rows.csv --out results/recipe/presets

Only each preset's own runs count: rows whose command names the preset with `--recipe` and
adds no self-training or stage-1 flag (an ablation arm's rows are left out; a `--method`
change renames the row's method, so those are left out too). Per preset and pair: the whole
recipe's last-step model (ADDA + self-training) seed by seed, its mean ± std and its gap to
the bar, and the mean of the ADDA stage it started from. Last-step models only: the label-free
validators' picks and the oracle line are recipe_table.py's.
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
from experiments.ablation_table import FLAGS, flags_in  # noqa: E402
from experiments.recipe_table import BAR, PAIRS, recipe_of, table_main  # noqa: E402

STAGES = ("adda", "adda+selftrain")  # The ADDA stage, and the whole recipe's last step.


def read(paths: list[str]) -> dict[str, dict[str, dict[str, dict[int, float]]]]:
  """{pair: {preset: {stage: {seed: accuracy %}}}}, presets in RECIPES order; the latest row
  of a cell wins (a rerun replaces its row)."""
  cells: dict[tuple[str, str, str, int], float] = {}
  for path in paths:
    with open(path, newline="") as f:
      for row in csv.DictReader(f):
        preset = recipe_of(row["command"])
        if (preset in RECIPES and row["method"] in STAGES
                and not flags_in(shlex.split(row["command"]), FLAGS)):
          cells[(row["pair"], preset, row["method"], int(row["seed"]))] = (
              100 * float(row["target_accuracy"]))
  table: dict = collections.defaultdict(lambda: collections.defaultdict(dict))
  rank = {name: i for i, name in enumerate(RECIPES)}
  pair_rank = {name: i for i, name in enumerate(PAIRS)}
  for (pair, preset, stage, seed), value in sorted(
      cells.items(), key=lambda kv: (pair_rank.get(kv[0][0], len(PAIRS)), kv[0][0],
                                     rank[kv[0][1]], kv[0][3])):
    table[pair][preset].setdefault(stage, {})[seed] = value
  return table


def seed_list(seeds) -> str:
  """[0, 1, 2, 3] -> "0-3"; [1, 2] -> "1-2"; [0, 2] -> "0, 2"."""
  seeds = sorted(seeds)
  if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
    return f"{seeds[0]}-{seeds[-1]}"
  return ", ".join(map(str, seeds))


def summary(values: dict[int, float]) -> tuple[float, float]:
  """Mean and standard deviation (0 for one seed) over the seeds."""
  spread = statistics.stdev(values.values()) if len(values) > 1 else 0.0
  return statistics.mean(values.values()), spread


def presets_of(table) -> list[str]:
  return [name for name in RECIPES if any(name in by_preset for by_preset in table.values())]


def markdown(table) -> str:
  pairs = list(table)
  lines = ["Target test accuracy (%) of the whole recipe's last-step model: mean ± std over "
           "the seeds named, then its distance to the issue's bar; below it, the mean of "
           "the ADDA stage it started from. Empty: not run.", "",
           "| preset | " + " | ".join(f"{PAIRS.get(p, p)} (bar {BAR.get(p, '-')})"
                                      for p in pairs) + " |",
           "|---" * (len(pairs) + 1) + "|"]
  for preset in presets_of(table):
    cells = []
    for pair in pairs:
      stages = table[pair].get(preset, {})
      if "adda+selftrain" not in stages:
        cells.append("")
        continue
      last = stages["adda+selftrain"]
      mean, spread = summary(last)
      if len(last) > 1:
        text = f"**{mean:.2f} ± {spread:.2f}** (seeds {seed_list(last)})"
      else:  # One seed has no spread to show: a "± 0.00" would read as a measured one.
        text = f"**{mean:.2f}** (seed {seed_list(last)})"
      if pair in BAR:
        text += f", {mean - BAR[pair]:+.2f}"
      if "adda" in stages:
        text += f"<br>ADDA {summary(stages['adda'])[0]:.2f}"
      cells.append(text)
    lines.append(f"| `{preset}` | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def short_name(preset: str) -> str:
  """adda_selftrain_zoom_inorm -> "+ inorm": what the preset adds to the one before it."""
  earlier = [name for name in RECIPES if preset.startswith(name + "_")]
  return "+ " + preset[len(max(earlier, key=len)) + 1:] if earlier else preset


def plot(table, path: str) -> None:
  presets = presets_of(table)
  fig, axes = plt.subplots(1, len(table), figsize=(4.6 * len(table), 4.2), squeeze=False)
  for ax, (pair, by_preset) in zip(axes[0], table.items()):
    labels = {"adda": "ADDA stage (mean)", "last": "whole recipe, last step (mean ± std)",
              "seed": "one seed"}  # Each label once, where it first appears.
    values = [BAR[pair]] if pair in BAR else []
    for x, preset in enumerate(presets):
      stages = by_preset.get(preset, {})
      if "adda" in stages:
        values.append(summary(stages["adda"])[0])
        ax.plot(x - 0.15, values[-1], "o", mfc="none", mec="gray", ms=7,
                label=labels.pop("adda", None))
      if "adda+selftrain" in stages:
        last = stages["adda+selftrain"]
        mean, spread = summary(last)
        ax.errorbar(x + 0.1, mean, yerr=spread, fmt="s", color="tab:blue", ms=7, capsize=3,
                    label=labels.pop("last", None))
        ax.plot([x + 0.25] * len(last), list(last.values()), "k.", ms=5,
                label=labels.pop("seed", None))
        ax.annotate(f"{len(last)}", (x + 0.1, mean + spread), textcoords="offset points",
                    xytext=(0, 4), ha="center", fontsize=7, color="tab:blue")
        values += [*last.values(), mean - spread, mean + spread]
    if pair in BAR:
      ax.axhline(BAR[pair], color="tab:red", ls="--", label="the issue's bar")
    pad = 0.06 * (max(values) - min(values))
    ax.set_ylim(min(values) - pad, max(values) + 2 * pad)
    ax.set_xticks(range(len(presets)), [short_name(p) for p in presets], rotation=30,
                  ha="right", fontsize=8)
    ax.set_title(PAIRS.get(pair, pair) + (f" (bar {BAR[pair]})" if pair in BAR else ""),
                 fontsize=10)
    ax.set_ylabel("target test accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
  handles = {}
  for ax in axes[0]:
    handles.update(zip(*ax.get_legend_handles_labels()[::-1]))
  fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles),
             fontsize=8)
  fig.suptitle("Each recipe preset (left to right, each adding one change) against the bar; "
               "numbers above the squares: seeds", fontsize=11)
  fig.tight_layout(rect=(0, 0.06, 1, 1))
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main() -> None:
  table_main(__doc__, os.path.join("results", "recipe", "presets"), read, markdown, plot)


if __name__ == "__main__":
  main()
