"""Kill-safe resume, determinism, NaN stops, collapse reports and bad-input refusals."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from adda_jax import train
from adda_jax.checkpoint import StageCheckpoints
from adda_jax.data.loading import DataSource
from adda_jax.errors import UserError
from tests.test_train import ROOT, tiny


def cli_run(raw_dir, workdir, *extra):
  return [sys.executable, "experiments/run.py", "--pair", "mnist_usps", "--workdir", workdir,
          "--data-source", "raw", "--raw-dir", raw_dir, "--full-sets", "--batch-size", "8",
          "--pretrain-steps", "60", "--adapt-steps", "120", "--log-every", "4",
          "--checkpoint-every", "20", *extra]


def final_params(workdir):
  return [np.load(os.path.join(root, f)) for root, _, files in
          sorted(os.walk(os.path.join(workdir, "adapt"))) for f in sorted(files)
          if f.endswith(".npy")]


def test_sigkill_mid_stage_then_resume_equals_uninterrupted(raw_dir, tmp_path):
  straight = str(tmp_path / "straight")
  done = subprocess.run(cli_run(raw_dir, straight), cwd=ROOT, capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]

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

  resumed = subprocess.run(cli_run(raw_dir, killed), cwd=ROOT, capture_output=True, text=True,
                           timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert "[adapt] resuming from the checkpoint at step 40" in resumed.stdout
  assert "[pretrain] step" not in resumed.stdout  # the finished stage was not redone
  last = lambda out: [l for l in out.splitlines() if l.startswith("[eval] ADDA")][-1]
  assert last(resumed.stdout) == last(done.stdout)
  for a, b in zip(final_params(killed), final_params(straight), strict=True):
    np.testing.assert_array_equal(a, b)


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
  watch = train.CollapseWatch(lines.append, window=3)
  for step, acc in enumerate([0.7, 1.0, 1.0, 0.995, 1.0, 0.8, 0.5, 0.5]):
    watch(step, {"disc_accuracy": acc})
  assert [e["kind"] for e in watch.events] == ["won"]
  assert watch.events[0]["step"] == 3 and "discriminator collapse" in lines[0]


def test_batch_not_divisible_by_devices():
  import jax
  with pytest.raises(UserError, match="not divisible by the 3 devices"):
    train.Placement.over(jax.devices() * 3, 128)


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
  with pytest.raises(UserError, match="RESOURCE_EXHAUSTED.*free disk space"):
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
