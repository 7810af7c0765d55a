"""experiments/curves.py: adaptation curves from runs' summary.json, and a clear refusal."""
import csv
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_run(directory, seed, history):
  os.makedirs(directory)
  summary = {"pair": "usps_mnist", "seed": seed, "eval_split": "test", "device": "cpu",
             "commit": "abc1234", "adapt_commit": "abc1234", "source_only_accuracy": 0.6,
             "config": {"adapt_update": "alternating"}, "adapt_history": history}
  with open(os.path.join(directory, "summary.json"), "w") as f:
    json.dump(summary, f)


def curves(*args):
  return subprocess.run([sys.executable, "experiments/curves.py", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)


def test_points_start_at_source_only_and_follow_the_history(tmp_path):
  history = [{"step": s, "target_accuracy": a, "disc_accuracy": 0.7, "disc_loss": 1.0}
             for s, a in ((500, 0.8), (1000, 0.85))]
  write_run(tmp_path / "a", 0, history)
  write_run(tmp_path / "b", 1, history[:1])
  out_csv, out_png = tmp_path / "c.csv", tmp_path / "c.png"
  result = curves(str(tmp_path / "a"), str(tmp_path / "b"), "--csv", str(out_csv),
                  "--plot", str(out_png))
  assert result.returncode == 0, result.stderr[-2000:]
  with open(out_csv) as f:
    rows = list(csv.DictReader(f))
  assert [(r["seed"], r["step"], r["target_accuracy"]) for r in rows] == [
      ("0", "0", "0.6"), ("0", "500", "0.8"), ("0", "1000", "0.85"), ("1", "0", "0.6"),
      ("1", "500", "0.8")]
  assert out_png.stat().st_size > 0
  assert "highest 85.00% at step 1000" in result.stdout


def test_a_run_without_a_curve_is_refused(tmp_path):
  write_run(tmp_path / "a", 0, [{"step": 500, "disc_accuracy": 0.7}])
  result = curves(str(tmp_path / "a"), "--csv", str(tmp_path / "c.csv"), "--plot",
                  str(tmp_path / "c.png"))
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      f"error: {tmp_path / 'a' / 'summary.json'} has no adaptation curve; rerun it with this "
      f"version of experiments/run.py (without --no-target-monitor)"]
