"""experiments/sweep.py on generated data: shared stage 1, rows, table, and resuming."""
import csv
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--no-pictures", "--data-source", "raw", "--full-sets", "--batch-size", "8",
        "--pretrain-steps", "4", "--adapt-steps", "4", "--log-every", "2",
        "--checkpoint-every", "2"]


def sweep(raw_dir, tmp_path, *extra):
  return subprocess.run(
      [sys.executable, "experiments/sweep.py", "--pairs", "mnist_usps", "--seeds", "0",
       "--variants", "dann", "target_oracle", "--jobs", "2", "--root", str(tmp_path / "runs"),
       "--results", str(tmp_path / "rows.csv"), "--raw-dir", raw_dir, *extra,
       "--extra", *TINY],
      cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_sweep_trains_stage_one_once_writes_rows_and_resumes(raw_dir, tmp_path):
  first = sweep(raw_dir, tmp_path, "--table", str(tmp_path / "methods"))
  assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
  with open(tmp_path / "rows.csv") as f:
    rows = list(csv.DictReader(f))
  # source_only's row, dann's two rows (its source-only model, then dann), the oracle's.
  assert sorted(r["method"] for r in rows) == ["dann", "source_only", "source_only",
                                                "target_oracle"]
  dann_log = (tmp_path / "runs" / "mnist_usps" / "seed0" / "dann.log").read_text()
  assert "[pretrain] reusing the finished stage 1" in dann_log
  assert "[pretrain] step" not in dann_log
  table = (tmp_path / "methods.md").read_text()
  assert "gradient reversal (DANN)" in table and "77.1" in table
  assert "target oracle (reads target labels: upper bound)" in table
  assert os.path.getsize(tmp_path / "methods.png") > 0

  again = sweep(raw_dir, tmp_path, "--table", str(tmp_path / "methods"))
  assert again.returncode == 0
  assert "3 of 3 cells already finished" in again.stdout
  with open(tmp_path / "rows.csv") as f:
    assert len(list(csv.DictReader(f))) == len(rows)


def test_sweep_of_independent_variants_trains_no_stage_one(tmp_path):
  listed = subprocess.run(
      [sys.executable, "experiments/sweep.py", "--variants", "cogan", "--seeds", "0",
       "--root", str(tmp_path), "--dry-run"], cwd=ROOT, capture_output=True, text=True)
  assert listed.returncode == 0, listed.stderr
  commands = listed.stdout.splitlines()
  assert len(commands) == 2 and all("--method cogan" in c for c in commands)


def test_runs_share_the_cores_out_for_openmp_unless_the_user_set_it(monkeypatch):
  from experiments import sweep
  monkeypatch.setattr(os, "cpu_count", lambda: 4)
  assert sweep.child_environment(2, {"PATH": "/bin"}) == {"OMP_NUM_THREADS": "2", "PATH": "/bin"}
  assert sweep.child_environment(8, {})["OMP_NUM_THREADS"] == "1"
  assert sweep.child_environment(1, {"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"
