"""Data parallelism: 4 simulated CPU devices compute the same update as one device."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sharded_step_equals_single_device_step():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             PYTHONPATH=ROOT)
  result = subprocess.run([sys.executable, "tests/sharded_check.py"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(result.stdout.strip().splitlines()[-1])
  assert report["devices"] == 4
  assert report["max_abs_value"] > 0
  assert report["max_abs_diff"] < 1e-4, report
