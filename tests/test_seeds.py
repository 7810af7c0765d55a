"""adda_jax/seeds.py: several seeds in one invocation, vmapped or one after another."""
import csv
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from adda_jax import runner, seeds, train
from adda_jax.config import Config
from adda_jax.configs import get_config
from adda_jax.data.loading import DataSource
from adda_jax.data.pairs import load_pair
from adda_jax.errors import UserError
from adda_jax.methods import stages_for
from tests.test_hosts import close

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(pretrain_steps=6, adapt_steps=4, batch_size=8, log_every=2, checkpoint_every=2,
            source_subset=None, target_subset=None)


def tiny(**changes) -> Config:
  return get_config("mnist_usps").replace(**{**TINY, **changes})


def final_predictions(cfg: Config, workdir: str, data: DataSource) -> list[np.ndarray]:
  """Each stage's final model's predictions on the target eval split, from its checkpoint."""
  placement = runner.Placement.over_all_devices(cfg.batch_size)
  stage_runner = runner.StageRunner(cfg, workdir, placement, "test")
  pair, predict = load_pair(cfg, data), train.compiled_predict(cfg)
  earlier, out = {}, []
  for index, stage in enumerate(stages_for(cfg)):
    state, _ = stage_runner.restore_final(stage, index, earlier)
    earlier[stage.name] = state
    encoder, classifier = stage.predictor(state, stage.frozen(earlier))
    out.append(runner.predictions(predict, encoder, classifier, pair.target_eval[0]))
  return out


def test_parse_seeds():
  assert seeds.parse_seeds("0-3") == [0, 1, 2, 3]
  assert seeds.parse_seeds("0,3,5") == [0, 3, 5]
  assert seeds.parse_seeds("0-2,1,7") == [0, 1, 2, 7]
  for bad in ("x", "3-1", "1-a"):
    with pytest.raises(UserError, match="--seeds"):
      seeds.parse_seeds(bad)


def test_auto_strategy_is_sequential_on_cpu():
  assert jax.default_backend() == "cpu"
  assert seeds.chosen_strategy("auto") == "sequential"
  assert seeds.chosen_strategy("vmap") == "vmap"
  assert seeds.chosen_strategy("vmap_matmul") == "vmap_matmul"
  with pytest.raises(UserError, match="choose one of"):
    seeds.chosen_strategy("parallel")


# ADDA's two stages are the first two of adda+selftrain, checked stage by stage there, with
# the stack's convolutions as batched matmuls (vmap_matmul); dann checks plain vmap's grouped
# convolutions.
@pytest.mark.parametrize("changes,strategy", [
    ({"method": "dann"}, "vmap"), ({"method": "adda", "self_train_steps": 4}, "vmap_matmul")],
    ids=["dann", "adda+selftrain-matmul"])
def test_a_vmapped_seed_matches_its_single_seed_run(raw_dir, tmp_path, changes, strategy):
  data = DataSource("raw", raw_dir)
  cfg = tiny(**changes)
  outcome = seeds.run_seeds(cfg, [0, 1], str(tmp_path / "stack"), data, strategy=strategy,
                            log=lambda _: None)
  assert outcome.failed == {} and sorted(outcome.summaries) == [0, 1]
  alone = train.run(cfg.replace(seed=1), str(tmp_path / "alone"), data, log=lambda _: None)
  stacked = outcome.summaries[1]
  assert stacked["seed"] == 1
  for stage in stages_for(cfg):
    for mine, theirs in zip(stacked[f"{stage.name}_history"], alone[f"{stage.name}_history"]):
      assert mine.keys() == theirs.keys()
      for key in mine:
        close(mine[key], theirs[key], key)
  for mine, theirs in zip(final_predictions(cfg.replace(seed=1), str(tmp_path / "stack/seed1"),
                                            data),
                          final_predictions(cfg.replace(seed=1), str(tmp_path / "alone"), data)):
    assert (mine != theirs).sum() <= 1  # Vmapped convolutions round differently.
  # The two seeds are different runs, not copies.
  assert outcome.summaries[0]["pretrain_history"] != stacked["pretrain_history"]


class FakeCheckpoints:
  directory = "/nowhere"

  def __init__(self):
    self.saved = []

  def latest_step(self):
    return self.saved[-1] if self.saved else None

  def save(self, step, state, config, provenance):
    self.saved.append(step)


def test_a_non_finite_seed_stops_alone_and_keeps_its_last_good_checkpoint():
  members = [runner.Member(label=f"seed {i}", config={}, checkpoints=FakeCheckpoints(),
                           record=runner.StageRecord(0.0, ""), on_log=lambda s, m: None)
             for i in range(3)]

  def run_chunk(state, n):  # Seed 1's loss turns NaN after step 2.
    state = {**state, "step": state["step"] + n, "w": state["w"] + 1}
    return state, {"loss": np.where((state["seed"] == 1) & (state["step"] > 2), np.nan, 1.0)}

  stack = runner.Stack(split=seeds._unstacked, keep=seeds._select)
  state = {"step": np.zeros(3, np.int32), "w": np.zeros(3), "seed": np.arange(3)}
  log = []
  cfg = Config(pair="p", source="mnist", target="usps", log_every=2, checkpoint_every=2)
  finals = runner.run_steps("adapt", state, members, "abc", run_chunk, 6, cfg, log.append,
                            stack)
  assert finals[1] is None and "loss became nan by step 4" in members[1].stopped
  assert "last good checkpoint (step 2)" in members[1].stopped
  assert members[1].checkpoints.saved == [2]
  for i in (0, 2):
    assert members[i].stopped is None and members[i].checkpoints.saved == [2, 4, 6]
    assert int(finals[i]["step"]) == 6 and float(finals[i]["w"]) == 3
  assert any("seed 1: adapt stage: loss became nan" in line for line in log)
  assert any("2 seeds" in line and "step      6/6" in line for line in log)


def test_run_py_seeds_rows_workdirs_evaluate_and_resume(raw_dir, tmp_path):
  root, rows = str(tmp_path / "runs"), str(tmp_path / "rows.csv")
  command = [sys.executable, "experiments/run.py", "--pair", "mnist_usps", "--seeds", "0-1",
             "--seeds-strategy", "vmap", "--data-source", "raw", "--raw-dir", raw_dir,
             "--full-sets", "--batch-size", "8", "--pretrain-steps", "4", "--adapt-steps", "2",
             "--log-every", "2", "--checkpoint-every", "2", "--no-pictures", "--workdir", root,
             "--results", rows]
  first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert first.returncode == 0, first.stderr[-2000:]
  with open(rows) as f:
    written = list(csv.DictReader(f))
  assert sorted((r["seed"], r["method"]) for r in written) == [
      ("0", "adda"), ("0", "source_only"), ("1", "adda"), ("1", "source_only")]
  assert "[pretrain] step      4/4  2 seeds" in first.stdout
  evaluated = subprocess.run(
      [sys.executable, "experiments/evaluate.py", "--workdir", os.path.join(root, "seed1"),
       "--data-source", "raw", "--raw-dir", raw_dir], cwd=ROOT, capture_output=True,
      text=True, timeout=600)
  assert evaluated.returncode == 0, evaluated.stderr[-2000:]
  adda = next(r for r in written if r["seed"] == "1" and r["method"] == "adda")
  assert f"[eval] adda: {100 * float(adda['target_accuracy']):.2f}%" in evaluated.stdout
  again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr[-2000:]
  assert "step      2/4" not in again.stdout  # Nothing retrained.


def test_seeds_refuse_a_single_seed_flag(raw_dir, tmp_path):
  done = subprocess.run(
      [sys.executable, "experiments/run.py", "--pair", "mnist_usps", "--seeds", "0-1",
       "--seed", "3", "--data-source", "raw", "--raw-dir", raw_dir, "--workdir",
       str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert done.returncode == 2
  assert done.stderr.strip() == ("error: --seeds trains several runs: drop --seed and "
                                 "--pretrained-from")


def test_vmapped_seeds_resume_each_from_its_own_step(raw_dir, tmp_path):
  data, root = DataSource("raw", raw_dir), str(tmp_path / "stack")
  cfg = tiny()
  first = seeds.run_seeds(cfg, [0, 1], root, data, strategy="vmap", log=lambda _: None)
  # Seed 0 loses its last adaptation checkpoint and summary, as if killed after step 2.
  import shutil
  shutil.rmtree(os.path.join(root, "seed0", "adapt", "4"))
  os.remove(os.path.join(root, "seed0", "summary.json"))
  lines = []
  again = seeds.run_seeds(cfg, [0, 1], root, data, strategy="vmap", log=lines.append)
  assert again.failed == {}
  assert any("[adapt] seeds 0 from step 2" in line for line in lines)
  assert any("[seed 0] [adapt] resuming from the checkpoint at step 2" in line
             for line in lines)
  assert not any("[pretrain] step" in line for line in lines)  # Both stage 1s were done.
  assert again.summaries[1]["adda_accuracy"] == first.summaries[1]["adda_accuracy"]
  resumed, original = again.summaries[0], first.summaries[0]
  assert [h["step"] for h in resumed["adapt_history"]] == [4]
  for key, value in original["adapt_history"][-1].items():
    close(resumed["adapt_history"][-1][key], value, key)
