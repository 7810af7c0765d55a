"""Locks and atomic writes shared by concurrent runs."""
import json
import os
import subprocess
import sys

import pytest

from adda_jax import storage
from adda_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_held_lock_refuses_a_second_taker_and_names_the_holder(tmp_path):
  path = str(tmp_path / ".lock")
  holder = subprocess.Popen(
      [sys.executable, "-c", "import sys, time; from adda_jax import storage\n"
       "with storage.exclusive_lock(sys.argv[1], str):\n"
       "  print('held', flush=True); time.sleep(60)", path],
      cwd=ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match=rf"folder in use by pid {holder.pid} on "):
      with storage.exclusive_lock(path, lambda who: f"folder in use by {who}"):
        pass
  finally:
    holder.kill()
    holder.wait()
  # The kernel dropped the killed holder's lock: the next taker gets it.
  with storage.exclusive_lock(path, lambda who: f"folder in use by {who}"):
    assert f"pid {os.getpid()} " in open(path).read()


def test_atomic_json_replaces_whole_or_leaves_the_old_file(tmp_path, monkeypatch):
  path = str(tmp_path / "summary.json")
  storage.write_json_atomic(path, {"a": 1}, "the summary")
  assert json.load(open(path)) == {"a": 1}

  def disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(json, "dump", disk_full)
  with pytest.raises(UserError, match="could not write the summary .*No space left on device"):
    storage.write_json_atomic(path, {"a": 2}, "the summary")
  assert json.load(open(path)) == {"a": 1}
  assert os.listdir(tmp_path) == ["summary.json"]  # no temporary file left behind
