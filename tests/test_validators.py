"""adda_jax/validators.py: label-free scores against NumPy references, their preferences on
toy models, and their place in a run's progress lines."""
import math

import numpy as np
import pytest

from adda_jax import train, validators
from adda_jax.data.pairs import load_pair
from adda_jax.errors import UserError
from adda_jax.methods import stages_for
from adda_jax.runner import Placement
from adda_jax.data.loading import DataSource
from tests.test_train import tiny


def softmax(logits):
  e = np.exp(logits - logits.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def reference(logits: np.ndarray) -> dict[str, float]:
  """The four scores written out in NumPy, loop by loop where the papers define them so."""
  p = softmax(logits.astype(np.float64))
  n = len(p)
  h = [-sum(q * math.log(q) for q in row) for row in p]
  mean = p.mean(axis=0)
  unit = p / np.linalg.norm(p, axis=1, keepdims=True)
  snd = 0.0
  for i in range(n):
    s = np.array([unit[i] @ unit[j] / validators.SND_TEMPERATURE for j in range(n) if j != i])
    w = np.exp(s - s.max())
    w /= w.sum()
    snd += -np.sum(w * np.log(w)) / n
  return {"entropy": float(np.mean(h)),
          "im": float(-np.sum(mean * np.log(mean)) - np.mean(h)),
          "bnm": float(np.linalg.svd(p, compute_uv=False).sum() / n),
          "snd": float(snd)}


def test_scores_match_numpy_references():
  logits = np.random.default_rng(0).normal(scale=2.0, size=(12, 4)).astype(np.float32)
  ours = {k: float(v) for k, v in validators.scores(logits).items()}
  want = reference(logits)
  assert ours.keys() == want.keys() == validators.PREFERS.keys() - set(validators.NEEDS_SOURCE_VAL)
  for name in want:
    np.testing.assert_allclose(ours[name], want[name], rtol=1e-4, atol=1e-6, err_msg=name)


def toy_models(n=60, classes=4):
  """(better, worse) logits: tight, confident, balanced clusters against scattered guesses."""
  rng = np.random.default_rng(1)
  clustered = 8.0 * np.eye(classes)[np.arange(n) % classes] + rng.normal(0, 0.1, (n, classes))
  scattered = np.log(rng.dirichlet(np.ones(classes), n))
  return clustered.astype(np.float32), scattered.astype(np.float32)


@pytest.mark.parametrize("name", sorted(validators.PREFERS.keys() - set(validators.NEEDS_SOURCE_VAL)))
def test_each_validator_prefers_the_clearly_better_model(name):
  better, worse = (float(validators.scores(m)[name]) for m in toy_models())
  if validators.PREFERS[name] == "max":
    assert better > worse, (better, worse)
  else:
    assert better < worse, (better, worse)


def test_collapsed_predictions_score_low_on_diversity():
  """All images in one class, confidently: entropy is fooled (it is minimal), IM and BNM are
  not (no diversity)."""
  collapsed = np.tile(np.array([[9.0, 0, 0, 0]], np.float32), (60, 1))
  better, _ = toy_models()
  one, good = validators.scores(collapsed), validators.scores(better)
  assert float(one["entropy"]) <= float(good["entropy"]) + 1e-3
  assert float(one["im"]) < float(good["im"]) - 1.0
  assert float(one["bnm"]) < float(good["bnm"]) / 1.5


def test_subset_is_a_fixed_draw():
  images = np.arange(5000)
  first, again = validators.subset(images), validators.subset(images)
  assert len(first) == validators.SUBSET and (first == again).all()
  assert len(np.unique(first)) == validators.SUBSET
  assert (validators.subset(images[:10]) == images[:10]).all()


def test_every_progress_line_carries_the_validators_without_target_labels(raw_dir, tmp_path):
  summary = train.run(tiny(monitor_target=False), str(tmp_path / "run"),
                      DataSource("raw", raw_dir), log=lambda _: None)
  for stage in ("pretrain", "adapt"):
    for line in summary[f"{stage}_history"]:
      assert "target_accuracy" not in line
      for name in validators.PREFERS.keys() - set(validators.NEEDS_SOURCE_VAL):
        assert math.isfinite(line[f"val_{name}"]), (stage, name)
      for name in validators.NEEDS_SOURCE_VAL:  # No source images held out by default.
        assert f"val_{name}" not in line


def test_held_out_source_images_never_reach_a_training_batch(raw_dir):
  data = DataSource("raw", raw_dir)
  whole = load_pair(tiny(), data)
  held = load_pair(tiny(source_val_size=16), data)
  train_images, val_images = held.source_train[0], held.source_val[0]
  assert len(val_images) == 16 and len(train_images) == len(whole.source_train[0]) - 16
  flat = lambda x: {row.tobytes() for row in x.reshape(len(x), -1)}
  assert flat(train_images).isdisjoint(flat(val_images))
  assert flat(train_images) | flat(val_images) == flat(whole.source_train[0])
  # The device datasets every stage samples from hold the training part only.
  placement = Placement.over_all_devices(8)
  datasets = train.device_datasets(held, placement, stages_for(tiny(source_val_size=16)))
  assert flat(np.asarray(datasets["source"].images)) == flat(train_images)
  again = load_pair(tiny(source_val_size=16, seed=3), data)  # Another run seed: same slice.
  assert (again.source_val[0] == val_images).all()


@pytest.mark.parametrize("name", validators.NEEDS_SOURCE_VAL)
def test_source_validators_and_their_selection(raw_dir, tmp_path, name):
  cfg = tiny(source_val_size=16, select=name)
  summary = train.run(cfg, str(tmp_path / "run"), DataSource("raw", raw_dir),
                      log=lambda _: None)
  history = summary["adapt_history"]
  assert all(0.0 <= line["val_source_accuracy"] <= 1.0 for line in history)
  assert all(math.isfinite(line["val_dev"]) for line in history)
  chosen = next(line for line in history if line["step"] == summary["adda_selected_step"])
  best = max if validators.PREFERS[name] == "max" else min
  assert chosen[f"val_{name}"] == best(line[f"val_{name}"] for line in history)
  with pytest.raises(UserError, match="--source-val-size"):
    tiny(select=name).validate()


def test_domain_weights_recover_a_known_density_ratio():
  """Source N(0, 1), target N(1, 1): p_t(x) / p_s(x) = exp(x - 1/2), which a logistic
  domain classifier on x represents exactly."""
  rng = np.random.default_rng(0)
  source = rng.normal(0.0, 1.0, (4000, 1)).astype(np.float32)
  target = rng.normal(1.0, 1.0, (2000, 1)).astype(np.float32)
  points = np.array([[-1.0], [0.0], [0.5], [1.5]], np.float32)
  weights = validators.domain_weights(source, target, points, ridge=1e-3)
  np.testing.assert_allclose(weights, np.exp(points[:, 0] - 0.5), rtol=0.15)


def test_dev_matches_numpy_and_prefers_the_model_with_lower_weighted_loss():
  rng = np.random.default_rng(2)
  weights = rng.gamma(2.0, 0.5, 50).astype(np.float32)
  losses = rng.exponential(1.0, 50).astype(np.float32)
  weighted = weights * losses
  eta = -np.cov(weighted, weights, bias=True)[0, 1] / weights.var()
  want = weighted.mean() + eta * weights.mean() - eta
  ours = float(validators.deep_embedded_validation(weights, losses))
  np.testing.assert_allclose(ours, want, rtol=1e-4)
  better = float(validators.deep_embedded_validation(weights, 0.1 * losses))
  assert better < ours


def test_separable_domains_give_dev_no_reading_and_ranked_passes_over_it():
  """Features that split the domains far apart overflow the weights (float32): DEV reads
  NaN, which `ranked` makes the worst reading for either direction of preference."""
  rng = np.random.default_rng(3)
  source = rng.normal(-5.0, 1.0, (200, 2)).astype(np.float32)
  target = rng.normal(5.0, 1.0, (200, 2)).astype(np.float32)
  held_out = np.array([[-5.0, -5.0], [20.0, 20.0]], np.float32)
  weights = validators.domain_weights(source, target, held_out, ridge=1e-6)
  assert np.isinf(weights).any()
  dev = float(validators.deep_embedded_validation(weights, np.ones(2, np.float32)))
  assert np.isnan(dev)
  np.testing.assert_array_equal(validators.ranked("dev", [0.5, dev]), [0.5, np.inf])
  np.testing.assert_array_equal(validators.ranked("im", [np.nan, 2.0]), [-np.inf, 2.0])
