"""adda_jax/hosts.py: `run.py --distributed` with two local CPU processes (gloo collectives)
trains one data-parallel mesh across both and matches a single process's run."""
import json
import os
import socket
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--pair", "mnist_usps", "--data-source", "raw", "--full-sets", "--batch-size", "8",
        "--pretrain-steps", "4", "--adapt-steps", "4", "--log-every", "2",
        "--checkpoint-every", "2", "--no-pictures"]


ONE_TEST_IMAGE = 1 / 48 + 1e-9  # The generated target test split has 48 images.
ONE_BATCH_IMAGE = 1 / 8 + 1e-9


def close(got: float, want: float, name: str) -> None:
  """Losses to float rounding; accuracies, which count examples, to one example (other
  CPUs round differently, and a logit on a tie can flip)."""
  if name.endswith("accuracy"):
    one = ONE_TEST_IMAGE if name.startswith(("target", "val")) else ONE_BATCH_IMAGE
    np.testing.assert_allclose(got, want, atol=one, err_msg=name)
  else:
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def summary(workdir) -> dict:
  with open(os.path.join(workdir, "summary.json")) as f:
    return json.load(f)


def test_two_processes_train_one_mesh_and_match_one_process(raw_dir, tmp_path):
  shared = str(tmp_path / "two")
  address = f"localhost:{free_port()}"
  env = {**os.environ, "XLA_FLAGS": ""}  # One CPU device per process: a 2-device mesh.
  processes = [subprocess.Popen(
      [sys.executable, "experiments/run.py", *TINY, "--raw-dir", raw_dir, "--workdir", shared,
       "--results", str(tmp_path / "rows.csv"), "--distributed", "--coordinator", address,
       "--num-processes", "2", "--process-id", str(i)],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(2)]
  outputs = [p.communicate(timeout=600)[0] for p in processes]
  for p, out in zip(processes, outputs):
    assert p.returncode == 0, out[-3000:]
  assert "CpuDevice(id=0), CpuDevice(id=" in outputs[0]  # Both processes' devices.
  assert "[pretrain] step" not in outputs[1]  # Process 1 trains silently, writes nothing.
  with open(tmp_path / "rows.csv") as f:
    assert len(f.readlines()) == 3  # Header + two rows, from process 0 only.

  alone = str(tmp_path / "one")
  single = subprocess.run([sys.executable, "experiments/run.py", *TINY, "--raw-dir", raw_dir,
                           "--workdir", alone], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
  assert single.returncode == 0, single.stderr[-2000:]
  two, one = summary(shared), summary(alone)
  for stage in ("pretrain", "adapt"):
    assert len(two[f"{stage}_history"]) == len(one[f"{stage}_history"]) == 2
    for mine, theirs in zip(two[f"{stage}_history"], one[f"{stage}_history"]):
      for key in theirs:
        close(mine[key], theirs[key], key)
  assert abs(two["adda_accuracy"] - one["adda_accuracy"]) <= ONE_TEST_IMAGE

  # The checkpoints the two processes wrote together restore in one process.
  evaluated = subprocess.run(
      [sys.executable, "experiments/evaluate.py", "--workdir", shared, "--data-source", "raw",
       "--raw-dir", raw_dir], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert evaluated.returncode == 0, evaluated.stderr[-2000:]
  assert f"[eval] adda: {100 * two['adda_accuracy']:.2f}%" in evaluated.stdout


def test_distributed_flags_are_checked_in_one_line(raw_dir, tmp_path):
  done = subprocess.run(
      [sys.executable, "experiments/run.py", *TINY, "--raw-dir", raw_dir, "--workdir",
       str(tmp_path), "--distributed", "--num-processes", "2"], cwd=ROOT,
      capture_output=True, text=True, timeout=300)
  assert done.returncode == 2
  assert done.stderr.startswith("error: --distributed outside a cluster needs") and \
      len(done.stderr.strip().splitlines()) == 1


def test_process_counts_are_checked_before_joining():
  import pytest
  from adda_jax import hosts
  from adda_jax.errors import UserError
  with pytest.raises(UserError, match="--num-processes must be at least 1"):
    hosts.initialize("localhost:1", 0, 0)
  with pytest.raises(UserError, match=r"--process-id 2 must lie in 0\.\.1"):
    hosts.initialize("localhost:1", 2, 2)
