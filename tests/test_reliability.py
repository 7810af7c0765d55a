"""Kill-safe resume, determinism, NaN stops, collapse reports and bad-input refusals."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import NamedTuple

import numpy as np
import pytest

from adda_jax import runner, train
from adda_jax.checkpoint import StageCheckpoints
from adda_jax.data.loading import DataSource
from adda_jax.errors import UserError
from adda_jax.results import join_commits
from tests.test_train import ROOT, tiny


def cli_run(raw_dir, workdir, *extra):
  return [sys.executable, "experiments/run.py", "--pair", "mnist_usps", "--workdir", workdir,
          "--no-pictures", "--data-source", "raw", "--raw-dir", raw_dir, "--full-sets",
          "--batch-size", "8",
          "--pretrain-steps", "60", "--adapt-steps", "120", "--log-every", "4",
          "--checkpoint-every", "20", *extra]


def test_sigkill_mid_stage_then_resume_equals_uninterrupted(raw_dir, finished_run, tmp_path):
  killed = str(tmp_path / "killed")
  proc = subprocess.Popen(cli_run(raw_dir, killed), cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
  for line in proc.stdout:
    if line.startswith("[adapt] step     44/"):  # past the checkpoint at 40, before 60
      proc.send_signal(signal.SIGKILL)
      break
  proc.wait(timeout=60)
  assert proc.returncode == -signal.SIGKILL
  assert StageCheckpoints(os.path.join(killed, "adapt"), 2).latest_step() == 40
  assert os.path.exists(os.path.join(killed, train.LOCK_FILE))  # left behind, not blocking

  resumed = subprocess.run(cli_run(raw_dir, killed), cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert "[adapt] resuming from the checkpoint at step 40" in resumed.stdout
  assert "[pretrain] step" not in resumed.stdout  # the finished stage was not redone
  last = lambda out: [l for l in out.splitlines() if l.startswith("[eval] adda")][-1]
  assert last(resumed.stdout) == last(finished_run.stdout)
  from tests.test_methods import checkpoint_arrays
  for a, b in zip(checkpoint_arrays(os.path.join(killed, "adapt", "120")),
                  checkpoint_arrays(os.path.join(finished_run.workdir, "adapt", "120")),
                  strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("second_seed", ["0", "1"])
def test_a_second_run_into_a_busy_workdir_is_refused(raw_dir, tmp_path, second_seed):
  """Started together, same or other config: one trains, the other is refused in one line
  naming the holder, and the winner's config, checkpoints and summary are its own."""
  workdir = str(tmp_path / "run")
  first = subprocess.Popen(cli_run(raw_dir, workdir), cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
  second = subprocess.Popen(cli_run(raw_dir, workdir, "--seed", second_seed), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  outcomes = [(p.wait(timeout=300), p.stderr.read(), p) for p in (first, second)]
  assert sorted(code for code, _, _ in outcomes) == [0, 2], [err for _, err, _ in outcomes]
  (_, refusal, loser), = [o for o in outcomes if o[0] == 2]
  (_, _, winner), = [o for o in outcomes if o[0] == 0]
  assert refusal.count("\n") == 1 and refusal.startswith(f"error: {workdir} is in use by "
                                                          f"another run (pid {winner.pid} ")
  winner_seed = 0 if winner is first else int(second_seed)
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["seed"] == winner_seed
  with open(os.path.join(workdir, "summary.json")) as f:
    assert json.load(f)["seed"] == winner_seed


def test_checkpoints_refuse_a_run_with_other_settings(raw_dir, tmp_path):
  """With config.json gone, a run of another seed must not resume seed 0's checkpoints."""
  data = DataSource("raw", raw_dir)
  workdir = tmp_path / "run"
  train.run(tiny(method="source_only"), str(workdir), data, log=lambda _: None)
  os.remove(workdir / "config.json")
  before = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))
  with pytest.raises(UserError, match=r"checkpoint .*pretrain/6 was trained with other "
                                      r"settings \(seed=0\)"):
    train.run(tiny(method="source_only", seed=5, adapt_lr=1e-3), str(workdir), data,
              log=lambda _: None)
  assert sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")) == before


def test_results_file_is_checked_before_training(raw_dir, tmp_path):
  result = subprocess.run(cli_run(raw_dir, str(tmp_path / "run"), "--results",
                                  "/proc/adda_results.csv"),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
  assert "cannot create the file" in result.stderr
  assert "[pretrain]" not in result.stdout and not (tmp_path / "run").exists()


def test_empty_idx_file_is_one_line_and_leaves_no_workdir(raw_dir, tmp_path):
  from tests import conftest
  broken = tmp_path / "raw"
  conftest.write_mnist(str(broken / "mnist"))
  conftest.write_usps_h5(str(broken / "usps"))
  conftest.write_idx(str(broken / "mnist" / "train-images-idx3-ubyte.gz"),
                     np.zeros((0, 28, 28), np.uint8))
  conftest.write_idx(str(broken / "mnist" / "train-labels-idx1-ubyte.gz"),
                     np.zeros(0, np.uint8))
  result = subprocess.run(cli_run(str(broken), str(tmp_path / "run")), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
  assert "train-images-idx3-ubyte.gz: holds no images" in result.stderr
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("delay", [0.2, 1.0, 4.0])
def test_ctrl_c_at_any_moment_is_one_line(raw_dir, tmp_path, delay):
  proc = subprocess.Popen(cli_run(raw_dir, str(tmp_path / "run")), cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  time.sleep(delay)
  proc.send_signal(signal.SIGINT)
  assert proc.wait(timeout=60) == 130
  assert proc.stderr.read() == ("interrupted: rerun the same command to resume from the last "
                                "checkpoint\n")


class FinishedRun(NamedTuple):
  workdir: str
  stdout: str


@pytest.fixture(scope="module")
def finished_run(raw_dir, tmp_path_factory) -> FinishedRun:
  """`cli_run` trained straight through, once per module (tests that change it copy it)."""
  workdir = str(tmp_path_factory.mktemp("finished") / "run")
  done = subprocess.run(cli_run(raw_dir, workdir), cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  return FinishedRun(workdir, done.stdout)


def evaluate_cli(raw_dir, workdir, *extra):
  return subprocess.run([sys.executable, "experiments/evaluate.py", "--workdir", workdir,
                         "--data-source", "raw", "--raw-dir", raw_dir, *extra], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)


def test_resume_and_evaluate_print_no_library_warnings(raw_dir, finished_run):
  resumed = subprocess.run(cli_run(raw_dir, finished_run.workdir), cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
  evaluated = evaluate_cli(raw_dir, finished_run.workdir)
  assert (resumed.returncode, evaluated.returncode) == (0, 0)
  assert resumed.stderr == "" and evaluated.stderr == ""
  assert not [l for l in resumed.stdout.splitlines() + evaluated.stdout.splitlines()
              if "WARNING" in l]


def test_evaluate_writes_rows_without_a_summary(raw_dir, finished_run, tmp_path):
  """A kill after the last checkpoint leaves no summary.json: the rows come from the
  checkpoints' own records."""
  workdir = str(tmp_path / "copy")
  shutil.copytree(finished_run.workdir, workdir)
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  os.remove(os.path.join(workdir, "summary.json"))
  rows_path = str(tmp_path / "rows.csv")
  result = evaluate_cli(raw_dir, workdir, "--results", rows_path)
  assert result.returncode == 0, result.stderr[-2000:]
  with open(rows_path) as f:
    rows = list(csv.DictReader(f))
  assert [r["method"] for r in rows] == ["source_only", "adda"]
  assert float(rows[1]["target_accuracy"]) == summary["adda_accuracy"]
  assert rows[1]["commit"] == join_commits(summary["pretrain_commit"], summary["adapt_commit"])


def test_evaluate_refuses_a_wrongly_typed_config(raw_dir, finished_run, tmp_path):
  workdir = str(tmp_path / "copy")
  shutil.copytree(finished_run.workdir, workdir)
  path = os.path.join(workdir, "config.json")
  with open(path) as f:
    config = json.load(f)
  config["batch_size"] = "8"
  with open(path, "w") as f:
    json.dump(config, f)
  result = evaluate_cli(raw_dir, workdir)
  assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
  assert "config field batch_size must be of type int, got '8'" in result.stderr


def test_checkpoint_whose_data_cannot_be_read_is_one_line(raw_dir, finished_run, tmp_path):
  workdir = str(tmp_path / "copy")
  shutil.copytree(finished_run.workdir, workdir)
  shutil.rmtree(os.path.join(workdir, "adapt", "120", "state", "ocdbt.process_0"))
  result = evaluate_cli(raw_dir, workdir)
  assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-3000:]
  assert f"checkpoint {workdir}/adapt/120 is corrupt" in result.stderr


def test_batch_larger_than_a_training_set_is_refused_up_front(raw_dir, tmp_path):
  result = subprocess.run(cli_run(raw_dir, str(tmp_path / "run"), "--batch-size", "100000"),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr[-2000:]
  assert "--batch-size 100000 is larger than a training set of this run (96 images)" in \
      result.stderr
  assert not (tmp_path / "run").exists()


def test_out_of_memory_is_one_line(raw_dir, tmp_path, monkeypatch):
  import jax

  def run_failing_with(message):
    def failing(*args, **kwargs):
      raise jax.errors.JaxRuntimeError(message)

    monkeypatch.setattr(runner.steps, "run_calls", failing)
    return train.run(tiny(), str(tmp_path / "run"), DataSource("raw", raw_dir),
                     log=lambda _: None)

  with pytest.raises(UserError, match="pretrain stage ran out of device memory at "
                                      "--batch-size 8; lower --batch-size"):
    run_failing_with("RESOURCE_EXHAUSTED: Out of memory allocating 9e9 bytes")
  with pytest.raises(jax.errors.JaxRuntimeError, match="INTERNAL"):
    run_failing_with("INTERNAL: something else")


def test_same_command_twice_is_identical(raw_dir, tmp_path):
  data = DataSource("raw", raw_dir)
  a = train.run(tiny(), str(tmp_path / "a"), data, log=lambda _: None)
  b = train.run(tiny(), str(tmp_path / "b"), data, log=lambda _: None)
  assert a["source_only_accuracy"] == b["source_only_accuracy"]
  assert a["adda_accuracy"] == b["adda_accuracy"]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(raw_dir, tmp_path):
  workdir = str(tmp_path / "run")
  cfg = tiny(pretrain_lr=1e30, pretrain_steps=40, log_every=1, checkpoint_every=1)
  with pytest.raises(UserError, match=r"pretrain stage: loss became (nan|inf) by step \d+"):
    train.run(cfg, workdir, DataSource("raw", raw_dir), log=lambda _: None)
  ckpt = StageCheckpoints(os.path.join(workdir, "pretrain"), 2)
  assert ckpt.latest_step() is not None and ckpt.latest_step() < 40


def test_collapse_watch_reports_a_pinned_discriminator():
  lines = []
  watch = runner.CollapseWatch(lines.append, window=3)
  for step, acc in enumerate([0.7, 1.0, 1.0, 0.995, 1.0, 0.8, 0.5, 0.5]):
    watch(step, {"disc_accuracy": acc})
  assert [e["kind"] for e in watch.events] == ["won"]
  assert watch.events[0]["step"] == 3 and "discriminator collapse" in lines[0]


def test_batch_not_divisible_by_devices():
  import jax
  with pytest.raises(UserError, match="not divisible by the 3 devices"):
    runner.Placement.over(jax.devices() * 3, 128)


def test_unwritable_workdir(raw_dir, tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a folder")
  with pytest.raises(UserError, match="choose a writable"):
    train.run(tiny(), str(blocker / "run"), DataSource("raw", raw_dir), log=lambda _: None)
  assert blocker.read_text() == "not a folder"


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
  import jax
  ckpt = StageCheckpoints(str(tmp_path / "s"), keep=2)
  state = {"w": jax.numpy.arange(4.0)}
  ckpt.save(1, state, {}, {})

  def disk_full(step, *args, **kwargs):  # What tensorstore raised on a full tmpfs here.
    partial = tmp_path / "s" / f"{step}.orbax-checkpoint-tmp"
    partial.mkdir()
    (partial / "half-written").write_bytes(b"x")
    raise ValueError("RESOURCE_EXHAUSTED: Failed writing: No space left on device")

  monkeypatch.setattr(ckpt._manager, "save", disk_full)
  with pytest.raises(UserError, match=r"\(no space left on device\); free disk space"):
    ckpt.save(2, state, {}, {})
  assert sorted(os.listdir(tmp_path / "s")) == ["1"]
  assert StageCheckpoints(str(tmp_path / "s"), keep=2).latest_step() == 1


@pytest.mark.parametrize("args,message", [
    (["--pretrain-steps", "1.5"], "invalid int value: '1.5'"),
    (["--batch-size", "lots"], "invalid int value: 'lots'"),
])
def test_non_integer_flags_are_one_line(args, message):
  from tests.test_cli import assert_one_line_error, run_cli
  assert_one_line_error(run_cli("--pair", "mnist_usps", *args), message)
