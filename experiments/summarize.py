"""Turns results CSVs into mean ± std tables (results/README.md) and bar plots (PNG).

python experiments/summarize.py results/digits.csv results/digits_h100.csv

Each CSV gets its own section and plot (results/<name>.png): one file per machine, so wall
times and float behaviour are not mixed.
"""
import argparse
import collections
import csv
import os
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Published target accuracies (LeNet): ADDA paper Table 2, and DANN's for MNIST->MNIST-M.
PAPER = {("mnist_usps", "source_only"): 75.2, ("mnist_usps", "adda"): 89.4,
         ("usps_mnist", "source_only"): 57.1, ("usps_mnist", "adda"): 90.1,
         ("svhn_mnist", "source_only"): 60.1, ("svhn_mnist", "adda"): 76.0,
         ("mnist_mnistm", "source_only"): 52.3}
PROTOCOL = ("pretrain_steps", "adapt_steps", "source_subset", "target_subset", "eval_split",
            "disc_input", "adversarial_loss", "adapt_update", "image_size", "channels",
            "pixel_scale", "conv_relu", "pretrain_solver")
# Config.conv_relu -> the encoder's name in tables, plots and curves.
ENCODERS = {True: "conv ReLU", False: "Caffe LeNet"}
# Settings of stage 2 only: they do not distinguish source-only models.
ADAPT_ONLY = ("disc_input", "adversarial_loss", "adapt_update")


def load(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def input_and_source_model(row) -> str:
  """E.g. "28px x1"; "32px x1 [0,255]" for the released code's pixel range; ", Caffe LeNet"
  for the encoder without conv ReLUs and ", Caffe solver" for Caffe's LeNet solver in stage 1
  (the defaults, the released code's LeNet pretrained with Adam, go unnamed)."""
  scale = float(row["pixel_scale"])
  return (f"{row['image_size']}px x{row['channels']}" + ("" if scale == 1 else f" [0,{scale:g}]")
          + (f", {ENCODERS[False]}" if row["conv_relu"] == "False" else "")
          + (", Caffe solver" if row["pretrain_solver"] == "caffe_lenet" else ""))


def group(rows):
  groups = collections.defaultdict(list)
  for row in rows:
    if row["method"] == "source_only":
      row = {**row, **{k: "-" for k in ADAPT_ONLY}}
    protocol = tuple(row[k] for k in PROTOCOL)
    groups[(row["pair"], row["method"], protocol)].append(row)
  return groups


def per_seed(rows) -> dict[str, float]:
  """Accuracy (%) per seed; repeated runs of one seed (e.g. timing reruns) are averaged first,
  so mean ± std is over seeds."""
  by_seed = collections.defaultdict(list)
  for r in rows:
    by_seed[r["seed"]].append(100 * float(r["target_accuracy"]))
  return {seed: statistics.mean(accs)
          for seed, accs in sorted(by_seed.items(), key=lambda item: int(item[0]))}


def seed_ranges(seeds) -> str:
  """E.g. ["0", "1", "2", "3", "7"] -> "0-3,7": runs of three or more consecutive seeds
  collapse to a range."""
  runs = []
  for seed in map(int, seeds):
    if runs and seed == runs[-1][-1] + 1:
      runs[-1].append(seed)
    else:
      runs.append([seed])
  return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


def mean_std(rows) -> tuple[float, float]:
  accs = list(per_seed(rows).values())
  return statistics.mean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0


def table(groups) -> str:
  lines = ["| pair | method | target acc. % (mean ± std over seeds) | seeds (runs) | paper | "
           "protocol | commits |", "|---|---|---|---|---|---|---|"]
  for (pair, method, _), rows in sorted(groups.items()):
    mean, std = mean_std(rows)
    by_seed = per_seed(rows)
    seeds = seed_ranges(by_seed)
    if len(rows) > len(by_seed):
      seeds += f" ({len(rows)})"
    r = rows[0]
    subsets = (f"{r['source_subset'] or 'full'}/{r['target_subset'] or 'full'}")
    adaptation = ("" if method == "source_only" else
                  f"D on {r['disc_input']}, {r['adversarial_loss']} {r['adapt_update']}, ")
    protocol = (f"{r['pretrain_steps']}+{r['adapt_steps']} steps, subsets {subsets}, eval "
                f"{r['eval_split']}, {adaptation}{input_and_source_model(r)}")
    paper = PAPER.get((pair, method), "")
    commits = ", ".join(sorted({r["commit"] for r in rows}))
    lines.append(f"| {pair} | {method} | {mean:.1f} ± {std:.1f} | {seeds} | {paper} | "
                 f"{protocol} | {commits} |")
  return "\n".join(lines)


def plot(groups, path, title):
  keys = sorted(groups)
  at = {name: PROTOCOL.index(name)
        for name in ("eval_split", "source_subset", "disc_input", "adapt_update")}
  labels = [f"{p}\n{m}\n{'subsets' if proto[at['source_subset']] else 'full'}, eval "
            f"{proto[at['eval_split']]}\n"
            + input_and_source_model(dict(zip(PROTOCOL, proto))).replace(", ", "\n")
            + ("" if m == "source_only" else
               f"\nD {proto[at['disc_input']][:5]}, {proto[at['adapt_update']][:5]}")
            for p, m, proto in keys]
  means, stds = zip(*(mean_std(groups[k]) for k in keys))
  fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(keys)), 5))
  colors = ["tab:gray" if m == "source_only" else "tab:blue" for _, m, _ in keys]
  ax.bar(range(len(keys)), means, yerr=stds, color=colors, capsize=4)
  for i, (pair, method, _) in enumerate(keys):
    if (pair, method) in PAPER:
      ax.plot([i - 0.4, i + 0.4], [PAPER[(pair, method)]] * 2, "r--", lw=1.5)
  ax.set_xticks(range(len(keys)), labels, fontsize=7)
  ax.set_ylabel("target accuracy (%)")
  ax.set_ylim(0, 100)
  ax.set_title(f"adda_jax on {title}: mean ± std over seeds (red dashes: published)",
               fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=120)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("csv", nargs="+", help="results files, one section each")
  parser.add_argument("--out-dir", default="results")
  args = parser.parse_args()
  os.makedirs(args.out_dir, exist_ok=True)
  sections = []
  for path in args.csv:
    rows = load(path)
    name = os.path.splitext(os.path.basename(path))[0]
    devices = ", ".join(sorted({r["device"] for r in rows}))
    groups = group(rows)
    plot(groups, os.path.join(args.out_dir, f"{name}.png"), devices)
    text = table(groups)
    sections.append(f"## {path} ({devices})\n\n{text}\n\n![{name}]({name}.png)\n")
    print(f"{path} ({devices})\n{text}\n")
  with open(os.path.join(args.out_dir, "README.md"), "w") as f:
    f.write("# Results\n\nGenerated by `python experiments/summarize.py "
            + " ".join(args.csv) + "` from the rows that `experiments/run.py --results` "
            "appended (each row holds its command, device and commit).\n\n"
            + "\n".join(sections))


if __name__ == "__main__":
  main()
