"""experiments/method_table.py: pooling, paired differences, and the files it writes."""
import csv
import os

import pytest
from PIL import Image

from experiments import method_table
from adda_jax.results import COLUMNS

PROTOCOL = dict(image_size="28", channels="1", pixel_scale="1.0", source_subset="2000",
                pretrain_steps="10", eval_split="test", conv_relu="True", pretrain_solver="adam")


def row(method, seed, accuracy, **fields):
  return {"pair": "mnist_usps", "method": method, "seed": str(seed),
          "target_accuracy": str(accuracy), **PROTOCOL, **fields}


def test_repeated_seed_rows_count_once():
  rows = [row("source_only", 0, 0.70), row("source_only", 0, 0.70), row("source_only", 1, 0.80)]
  (key, per_seed), = method_table.pooled(rows).items()
  assert key[0] == "source_only"
  assert per_seed == pytest.approx({0: 70.0, 1: 80.0})


def test_settings_name_the_variant_and_protocols_never_pool():
  rows = [row("adda", 0, 0.9, sharing="tied", adversarial_loss="gan"),
          row("adda", 0, 0.8, sharing="untied", adversarial_loss="minimax"),
          row("adda", 0, 0.7, sharing="untied", adversarial_loss="gan", image_size="32")]
  names = sorted((v, c[1]) for v, c in method_table.pooled(rows))
  assert names == [("adda", "32"), ("adda_minimax", "28"), ("adda_tied", "28")]


def test_differences_are_paired_by_seed():
  # ADDA swings by 20 points across seeds; tied is 1 point above it on each seed.
  rows = [row("adda", 0, 0.60, sharing="untied"), row("adda", 1, 0.80, sharing="untied"),
          row("adda", 2, 0.70, sharing="untied"), row("adda", 0, 0.61, sharing="tied"),
          row("adda", 1, 0.81, sharing="tied"), row("adda", 2, 0.71, sharing="tied"),
          row("dann", 0, 0.50), row("dann", 1, 0.85)]
  text = method_table.differences(method_table.pooled(rows))
  tied = next(line for line in text.splitlines() if line.startswith("| ADDA tied"))
  assert "+1.0 ± 0.0 (3/3 higher)" in tied
  dann = next(line for line in text.splitlines() if "DANN" in line)
  assert "-2.5 ± 10.6 (1/2 lower)" in dann  # Seed 2 has no DANN cell: left out, not zero.


def test_main_writes_table_and_png(tmp_path):
  path = tmp_path / "rows.csv"
  rows = [row("source_only", s, 0.7 + s / 100) for s in range(3)]
  rows += [row("adda", s, 0.85 + s / 100, sharing="untied") for s in range(3)]
  rows += [row("target_oracle", s, 0.95) for s in range(3)]
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  out = tmp_path / "methods"
  method_table.main([str(path), "--out", str(out)])
  text = (tmp_path / "methods.md").read_text()
  assert "| ADDA (untied, GAN loss) | 86.0 ± 1.0 (3) | 89.4 |" in text
  assert "target oracle (reads target labels: upper bound)" in text
  assert "| source only (lower bound) | -15.0 ± 0.0 (3/3 lower) |" in text
  with Image.open(tmp_path / "methods.png") as image:
    assert image.size[0] > 300
  assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]
