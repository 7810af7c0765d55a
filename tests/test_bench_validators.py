"""experiments/bench_validators.py: one timing process per BLAS thread count, spinners beside."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_times_each_reading_once_per_thread_count_beside_a_spinner():
  done = subprocess.run(
      [sys.executable, "experiments/bench_validators.py", "--blas-threads", "1", "2",
       "--busy", "1", "--features", "8", "--repeats", "1"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  result = json.loads(done.stdout.strip().splitlines()[-1])
  assert result["busy"] == 1 and result["features"] == 8
  assert sorted(result["seconds"]) == ["1", "2"]
  for readings in result["seconds"].values():
    assert sorted(readings) == ["domain_weights", "scores"]
    assert all(seconds > 0 for seconds in readings.values())
  assert "OPENBLAS_NUM_THREADS=2: scores" in done.stdout
