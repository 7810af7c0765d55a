"""experiments/summarize.py: mean ± std over seeds per protocol, written as a table and a plot."""
import csv
import os
import subprocess
import sys

from adda_jax.results import COLUMNS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def row(method, seed, accuracy, **changes):
  base = dict(pair="usps_mnist", method=method, seed=seed, target_accuracy=accuracy,
              eval_split="test", pretrain_steps=100, adapt_steps=100, batch_size=8,
              source_subset=1800, target_subset=2000, disc_input="features",
              adversarial_loss="gan", adapt_update="alternating", image_size=28, channels=1,
              pixel_scale=1.0, conv_relu=True, pretrain_solver="adam", wall_seconds=1.0,
              device="cpu", commit="abc1234", command="run.py")
  return {**base, **changes}


def test_groups_by_protocol_and_averages_repeats_of_a_seed_first(tmp_path):
  rows = [
      row("adda", 0, 0.80), row("adda", 0, 0.90),  # one seed run twice: counts as 85
      row("adda", 1, 0.95),
      # Source-only models do not depend on stage-2 settings: these two make one group.
      row("source_only", 0, 0.50, adapt_steps=0),
      row("source_only", 1, 0.60, adapt_steps=0, disc_input="logits"),
      # Another input protocol is its own group.
      row("adda", 0, 0.70, image_size=32, pixel_scale=255.0),
      row("adda", 0, 0.75, conv_relu=False),
      row("source_only", 0, 0.65, adapt_steps=0, pretrain_solver="caffe_lenet"),
  ]
  path = tmp_path / "digits.csv"
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
  out = tmp_path / "out"
  result = subprocess.run([sys.executable, "experiments/summarize.py", str(path), "--out-dir",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  table = (out / "README.md").read_text()
  lines = [line for line in table.splitlines() if line.startswith("| usps_mnist")]
  assert len(lines) == 5, table
  assert "| adda | 90.0 ± 7.1 | 0,1 (3) | 90.1 |" in table  # mean(85, 95), std over seeds
  assert "| adda | 70.0 ± 0.0 | 0 | 90.1 |" in table and "32px x1 [0,255]" in table
  assert "| adda | 75.0 ± 0.0 | 0 | 90.1 |" in table and "28px x1, Caffe LeNet" in table
  assert "| source_only | 55.0 ± 7.1 | 0,1 | 57.1 |" in table
  assert "| source_only | 65.0 ± 0.0 | 0 | 57.1 |" in table and "28px x1, Caffe solver" in table
  assert (out / "digits.png").stat().st_size > 0


def test_consecutive_seeds_collapse_to_ranges():
  sys.path.insert(0, os.path.join(ROOT, "experiments"))
  from summarize import seed_ranges
  assert seed_ranges(["0", "1"]) == "0,1"
  assert seed_ranges(["0", "1", "2", "3", "7", "9", "10", "11"]) == "0-3,7,9-11"
