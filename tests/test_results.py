"""The results CSV: rows per run, one header, and a clear refusal of a file of other columns."""
import csv
import json
import os
import subprocess
import sys

import pytest

from adda_jax import results
from adda_jax.config import Config
from adda_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def summary(method="adda"):
  cfg = Config(pair="mnist_usps", source="mnist", target="usps", method=method)
  out = {"config": cfg.to_json(), "commit": "abc1234", "device": "cpu",
         "source_only_accuracy": 0.7, "pretrain_seconds": 10.0}
  if method == "adda":
    out.update(adda_accuracy=0.9, adapt_seconds=5.0)
  return out


def test_rows_carry_every_column_and_source_only_has_no_adapt_steps(tmp_path):
  path = str(tmp_path / "r.csv")
  results.append_run(path, summary(), "run.py --pair mnist_usps")
  results.append_run(path, summary("source_only"), "run.py --method source_only")
  with open(path) as f:
    rows = list(csv.DictReader(f))
  assert tuple(rows[0]) == results.COLUMNS
  assert [r["method"] for r in rows] == ["source_only", "adda", "source_only"]
  assert rows[0]["adapt_steps"] == "0" and rows[1]["adapt_steps"] == "10000"
  assert rows[1]["wall_seconds"] == "15.0" and rows[1]["device"] == "cpu"
  assert rows[1]["adapt_update"] == "alternating" and rows[1]["pixel_scale"] == "1.0"


def test_summaries_from_before_a_config_field_get_what_those_runs_used():
  """Their default for a new field: what those runs used."""
  old = summary()
  del old["config"]["pixel_scale"], old["config"]["conv_relu"], old["config"]["pretrain_solver"]
  rows = results.rows_for(old, "run.py")
  assert [(r["pixel_scale"], r["conv_relu"], r["pretrain_solver"]) for r in rows] == [
      (1.0, True, "adam")] * 2


def test_rows_name_the_commits_and_time_of_reused_stages():
  reused = dict(summary(), commit="ccc3333", pretrain_commit="aaa1111", adapt_commit="ccc3333")
  source_only, adda = results.rows_for(reused, "run.py")
  assert source_only["commit"] == "aaa1111" and adda["commit"] == "aaa1111+ccc3333"
  unknown = dict(reused, pretrain_seconds=None, pretrain_commit="unknown")
  source_only, adda = results.rows_for(unknown, "run.py")
  assert source_only["wall_seconds"] == "" and adda["wall_seconds"] == ""
  assert adda["commit"] == "unknown+ccc3333"


def test_a_file_with_other_columns_is_refused_and_left_alone(tmp_path):
  path = tmp_path / "old.csv"
  path.write_text("pair,method,seed,target_accuracy\nmnist_usps,adda,0,0.9\n")
  with pytest.raises(UserError, match="not a results CSV of this version"):
    results.check_file(str(path))
  with pytest.raises(UserError, match="not a results CSV of this version"):
    results.append_run(str(path), summary(), "run.py")
  assert path.read_text() == "pair,method,seed,target_accuracy\nmnist_usps,adda,0,0.9\n"


def test_an_empty_file_gets_a_header(tmp_path):
  path = tmp_path / "empty.csv"
  path.write_text("")
  results.append_run(str(path), summary("source_only"), "run.py")
  assert path.read_text().splitlines()[0] == ",".join(results.COLUMNS)


def test_commit_is_marked_dirty_only_when_code_differs(tmp_path, monkeypatch):
  import subprocess
  monkeypatch.delenv("ADDA_COMMIT", raising=False)
  git = lambda *args: subprocess.run(["git", *args], cwd=tmp_path, check=True,
                                     capture_output=True, text=True).stdout.strip()
  (tmp_path / "adda_jax").mkdir()
  (tmp_path / "adda_jax" / "steps.py").write_text("STEPS = 1\n")
  (tmp_path / "README.md").write_text("notes\n")
  git("init", "-q")
  git("add", ".")
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
  head = git("rev-parse", "--short", "HEAD")
  assert results.git_commit(str(tmp_path)) == head
  (tmp_path / "README.md").write_text("edited notes\n")
  assert results.git_commit(str(tmp_path)) == head
  (tmp_path / "adda_jax" / "steps.py").write_text("STEPS = 2\n")
  assert results.git_commit(str(tmp_path)) == head + "-dirty"


@pytest.mark.parametrize("make,message", [
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: p.write_bytes(bytes(range(256)) * 4), "not a results CSV"),
    (lambda p: None, None),  # a new file in a writable folder: accepted, and not created
])
def test_results_path_is_checked_before_training(tmp_path, make, message):
  path = tmp_path / "r.csv"
  make(path)
  before = sorted(os.listdir(tmp_path))
  if message is None:
    results.check_file(str(path))
  else:
    with pytest.raises(UserError, match=message):
      results.check_file(str(path))
  assert sorted(os.listdir(tmp_path)) == before


def test_check_leaves_no_file_behind_and_accepts_one_another_run_created(tmp_path):
  """The writability probe uses its own name, never the results path: two runs starting
  together used to trip over each other's probe (one saw the file exist and was refused)."""
  path = tmp_path / "new.csv"
  results.check_file(str(path))
  path.write_text(",".join(results.COLUMNS) + "\n")  # the other run's first append
  results.check_file(str(path))
  assert sorted(os.listdir(tmp_path)) == ["new.csv"]


def test_a_folder_that_refuses_new_files_is_reported(tmp_path):
  with pytest.raises(UserError, match="cannot create the file"):
    results.check_file("/proc/adda_results.csv")


def test_concurrent_appends_keep_one_header_and_every_row(tmp_path):
  path = str(tmp_path / "new.csv")
  go = tmp_path / "go"
  script = ("import json, os, sys, time\n"
            "from adda_jax import results\n"
            "summary = json.loads(sys.argv[2])\n"
            "while not os.path.exists(sys.argv[3]): time.sleep(0.001)\n"
            "for i in range(15): results.append_run(sys.argv[1], summary, f'writer {i}')\n")
  writers = [subprocess.Popen([sys.executable, "-c", script, path, json.dumps(summary()),
                               str(go)], cwd=ROOT) for _ in range(3)]
  go.write_text("")
  assert [w.wait(timeout=120) for w in writers] == [0, 0, 0]
  with open(path) as f:
    lines = f.read().splitlines()
  assert lines[0] == ",".join(results.COLUMNS)
  assert lines.count(lines[0]) == 1
  rows = list(csv.DictReader(lines))
  assert len(rows) == 3 * 15 * 2
  assert all(tuple(row) == results.COLUMNS and None not in row.values() for row in rows)
