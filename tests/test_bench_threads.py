"""experiments/bench_threads.py: one timing process per thread count, spinners beside."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_times_each_piece_in_a_process_with_the_thread_count_beside_a_spinner():
  done = subprocess.run(
      [sys.executable, "experiments/bench_threads.py", "--threads", "1", "--busy", "1",
       "--features", "8", "--tsne-points", "40", "--repeats", "1"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  result = json.loads(done.stdout.strip().splitlines()[-1])
  assert (result["busy"], result["features"], result["tsne_points"]) == (1, 8, 40)
  assert list(result["seconds"]) == ["1"]  # Two threads beside a spinner: a minute, not seconds.
  for pieces in result["seconds"].values():
    assert sorted(pieces) == ["domain_weights", "scores", "tsne"]
    assert all(seconds > 0 for seconds in pieces.values())
  assert "1 thread(s): scores" in done.stdout
