"""The recipe's table and plot: results CSV rows -> markdown and a PNG.

python experiments/recipe_table.py results/recipe/rows.csv --out results/recipe/recipe

For each pair (with --by-recipe, each pair and `--recipe` the rows' commands name), every model
a recipe run reports (source only, ADDA, ADDA + self-training at the last step, the checkpoint
the label-free validator picked, and the oracle line, which reads target labels and is shown
only to measure the others): mean ± std of target test accuracy (%) over seeds, beside the
issue's bar and the published numbers it cites. Rows of
`--method target_oracle` (the encoder trained on the target's own labels) show the ceiling.
"""
import argparse
import collections
import csv
import os
import shlex
import statistics
import sys

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
  """A results row's method in words: "adda+selftrain [selected: snd]" -> "ADDA +
  self-training [selected: snd]"; the oracle's tag in capitals."""
  base, _, tag = method.partition(" [")
  first, *rest = base.split("+")
  text = {"source_only": "source only", "adda": "ADDA",
          "target_oracle": "trained on target labels (READS TARGET LABELS: a ceiling)"
          }.get(first, first)
  text += "".join(" + self-training" if part == "selftrain" else f" + {part}" for part in rest)
  if not tag:
    return text
  return text + (" [oracle line: READS TARGET LABELS]" if "oracle" in tag else f" [{tag}")


def order(method: str) -> tuple:
  """Source only first, then ADDA; each model before its self-trained version; last step,
  then the validator's pick, then the oracle line."""
  base, _, tag = method.partition(" [")
  first, *rest = base.split("+")
  return (first != "source_only", first, len(rest), "oracle" in tag, tag)


def recipe_of(command: str) -> str | None:
  """The `--recipe` a row's command names, if any."""
  words = shlex.split(command)
  return words[words.index("--recipe") + 1] if "--recipe" in words[:-1] else None


def read(paths: list[str], by_recipe: bool = False
         ) -> dict[tuple[str, str | None], dict[str, list[float]]]:
  """{(pair, recipe or None): {method: [accuracy % per seed]}}, methods in `order`, seeds in
  file order (the latest row of a (pair, recipe, method, seed) wins: a rerun replaces its
  row). Rows are told apart by recipe only `by_recipe`."""
  latest = {}
  for path in paths:
    with open(path, newline="") as f:
      for row in csv.DictReader(f):
        recipe = (recipe_of(row["command"]) or "no recipe") if by_recipe else None
        key = (row["pair"], recipe, row["method"], row["seed"])
        latest[key] = 100 * float(row["target_accuracy"])
  table: dict[tuple[str, str | None], dict[str, list[float]]] = collections.defaultdict(dict)
  for (pair, recipe, method, _), value in sorted(latest.items(),
                                                 key=lambda kv: order(kv[0][2])):
    table[(pair, recipe)].setdefault(method, []).append(value)
  return table


def title(key: tuple[str, str | None]) -> str:
  pair, recipe = key
  return PAIRS.get(pair, pair) + (f", {recipe}" if recipe else "")


def cell(values: list[float]) -> str:
  spread = statistics.stdev(values) if len(values) > 1 else 0.0
  return f"{statistics.mean(values):.2f} ± {spread:.2f} ({len(values)})"


def markdown(table) -> str:
  lines = []
  for (pair, recipe), methods in table.items():
    lines += [f"### {title((pair, recipe))} (bar {BAR.get(pair, '-')}; published: "
              f"{PUBLISHED.get(pair, '-')})", "",
              "| model | target test % (mean ± std, seeds) | per seed |", "|---|---|---|"]
    for method, values in methods.items():
      lines.append(f"| {describe(method)} | {cell(values)} | "
                   f"{', '.join(f'{v:.2f}' for v in values)} |")
    lines.append("")
  return "\n".join(lines)


def plot(table, path: str) -> None:
  """One panel per pair, in a row; with recipes told apart, one row per recipe, each pair's
  panels on one accuracy scale so that the recipes compare down a column."""
  pairs = list(dict.fromkeys(pair for pair, _ in table))
  recipes = list(dict.fromkeys(recipe for _, recipe in table))
  fig, axes = plt.subplots(len(recipes), len(pairs), figsize=(7.5 * len(pairs),
                                                              3.4 * len(recipes)), squeeze=False)
  for row, recipe in enumerate(recipes):
    for col, pair in enumerate(pairs):
      ax = axes[row][col]
      if (pair, recipe) not in table:
        ax.axis("off")
        continue
      methods = table[(pair, recipe)]
      names = list(methods)[::-1]
      for y, name in enumerate(names):
        values = methods[name]
        oracle = "oracle" in name
        ax.barh(y, statistics.mean(values), color="lightgray" if oracle else "tab:blue",
                alpha=0.8)
        ax.plot(values, [y] * len(values), "k.", ms=6)
      if pair in BAR:
        ax.axvline(BAR[pair], color="tab:red", ls="--")
        ax.text(BAR[pair] - 0.2, (len(names) - 1) / 2, f"bar {BAR[pair]}", color="tab:red",
                rotation=90, ha="right", va="center", fontsize=8)
      ax.set_yticks(range(len(names)), [describe(n) for n in names], fontsize=8)
      low = min(min(v) for (p, _), methods in table.items() if p == pair
                for v in methods.values())
      ax.set_xlim(max(0, low - 5), 100)
      ax.set_xlabel("target test accuracy (%)")
      ax.set_title(f"{title((pair, recipe))}: bars the mean, dots the seeds", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def table_main(doc: str, default_out: str, read_rows, to_markdown, draw,
               switches: dict[str, str] | None = None) -> None:
  """The command line of a results-CSV table: CSV files in, OUT.md and OUT.png out.
  `switches` ({flag: help}) become on/off options passed on to `read_rows` by name."""
  parser = argparse.ArgumentParser(description=doc.splitlines()[0])
  parser.add_argument("csv", nargs="+")
  parser.add_argument("--out", default=default_out, help="writes OUT.md and OUT.png")
  for flag, text in (switches or {}).items():
    parser.add_argument(f"--{flag.replace('_', '-')}", action="store_true", help=text)
  args = parser.parse_args()
  try:
    table = read_rows(args.csv, **{flag: getattr(args, flag) for flag in switches or {}})
  except OSError as e:
    fail(f"cannot read {e.filename} ({e.strerror}); pass a results CSV written by run.py "
         f"--results")
  except (KeyError, ValueError) as e:
    fail(f"{' '.join(args.csv)} holds no results rows (no column {e}); pass a results CSV "
         f"written by run.py --results")
  if not table:
    fail(f"no rows to tabulate in {' '.join(args.csv)}")
  write(args.out, to_markdown(table), lambda path: draw(table, path))


def main() -> None:
  table_main(__doc__, os.path.join("results", "recipe", "recipe"), read, markdown, plot,
             {"by_recipe": "one table and panel per --recipe the rows' commands name (rows "
                           "without one: 'no recipe')"})


def fail(message: str) -> None:
  """One line on stderr and exit status 2, as run.py answers bad input."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(2)


def write(out: str, text: str, draw) -> None:
  """Prints `text` and writes it to OUT.md, and `draw(path)`'s picture to OUT.png, each under a
  temporary name first: readers never see half a table."""
  print(text)
  with open(out + ".md.tmp", "w") as f:
    f.write(text + "\n")
  os.replace(out + ".md.tmp", out + ".md")
  draw(out + ".tmp.png")
  os.replace(out + ".tmp.png", out + ".png")


if __name__ == "__main__":
  main()
