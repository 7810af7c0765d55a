"""The recipe's table and plot: results CSV rows -> markdown and a PNG.

python experiments/recipe_table.py results/recipe/rows.csv --out results/recipe/recipe

For each pair, every model a recipe run reports (source only, ADDA, ADDA + self-training at
the last step, the checkpoint the label-free validator picked, and the oracle line, which
reads target labels and is shown only to measure the others): mean ± std of target test
accuracy (%) over seeds, beside the issue's bar and the published numbers it cites.
"""
import argparse
import collections
import csv
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PAIRS = {"mnist_usps": "MNIST->USPS", "usps_mnist": "USPS->MNIST",
         "mnist_mnistm": "MNIST->MNIST-M", "svhn_mnist": "SVHN->MNIST"}
BAR = {"mnist_usps": 98.5, "usps_mnist": 99.0, "mnist_mnistm": 97.0, "svhn_mnist": 98.0}
# Published full-set numbers the issue cites: ADDA (Tzeng et al. 2017), SHOT (Liang et al.
# 2020), self-ensembling / mean teacher (French et al. 2018), DIRT-T (Shu et al. 2018).
PUBLISHED = {"mnist_usps": "ADDA 89.4, SHOT 98.0, mean teacher 98.3",
             "usps_mnist": "ADDA 90.1, SHOT 98.4, mean teacher 98.1",
             "mnist_mnistm": "DIRT-T 98.7",
             "svhn_mnist": "ADDA 76.0, SHOT 98.9, mean teacher 99.2, DIRT-T 99.4"}


def describe(method: str) -> str:
  if method.endswith("[oracle-selected: reads target labels]"):
    return method.replace("[oracle-selected: reads target labels]",
                          "[oracle line: READS TARGET LABELS]")
  return {"source_only": "source only", "adda": "ADDA (paper's stages 1-2)"}.get(
      method, method.replace("+selftrain", " + self-training"))


def read(paths: list[str]) -> dict[str, dict[str, list[float]]]:
  """{pair: {method: [accuracy % per seed]}}, rows in file order (the latest row of a
  (pair, method, seed) wins: a rerun replaces its row)."""
  latest = {}
  for path in paths:
    with open(path, newline="") as f:
      for row in csv.DictReader(f):
        latest[(row["pair"], row["method"], row["seed"])] = 100 * float(row["target_accuracy"])
  table: dict[str, dict[str, list[float]]] = collections.defaultdict(dict)
  for (pair, method, _), value in latest.items():
    table[pair].setdefault(method, []).append(value)
  return table


def cell(values: list[float]) -> str:
  spread = statistics.stdev(values) if len(values) > 1 else 0.0
  return f"{statistics.mean(values):.2f} ± {spread:.2f} ({len(values)})"


def markdown(table) -> str:
  lines = []
  for pair, methods in table.items():
    lines += [f"### {PAIRS.get(pair, pair)} (bar {BAR.get(pair, '-')}; published: "
              f"{PUBLISHED.get(pair, '-')})", "",
              "| model | target test % (mean ± std, seeds) | per seed |", "|---|---|---|"]
    for method, values in methods.items():
      lines.append(f"| {describe(method)} | {cell(values)} | "
                   f"{', '.join(f'{v:.2f}' for v in values)} |")
    lines.append("")
  return "\n".join(lines)


def plot(table, path: str) -> None:
  fig, axes = plt.subplots(1, len(table), figsize=(6 * len(table), 3.2), squeeze=False)
  for ax, (pair, methods) in zip(axes[0], table.items()):
    names = list(methods)[::-1]
    for y, name in enumerate(names):
      values = methods[name]
      oracle = "oracle" in name
      ax.barh(y, statistics.mean(values), color="lightgray" if oracle else "tab:blue",
              alpha=0.8)
      ax.plot(values, [y] * len(values), "k.", ms=6)
    if pair in BAR:
      ax.axvline(BAR[pair], color="tab:red", ls="--", label=f"bar {BAR[pair]}")
      ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(range(len(names)), [describe(n) for n in names], fontsize=8)
    low = min(min(v) for v in methods.values())
    ax.set_xlim(max(0, low - 5), 100)
    ax.set_xlabel("target test accuracy (%), bars: mean, dots: seeds")
    ax.set_title(PAIRS.get(pair, pair))
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("csv", nargs="+")
  parser.add_argument("--out", default=os.path.join("results", "recipe", "recipe"),
                      help="writes OUT.md and OUT.png")
  args = parser.parse_args()
  table = read(args.csv)
  text = markdown(table)
  print(text)
  with open(args.out + ".md", "w") as f:
    f.write(text + "\n")
  plot(table, args.out + ".png")


if __name__ == "__main__":
  main()
