"""experiments/validator_table.py on a hand-made history."""
import json
import math
import os
import subprocess
import sys

import numpy as np

from experiments import validator_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def history():
  """Entropy falls as accuracy rises (a good signal); SND rises and falls at random."""
  acc = [0.70, 0.80, 0.85, 0.82]
  return [{"step": 100 * (i + 1), "target_accuracy": a, "val_entropy": 1.0 - a,
           "val_im": a, "val_bnm": 0.5, "val_snd": [3.0, 1.0, 2.0, 4.0][i]}
          for i, a in enumerate(acc)]


def test_spearman():
  a = np.array([1.0, 2.0, 3.0, 4.0])
  assert validator_table.spearman(a, 2 * a) == 1.0
  assert validator_table.spearman(a, -a) == -1.0
  assert math.isnan(validator_table.spearman(a, np.ones(4)))


def test_rows_pick_the_preferred_line_and_measure_the_gap():
  rows = {r["validator"]: r for r in validator_table.rows_for(history(), "run")}
  assert rows["entropy"]["picked_step"] == 300 and rows["entropy"]["spearman"] == 1.0
  assert rows["im"]["picked"] == rows["im"]["oracle"] == 85.0
  assert rows["snd"]["picked_step"] == 400 and abs(rows["snd"]["picked"] - 82.0) < 1e-9
  assert all(abs(r["last"] - 82.0) < 1e-9 for r in rows.values())
  assert math.isnan(rows["bnm"]["spearman"])  # A constant signal ranks nothing.


def test_script_writes_the_table_and_refuses_runs_without_validators(tmp_path):
  run = tmp_path / "seed0"
  run.mkdir()
  (run / "summary.json").write_text(json.dumps({"adapt_history": history()}))
  done = subprocess.run([sys.executable, "experiments/validator_table.py", str(run), "--out",
                         str(tmp_path / "t.md")], cwd=ROOT, capture_output=True, text=True)
  assert done.returncode == 0, done.stderr
  assert "| seed0 | entropy | 300 | 85.00 | 85.00 | +0.00 | 82.00 | +1.00 |" in done.stdout
  assert (tmp_path / "t.md").read_text() == done.stdout
  (run / "summary.json").write_text(json.dumps({"adapt_history": [{"step": 1}]}))
  bad = subprocess.run([sys.executable, "experiments/validator_table.py", str(run)], cwd=ROOT,
                       capture_output=True, text=True)
  assert bad.returncode == 2 and "lack the validators" in bad.stderr


def test_runs_from_different_folders_are_named_by_the_path_that_tells_them_apart(tmp_path):
  runs = [tmp_path / "recipe" / "seed0", tmp_path / "ablation" / "plus_im" / "seed0"]
  for run in runs:
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"adapt_history": history()}))
  labels = {row["run"] for row in validator_table.table([str(r) for r in runs], "adapt")}
  assert labels == {os.path.join("recipe", "seed0"),
                    os.path.join("ablation", "plus_im", "seed0")}
