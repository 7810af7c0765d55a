"""End to end on generated data through the same code path as a real run."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from adda_jax import runner, train
from adda_jax.configs import get_config
from adda_jax.data.loading import DataSource
from adda_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(pretrain_steps=6, adapt_steps=4, batch_size=8, log_every=2, checkpoint_every=2,
            source_subset=None, target_subset=None)


def tiny(pair="mnist_usps", **changes):
  return get_config(pair).replace(**{**TINY, **changes})


def test_run_evaluate_and_resume(raw_dir, tmp_path):
  data = DataSource("tfds", raw_dir, str(tmp_path / "tfds"))
  workdir = str(tmp_path / "run")
  lines = []
  summary = train.run(tiny(), workdir, data, log=lines.append)
  assert 0.0 <= summary["source_only_accuracy"] <= 1.0
  assert 0.0 <= summary["adda_accuracy"] <= 1.0
  assert sum("[pretrain] step" in l for l in lines) == 3
  # Each progress line's metrics, target accuracy included, are kept in the summary.
  assert [h["step"] for h in summary["pretrain_history"]] == [2, 4, 6]
  assert [h["step"] for h in summary["adapt_history"]] == [2, 4]
  assert all(0.0 <= h["target_accuracy"] <= 1.0 and "disc_accuracy" in h
             for h in summary["adapt_history"])
  assert summary["adapt_history"][-1]["target_accuracy"] == summary["adda_accuracy"]
  assert summary["pretrain_history"][-1]["target_accuracy"] == summary["source_only_accuracy"]
  assert sorted(os.listdir(os.path.join(workdir, "pretrain"))) == ["4", "6"]
  assert sorted(os.listdir(os.path.join(workdir, "adapt"))) == ["2", "4"]

  evaluated = train.evaluate_workdir(workdir, data, log=lambda _: None)
  assert evaluated["source_only_accuracy"] == summary["source_only_accuracy"]
  assert evaluated["adda_accuracy"] == summary["adda_accuracy"]
  on_train = train.evaluate_workdir(workdir, data, "train", log=lambda _: None)
  assert 0.0 <= on_train["adda_accuracy"] <= 1.0

  again = []
  rerun = train.run(tiny(), workdir, data, log=again.append)
  assert not any("step" in l and ("[pretrain]" in l or "[adapt]" in l) for l in again
                 if "resuming" not in l)
  assert rerun["adda_accuracy"] == summary["adda_accuracy"]
  # Reused stages keep the training time and commit their checkpoints recorded.
  for key in ("pretrain_seconds", "pretrain_commit", "adapt_seconds", "adapt_commit"):
    assert rerun[key] == summary[key], key
  assert summary["pretrain_seconds"] > 0 and summary["adapt_seconds"] > 0


def test_stage_record_accumulates_time_and_commits():
  fresh = runner.StageRecord(0.0, "")
  assert fresh.continued(2.0, "abc") == runner.StageRecord(2.0, "abc")
  assert fresh.continued(2.0, "abc").continued(1.0, "abc") == runner.StageRecord(3.0, "abc")
  assert fresh.continued(2.0, "abc").continued(1.0, "def") == runner.StageRecord(3.0, "abc+def")
  older = runner.StageRecord.from_checkpoint(None)  # Saved before records existed.
  assert older.continued(1.0, "abc") == runner.StageRecord(None, "unknown+abc")


@pytest.mark.parametrize("count,size", [(1, 1), (48, 48), (1000, 1000), (1001, 501),
                                        (2007, 669), (10000, 1000), (10001, 910)])
def test_evaluation_batches_are_equal_and_at_most_the_cap(count, size):
  assert runner.eval_batch_size(count) == size
  batches = -(-count // size)
  assert size <= runner.EVAL_BATCH and batches * size - count < batches


def test_predictions_keep_order_through_padded_batches():
  shapes = []

  def predict(encoder, classifier, images):  # The "class" of an image is its first pixel.
    shapes.append(images.shape)
    return images[:, 0, 0, 0].astype(np.int32)

  images = np.arange(2007, dtype=np.float32).reshape(2007, 1, 1, 1)
  np.testing.assert_array_equal(runner.predictions(predict, None, None, images), np.arange(2007))
  assert shapes == [(669, 1, 1, 1)] * 3
  shapes.clear()
  np.testing.assert_array_equal(runner.predictions(predict, None, None, images[:1001]),
                                np.arange(1001))
  assert shapes == [(501, 1, 1, 1)] * 2  # The second batch padded by one image.


def test_target_monitor_off_changes_nothing_but_the_log(raw_dir, tmp_path):
  data = DataSource("raw", raw_dir)
  quiet, watched = [], []
  off = train.run(tiny(monitor_target=False), str(tmp_path / "off"), data, log=quiet.append)
  on = train.run(tiny(), str(tmp_path / "on"), data, log=watched.append)
  assert not any("target_accuracy" in l for l in quiet)
  assert sum("target_accuracy" in l for l in watched) == 5
  assert off["adda_accuracy"] == on["adda_accuracy"]
  assert [h["disc_loss"] for h in off["adapt_history"]] == [
      h["disc_loss"] for h in on["adapt_history"]]


def test_stage_two_sweep_reuses_pretraining(raw_dir, tmp_path):
  data = DataSource("raw", raw_dir)
  first = train.run(tiny(method="source_only"), str(tmp_path / "a"), data, log=lambda _: None)
  lines = []
  variant = tiny(adapt_update="simultaneous", disc_input="logits")
  second = train.run(variant, str(tmp_path / "b"), data, pretrained_from=str(tmp_path / "a"),
                     log=lines.append)
  assert not any("[pretrain] step" in l for l in lines)
  assert second["source_only_accuracy"] == first["source_only_accuracy"]
  assert (second["pretrain_seconds"], second["pretrain_commit"]) == (
      first["pretrain_seconds"], first["pretrain_commit"])
  assert "adda_accuracy" in second
  with pytest.raises(UserError, match=r"other settings \(seed\)"):
    train.run(variant.replace(seed=1), str(tmp_path / "c"), data,
              pretrained_from=str(tmp_path / "a"), log=lambda _: None)
  assert not os.path.exists(tmp_path / "c")


def test_workdir_with_other_config_is_refused(raw_dir, tmp_path):
  data = DataSource("raw", raw_dir)
  workdir = str(tmp_path / "run")
  train.run(tiny(method="source_only"), workdir, data, log=lambda _: None)
  before = sorted(os.listdir(os.path.join(workdir, "pretrain")))
  with open(os.path.join(workdir, "config.json")) as f:
    config_before = f.read()
  with pytest.raises(UserError, match="different config .*seed"):
    train.run(tiny(method="source_only", seed=1), workdir, data, log=lambda _: None)
  assert sorted(os.listdir(os.path.join(workdir, "pretrain"))) == before
  with open(os.path.join(workdir, "config.json")) as f:
    assert f.read() == config_before
  train.run(tiny(method="source_only", seed=1), workdir, data, fresh=True, log=lambda _: None)
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["seed"] == 1


RECIPE_ROWS = ["source_only", "adda", "adda+selftrain", "adda+selftrain [selected: snd]",
               "adda+selftrain [oracle-selected: reads target labels]"]


@pytest.mark.parametrize("pair,options,on_train", [
    ("svhn_mnist", [], True), ("mnist_mnistm", ["--rgb32", "--encoder", "dtn"], False)])
def test_recipe_command_then_evaluate_on_the_pairs_without_offline_data(raw_dir, tmp_path, pair,
                                                                        options, on_train):
  """The recipe's command on SVHN (generated .mat files) and on MNIST-M with the DTN encoder,
  through TFDS: every stage trains, the rows carry last-step, selected and oracle models, and
  evaluate.py restores the run (and, once, on the training split: that path does not depend
  on the pair)."""
  workdir, results = str(tmp_path / "run"), str(tmp_path / "results.csv")
  common = ["--raw-dir", raw_dir, "--data-dir", str(tmp_path / "tfds")]
  run = subprocess.run(
      [sys.executable, "experiments/run.py", "--pair", pair, "--recipe", "adda_selftrain",
       "--workdir", workdir, "--pretrain-steps", "4", "--adapt-steps", "4",
       "--self-train-steps", "4", "--batch-size", "8", "--log-every", "2",
       "--checkpoint-every", "2", "--source-val-size", "8", "--no-pictures",
       "--results", results, *options, *common],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr[-2000:]
  assert "[adapt] step      4/4" in run.stdout and "[selftrain] step      4/4" in run.stdout
  with open(results) as f:
    rows = list(csv.DictReader(f))
  assert [row["method"] for row in rows] == RECIPE_ROWS
  evaluate = subprocess.run([sys.executable, "experiments/evaluate.py", "--workdir", workdir,
                             "--results", results, *common], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
  assert evaluate.returncode == 0, evaluate.stderr[-2000:]
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  restored = json.loads(evaluate.stdout.splitlines()[-2])
  for key in ("adda_accuracy", "adda+selftrain_accuracy"):
    assert restored[key] == summary[key], key
  last_steps = ["source_only", "adda", "adda+selftrain"]  # What evaluate.py re-measures.
  expected = [(method, "test") for method in RECIPE_ROWS + last_steps]
  if on_train:
    train_split = subprocess.run([sys.executable, "experiments/evaluate.py", "--workdir",
                                  workdir, "--eval-split", "train", "--results", results,
                                  *common], cwd=ROOT, capture_output=True, text=True,
                                 timeout=300)
    assert train_split.returncode == 0, train_split.stderr[-2000:]
    expected += [(method, "train") for method in last_steps]
  with open(results) as f:
    assert [(row["method"], row["eval_split"]) for row in csv.DictReader(f)] == expected
