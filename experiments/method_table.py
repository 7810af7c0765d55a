"""The method comparison: results CSVs -> a markdown table and a bar plot.

python experiments/method_table.py results/methods_cpu.csv [--out results/methods]

Rows are variants (method, sharing, mapping loss, kernel), columns are pairs: mean ± std of
target test accuracy (%) over seeds, with the number of seeds, beside the published number
where one exists. `target_oracle` trains on target labels: it is marked as an upper bound,
never a method. Only rows of one protocol are pooled (pair, input, subsets, steps).
"""
import argparse
import collections
import csv
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Published target accuracies on digits (LeNet-class encoders): ADDA's Table 2 (Tzeng et al.
# 2017) for MNIST<->USPS and SVHN->MNIST; the DANN paper (Ganin & Lempitsky 2015) for
# MNIST->MNIST-M. CAN was published on Office-31 only.
PUBLISHED = {
    "mnist_usps": {"source_only": 75.2, "dann": 77.1, "confusion": 79.1, "cogan": 91.2,
                   "adda": 89.4},
    "usps_mnist": {"source_only": 57.1, "dann": 73.0, "confusion": 66.5, "cogan": 89.1,
                   "adda": 90.1},
    "svhn_mnist": {"source_only": 60.1, "dann": 73.9, "confusion": 68.1, "adda": 76.0},
    "mnist_mnistm": {"source_only": 52.3, "dann": 76.7},
}
PAIRS = {"mnist_usps": "MNIST->USPS", "usps_mnist": "USPS->MNIST", "svhn_mnist": "SVHN->MNIST",
         "mnist_mnistm": "MNIST->MNIST-M"}
ORDER = ("source_only", "adda", "adda_minimax", "adda_confusion", "adda_tied", "adda_partial",
         "dann", "ddc", "ddc_multi", "confusion", "can", "cogan", "target_oracle")
LABELS = {
    "source_only": "source only (lower bound)",
    "adda": "ADDA (untied, GAN loss)",
    "adda_minimax": "ADDA, minimax loss",
    "adda_confusion": "ADDA, confusion loss",
    "adda_tied": "ADDA tied (weight sharing)",
    "adda_partial": "ADDA partial (conv shared)",
    "dann": "gradient reversal (DANN)",
    "ddc": "deep domain confusion (MMD)",
    "ddc_multi": "DDC, multi-kernel (DAN)",
    "confusion": "domain confusion",
    "can": "CAN",
    "cogan": "CoGAN (generative)",
    "target_oracle": "target oracle (reads target labels: upper bound)",
}
PROTOCOL = ("image_size", "channels", "pixel_scale", "source_subset",
            "pretrain_steps", "eval_split", "conv_relu", "pretrain_solver")


def variant(row: dict) -> str:
  """The table's name for a row's method and settings."""
  name = row["method"]
  if name == "adda":
    if row.get("sharing") not in (None, "", "untied"):
      name += f"_{row['sharing']}"
    if row.get("adversarial_loss") not in (None, "", "gan"):
      name += f"_{row['adversarial_loss']}"
  if name == "ddc" and row.get("mmd_kernel") == "multi":
    name += "_multi"
  return name


def column(row: dict) -> tuple:
  """A pair under one protocol: rows of other protocols never pool. (Stage-2 fields such as
  target_subset are blank on source-only rows, so they are left out; --full-sets changes
  source_subset too.)"""
  return (row["pair"], *(row.get(k, "") for k in PROTOCOL))


def column_label(key: tuple, all_keys: list[tuple]) -> str:
  label = PAIRS.get(key[0], key[0])
  size, channels = key[1], key[2]
  if sum(k[0] == key[0] for k in all_keys) > 1 or channels == "3":
    label += f" ({size}px {'RGB' if channels == '3' else 'gray'})"
  return label


def pooled(rows: list[dict]) -> dict:
  """{(variant, column): {seed: accuracy %}}; repeated runs of a seed are averaged first."""
  by_seed = collections.defaultdict(lambda: collections.defaultdict(list))
  for row in rows:
    by_seed[(variant(row), column(row))][int(row["seed"])].append(
        100 * float(row["target_accuracy"]))
  return {key: {s: statistics.mean(v) for s, v in seeds.items()}
          for key, seeds in by_seed.items()}


def cell(per_seed: dict | None) -> str:
  if not per_seed:
    return ""
  values = list(per_seed.values())
  spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
  return f"{statistics.mean(values):.1f}{spread} ({len(values)})"


def table(data: dict) -> str:
  columns = sorted({c for _, c in data}, key=lambda c: (list(PAIRS).index(c[0])
                                                        if c[0] in PAIRS else 99, c))
  variants = [v for v in ORDER if any((v, c) in data for c in columns)]
  variants += sorted({v for v, _ in data} - set(variants))
  head = ["method"]
  for c in columns:
    head += [f"{column_label(c, columns)}: ours (seeds)", "published"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * (1 + 2 * len(columns))]
  for v in variants:
    cells = [LABELS.get(v, v)]
    for c in columns:
      cells += [cell(data.get((v, c))), str(PUBLISHED.get(c[0], {}).get(v, ""))]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def differences(data: dict, reference: str = "adda") -> str:
  """Each variant minus `reference`, seed by seed. Every cell of a pair and seed starts from
  the same stage 1, so the paired difference removes the part of the spread they share:
  "mean ± std of the differences, how many seeds agree in sign"."""
  columns = sorted({c for _, c in data}, key=lambda c: (list(PAIRS).index(c[0])
                                                        if c[0] in PAIRS else 99, c))
  lines = ["| method | " + " | ".join(column_label(c, columns) for c in columns) + " |",
           "|" + "---|" * (1 + len(columns))]
  for v in [v for v in ORDER if v not in (reference, "target_oracle")]:
    cells = []
    for c in columns:
      ours, base = data.get((v, c), {}), data.get((reference, c), {})
      diffs = [ours[s] - base[s] for s in sorted(ours.keys() & base.keys())]
      if not diffs:
        cells.append("")
        continue
      spread = f" ± {statistics.stdev(diffs):.1f}" if len(diffs) > 1 else ""
      mean = statistics.mean(diffs)
      agree = sum((d > 0) == (mean > 0) for d in diffs)
      cells.append(f"{mean:+.1f}{spread} ({agree}/{len(diffs)} "
                   f"{'higher' if mean > 0 else 'lower'})")
    if any(cells):
      lines.append(f"| {LABELS.get(v, v)} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def plot(data: dict, path: str) -> None:
  columns = sorted({c for _, c in data}, key=lambda c: list(PAIRS).index(c[0])
                   if c[0] in PAIRS else 99)
  variants = [v for v in ORDER if any((v, c) in data for c in columns)]
  fig, axes = plt.subplots(1, len(columns), figsize=(5.5 * len(columns), 0.42 * len(variants)
                                                      + 1.8), squeeze=False, sharey=True)
  means = [statistics.mean(seeds.values()) for seeds in data.values() if seeds]
  left = max(0, 10 * int(min(means) // 10) - 10)  # Differences of a few points stay visible.
  for ax, c in zip(axes[0], columns):
    for i, v in enumerate(variants):
      values = list(data.get((v, c), {}).values())
      if not values:
        continue
      mean = statistics.mean(values)
      std = statistics.stdev(values) if len(values) > 1 else 0.0
      color = "tab:gray" if v in ("source_only", "target_oracle") else "tab:blue"
      ax.barh(i, mean, xerr=std or None, color=color, alpha=0.8, capsize=3)
      published = PUBLISHED.get(c[0], {}).get(v)
      if published is not None:
        ax.plot(published, i, "k|", markersize=14, markeredgewidth=2)
      ax.text(max(mean + std, published or 0) + 0.8, i, f"{mean:.1f} ({len(values)})",
              va="center", fontsize=8)
    ax.set_title(column_label(c, columns))
    ax.set_xlim(left, 104)
    ax.set_yticks(range(len(variants)), [LABELS.get(v, v).split(" (reads")[0]
                                         for v in variants])
  axes[0][0].invert_yaxis()  # Shared by every panel: the table's order, top to bottom.
  fig.supxlabel("target test accuracy (%): mean ± std over seeds (number of seeds); "
                "| = published")
  fig.tight_layout()
  fig.savefig(path + ".tmp.png", dpi=110)  # Renamed when whole: readers never see half a PNG.
  os.replace(path + ".tmp.png", path)
  plt.close(fig)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("csv", nargs="+")
  parser.add_argument("--out", default=os.path.join("results", "methods"),
                      help="writes OUT.md and OUT.png")
  args = parser.parse_args(argv)
  rows = []
  for path in args.csv:
    with open(path, newline="") as f:
      rows += list(csv.DictReader(f))
  if not rows:
    sys.exit(f"no rows in {', '.join(args.csv)}")
  data = pooled(rows)
  with open(args.out + ".md.tmp", "w") as f:
    f.write(f"# Methods compared\n\nGenerated by `python experiments/method_table.py "
            f"{' '.join(args.csv)}` from the rows there; target test accuracy (%), mean ± std "
            f"over seeds (number of seeds), published numbers from ADDA's Table 2 and the "
            f"DANN paper.\n\n" + table(data) + "\nDifference from ADDA (untied, GAN loss) in "
            "points, paired by seed (each seed's cells share one stage 1): mean ± std over "
            "seeds, and how many seeds agree in sign.\n\n" + differences(data))
  os.replace(args.out + ".md.tmp", args.out + ".md")
  plot(data, args.out + ".png")
  print(f"[table] wrote {args.out}.md and {args.out}.png")


if __name__ == "__main__":
  main()
