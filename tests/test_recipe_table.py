"""experiments/recipe_table.py: rows -> per-pair mean ± std, oracle labelled, PNG written."""
import csv
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_table(script: str, header: list[str], rows: list[tuple], out, *flags: str) -> str:
  """Writes `rows` under `header` as a results CSV, runs experiments/`script` on it with
  --out `out` and `flags`, and returns the markdown it wrote."""
  path = out.parent / "rows.csv"
  with open(path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)
  result = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", script), str(path),
                           "--out", str(out), *flags], capture_output=True, text=True,
                          cwd=ROOT)
  assert result.returncode == 0, result.stderr
  return (out.parent / (out.name + ".md")).read_text()


def test_table_pools_seeds_keeps_the_latest_row_and_labels_the_oracle(tmp_path):
  rows = [("adda", 0, 0.90), ("adda", 1, 0.94), ("adda", 1, 0.92),  # the rerun's row wins
          ("adda+selftrain", 0, 0.97), ("adda+selftrain", 1, 0.95),
          ("adda+selftrain [oracle-selected: reads target labels]", 0, 0.98),
          ("target_oracle", 0, 0.99)]
  text = run_table("recipe_table.py", ["pair", "method", "seed", "target_accuracy"],
                   [("mnist_usps", m, s, a) for m, s, a in rows], tmp_path / "table")
  assert "| ADDA | 91.00 ± 1.41 (2) | 90.00, 92.00 |" in text
  assert "| ADDA + self-training | 96.00 ± 1.41 (2) |" in text
  assert ("| ADDA + self-training [oracle line: READS TARGET LABELS] | 98.00 ± 0.00 (1)"
          in text)
  assert "MNIST->USPS (bar 98.5" in text
  assert text.index("READS TARGET LABELS: a ceiling) | 99.00") > text.index("oracle line")
  assert (tmp_path / "table.png").read_bytes()[:4] == b"\x89PNG"


def test_by_recipe_gives_each_recipe_its_own_table(tmp_path):
  run = "experiments/run.py --pair mnist_mnistm --seed 0"
  rows = [("adda+selftrain", run + " --recipe adda_selftrain_zoom", 0.75),
          ("adda+selftrain", run + " --recipe adda_selftrain_zoom_inorm", 0.85),
          ("target_oracle", run + " --method target_oracle", 0.96)]
  rows = [("mnist_mnistm", method, 0, accuracy, command) for method, command, accuracy in rows]
  header = ["pair", "method", "seed", "target_accuracy", "command"]
  pooled = run_table("recipe_table.py", header, rows, tmp_path / "pooled")
  assert "| ADDA + self-training | 85.00 ± 0.00 (1) |" in pooled  # the later row replaced it
  text = run_table("recipe_table.py", header, rows, tmp_path / "split", "--by-recipe")
  sections = {part.split(" (bar")[0]: part for part in text.split("### ")[1:]}
  assert set(sections) == {"MNIST->MNIST-M, adda_selftrain_zoom", "MNIST->MNIST-M, no recipe",
                           "MNIST->MNIST-M, adda_selftrain_zoom_inorm"}
  assert "| 75.00 ± 0.00 (1) |" in sections["MNIST->MNIST-M, adda_selftrain_zoom"]
  assert "| 85.00 ± 0.00 (1) |" in sections["MNIST->MNIST-M, adda_selftrain_zoom_inorm"]
  from PIL import Image  # One row of panels per recipe: three rows, one pair.
  pooled_size = Image.open(tmp_path / "pooled.png").size
  split_size = Image.open(tmp_path / "split.png").size
  assert split_size[0] == pooled_size[0] and split_size[1] > 2.5 * pooled_size[1]


def test_a_missing_or_foreign_file_gets_one_line(tmp_path):
  for given, message in ((tmp_path / "none.csv", "cannot read"),
                         (os.path.join(ROOT, "README.md"), "holds no results rows")):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "experiments/recipe_table.py"),
                             str(given), "--out", str(tmp_path / "t")], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
