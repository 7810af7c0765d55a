"""experiments/curves.py: adaptation curves from runs' summary.json, and a clear refusal."""
import csv
import json
import os
import subprocess
import sys

from adda_jax.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_run(directory, seed, history, **config):
  os.makedirs(directory)
  config = Config(pair="usps_mnist", source="usps", target="mnist", **config).to_json()
  summary = {"pair": "usps_mnist", "seed": seed, "eval_split": "test", "device": "cpu",
             "commit": "abc1234", "adapt_commit": "abc1234", "source_only_accuracy": 0.6,
             "config": config, "adapt_history": history}
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
  assert {r["encoder"] for r in rows} == {"conv ReLU"}


def test_encoders_are_told_apart_and_old_runs_read_as_conv_relu(tmp_path):
  history = [{"step": 500, "target_accuracy": 0.8, "disc_accuracy": 0.7}]
  write_run(tmp_path / "new", 0, history, conv_relu=False)
  write_run(tmp_path / "old", 0, history)
  with open(tmp_path / "old" / "summary.json") as f:
    old = json.load(f)
  del old["config"]["conv_relu"]  # Saved before the field existed: conv ReLUs then.
  with open(tmp_path / "old" / "summary.json", "w") as f:
    json.dump(old, f)
  out_csv = tmp_path / "c.csv"
  result = curves(str(tmp_path / "new"), str(tmp_path / "old"), "--csv", str(out_csv),
                  "--plot", str(tmp_path / "c.png"))
  assert result.returncode == 0, result.stderr[-2000:]
  with open(out_csv) as f:
    encoders = [(r["workdir"][-3:], r["encoder"]) for r in csv.DictReader(f)]
  assert sorted(set(encoders)) == [("new", "Caffe LeNet"), ("old", "conv ReLU")]


def test_a_run_without_a_curve_is_refused(tmp_path):
  write_run(tmp_path / "a", 0, [{"step": 500, "disc_accuracy": 0.7}])
  result = curves(str(tmp_path / "a"), "--csv", str(tmp_path / "c.csv"), "--plot",
                  str(tmp_path / "c.png"))
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      f"error: {tmp_path / 'a' / 'summary.json'} has no adaptation curve; rerun it with this "
      f"version of experiments/run.py (without --no-target-monitor)"]
