"""experiments/benchmark.py: the step timings and the whole-run figures beside them."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_reports_steps_and_a_whole_run_split_by_stage(raw_dir):
  done = subprocess.run(
      [sys.executable, "experiments/benchmark.py", "--no-torch", "--batch", "16", "--blocks",
       "1", "--block-steps", "2", "--end-to-end", raw_dir, "--end-to-end-steps", "4"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  result = json.loads(done.stdout.strip().splitlines()[-1])
  for name in ("pretrain_ms", "adapt_ms", "eval_ms", "end_to_end_pretrain_ms",
               "end_to_end_adapt_ms"):
    assert result[name] > 0, name
  stages = result["end_to_end_pretrain_s"] + result["end_to_end_adapt_s"]
  assert abs(result["end_to_end_other_s"] - (result["end_to_end_s"] - stages)) < 0.01
  assert result["end_to_end_other_s"] > 0
  # The JSON rounds seconds to 3 decimals: 0.5 ms over 4 steps, plus the ms value's own.
  assert abs(result["end_to_end_pretrain_ms"] - 1e3 * result["end_to_end_pretrain_s"] / 4) \
      <= 0.5 / 4 + 0.001
  assert "micro-benchmark" in done.stdout


def test_benchmark_times_the_dtn_encoder_without_the_lenet_reference():
  done = subprocess.run(
      [sys.executable, "experiments/benchmark.py", "--encoder", "dtn", "--size", "32",
       "--channels", "3", "--batch", "4", "--blocks", "1", "--block-steps", "1"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  result = json.loads(done.stdout.strip().splitlines()[-1])
  assert result["encoder"] == "dtn" and result["size"] == 32
  assert result["pretrain_ms"] > 0 and result["adapt_ms"] > 0
  assert not any(name.startswith("torch") for name in result)  # The reference is LeNet's.
