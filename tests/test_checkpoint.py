"""Orbax save/restore round trip, pruning, and a clear error for a damaged checkpoint."""
import os

import chex
import jax
import pytest

from adda_jax import steps
from adda_jax.validators import ranked
from adda_jax.checkpoint import StageCheckpoints, abstract_like, abstract_of
from adda_jax.errors import UserError
from adda_jax.models import make_networks

NETS = make_networks(28, 1, "features", (16,))


def state(seed):
  return steps.init_pretrain(NETS, steps.pretrain_optimizer(1e-3, 0.9, 0.0), jax.random.key(seed))


def test_round_trip_equal(tmp_path):
  ckpt = StageCheckpoints(str(tmp_path / "pretrain"), keep=2)
  saved = state(0)
  ckpt.save(5, saved, {"seed": 0}, {"train_seconds": 1.5, "commit": "abc1234"})
  restored, config, provenance = ckpt.restore(ckpt.latest_step(), abstract_like(state(1)))
  chex.assert_trees_all_close(restored, saved)
  assert config == {"seed": 0}
  assert provenance == {"train_seconds": 1.5, "commit": "abc1234"}


def test_traced_layout_is_the_computed_one_and_restores(tmp_path):
  assert abstract_of(lambda: state(1)) == abstract_like(state(1))
  ckpt = StageCheckpoints(str(tmp_path / "pretrain"), keep=1)
  saved = state(0)
  ckpt.save(1, saved, {"seed": 0}, {})
  restored, _, _ = ckpt.restore(1, abstract_of(lambda: state(1)))
  chex.assert_trees_all_close(restored, saved)


def test_keeps_only_the_newest(tmp_path):
  ckpt = StageCheckpoints(str(tmp_path / "s"), keep=2)
  for step in (1, 2, 3):
    ckpt.save(step, state(0), {}, {})
  assert ckpt.latest_step() == 3
  assert sorted(int(d) for d in os.listdir(tmp_path / "s") if d.isdigit()) == [2, 3]


def test_corrupted_checkpoint_gives_user_error(tmp_path):
  # Caught by the layout check before any array read. (A read that fails part-way leaves
  # orbax coroutines un-awaited; pytest reports them in whatever test runs next, and under
  # TFDS's lazy imports that report itself crashed a CI run.)
  ckpt = StageCheckpoints(str(tmp_path / "s"), keep=2)
  ckpt.save(1, state(0), {}, {})
  for root, _, files in os.walk(tmp_path / "s" / "1" / "state"):
    for name in files:
      with open(os.path.join(root, name), "wb") as f:
        f.write(b"garbage")
  with pytest.raises(UserError, match="is corrupt"):
    StageCheckpoints(str(tmp_path / "s"), keep=2).restore(1, abstract_like(state(0)))


def test_mismatched_model_gives_user_error(tmp_path):
  ckpt = StageCheckpoints(str(tmp_path / "s"), keep=2)
  ckpt.save(1, state(0), {}, {})
  other = steps.init_pretrain(make_networks(32, 3, "features", (16,)),
                              steps.pretrain_optimizer(1e-3, 0.9, 0.0), jax.random.key(0))
  with pytest.raises(UserError, match=r"holds another model .*\(encoder/conv1/kernel: saved "
                                      r"float32\[5, 5, 1, 20\], expected float32\[5, 5, 3, 20\]\)"):
    ckpt.restore(1, abstract_like(other))


def test_checkpoint_without_provenance_restores(tmp_path):
  """Checkpoints written before provenance was recorded still restore (provenance None)."""
  import orbax.checkpoint as ocp
  ckpt = StageCheckpoints(str(tmp_path / "s"), keep=2)
  saved = state(0)
  ckpt._manager.save(3, args=ocp.args.Composite(state=ocp.args.StandardSave(saved),
                                                config=ocp.args.JsonSave({"seed": 0})))
  ckpt._manager.wait_until_finished()
  restored, config, provenance = ckpt.restore(3, abstract_like(state(1)))
  chex.assert_trees_all_close(restored, saved)
  assert config == {"seed": 0} and provenance is None


def test_best_checkpoint_passes_over_a_reading_ranked_worst(tmp_path):
  """--select with a validator that had no reading at one line (NaN, made +inf by
  `validators.ranked` for DEV, which prefers low): orbax keeps the line that had one."""
  checkpoints = StageCheckpoints(str(tmp_path / "selected"), 1, best=("dev", "min"))
  state = {"w": jax.numpy.zeros(3), "step": jax.numpy.array(0)}
  for step, dev in ((2, 0.7), (4, float("nan")), (6, 0.9)):
    checkpoints.save(step, state, {}, {}, metrics={"dev": float(ranked("dev", dev))})
  assert checkpoints.best_step() == 2
