"""Self-training with a mean teacher (adda_jax/methods/self_training.py), its losses
(adda_jax/losses.py), its augmentation (adda_jax/augment.py) and the recipe that uses it."""
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adda_jax import losses, train
from adda_jax.augment import augment, translate, zoom
from adda_jax.configs.recipes import RECIPES
from adda_jax.data.loading import DataSource
from adda_jax.errors import UserError
from adda_jax.methods import stages_for
from adda_jax.methods.self_training import ema
from tests.test_cli import assert_one_line_error, run_cli
from tests.test_methods import PRESET, stage_batches
from tests.test_train import tiny


def test_smoothed_cross_entropy_matches_hand_computation():
  logits = jnp.array([[2.0, 0.0, -1.0]])
  probs = np.exp([2.0, 0.0, -1.0]) / np.exp([2.0, 0.0, -1.0]).sum()
  target = np.array([0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3])
  expected = -(target * np.log(probs)).sum()
  np.testing.assert_allclose(losses.smoothed_classification_loss(logits, jnp.array([0]), 0.1),
                             expected, rtol=1e-6)
  np.testing.assert_allclose(losses.smoothed_classification_loss(logits, jnp.array([0]), 0.0),
                             -np.log(probs[0]), rtol=1e-6)


TOY_PROBS = jnp.array([[0.97, 0.02, 0.01],   # class 0, confident
                       [0.96, 0.03, 0.01],   # class 0, confident
                       [0.98, 0.01, 0.01],   # class 0, confident
                       [0.50, 0.40, 0.10],   # class 0, not confident
                       [0.02, 0.97, 0.01],   # class 1, confident
                       [0.10, 0.20, 0.70]])  # class 2, not confident


def test_pseudo_labels_keep_the_confident_and_balance_classes():
  labels, weights = losses.pseudo_labels(TOY_PROBS, 0.95, class_balanced=False)
  np.testing.assert_array_equal(labels, [0, 0, 0, 0, 1, 2])
  np.testing.assert_array_equal(weights, [1, 1, 1, 0, 1, 0])
  # Balanced: 4 confident examples over 2 classes, so each class carries a total of 2.
  _, balanced = losses.pseudo_labels(TOY_PROBS, 0.95, class_balanced=True)
  np.testing.assert_allclose(balanced, [2 / 3, 2 / 3, 2 / 3, 0, 2, 0], rtol=1e-6)
  _, none = losses.pseudo_labels(TOY_PROBS, 0.99, class_balanced=True)
  np.testing.assert_array_equal(none, np.zeros(6))


def test_pseudo_label_and_consistency_losses_match_hand_computation():
  logits = jnp.array([[1.0, 0.0], [0.0, 2.0]])
  p = np.exp([[1.0, 0.0], [0.0, 2.0]])
  p /= p.sum(-1, keepdims=True)
  ce = -np.log(p[[0, 1], [0, 0]])
  np.testing.assert_allclose(
      losses.pseudo_label_loss(logits, jnp.array([0, 0]), jnp.array([1.0, 0.5])),
      (ce[0] + 0.5 * ce[1]) / 2, rtol=1e-6)
  teacher = np.array([[0.5, 0.5], [0.1, 0.9]])
  np.testing.assert_allclose(losses.consistency_loss(logits, jnp.asarray(teacher)),
                             ((p - teacher) ** 2).sum(-1).mean(), rtol=1e-6)
  grad = jax.grad(lambda t: losses.consistency_loss(logits, t))(jnp.asarray(teacher))
  np.testing.assert_array_equal(grad, np.zeros_like(teacher))  # The teacher is a target.


def test_translation_moves_each_image_by_at_most_the_shift_and_keeps_its_shape():
  images = jnp.zeros((32, 9, 9, 1)).at[:, 4, 4, 0].set(1.0)  # One lit pixel in the centre.
  moved = np.asarray(translate(jax.random.key(0), images, 2))
  assert moved.shape == images.shape
  rows, cols = np.nonzero(moved[..., 0])[1:]
  assert len(rows) == 32  # The pixel stays inside, once per image.
  assert np.all(np.abs(rows - 4) <= 2) and np.all(np.abs(cols - 4) <= 2)
  assert len(set(zip(rows, cols))) > 5  # Images move independently.
  np.testing.assert_array_equal(translate(jax.random.key(0), images, 0), images)
  noisy = augment(jax.random.key(1), images, 0, noise=0.5, pixel_scale=1.0)
  assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0
  assert not np.allclose(noisy, images)


def test_zoom_scales_each_image_about_its_centre_within_the_factor():
  images = jnp.zeros((64, 28, 28, 1)).at[:, 10:18, 10:18, 0].set(1.0)  # An 8-pixel square.
  zoomed = np.asarray(zoom(jax.random.key(0), images, 1.5))[..., 0]
  assert zoomed.shape == (64, 28, 28)
  assert zoomed.min() >= 0.0 and zoomed.max() <= 1.0 + 1e-6
  side = np.sqrt(zoomed.sum((1, 2)))  # The square's ink, as the side of a square.
  assert np.all(side > 8 / 1.5 - 0.5) and np.all(side < 8 * 1.5 + 0.5)
  assert side.min() < 7 and side.max() > 9  # Some shrink, some grow.
  rows = (zoomed.sum(2) * (np.arange(28) + 0.5)).sum(1) / zoomed.sum((1, 2))
  np.testing.assert_allclose(rows, 14.0, atol=1e-3)  # The centre stays put.
  assert zoom(jax.random.key(0), images, 1.0) is images
  # Without a zoom, augment draws the very shifts and noise it drew before zooms existed.
  shift_key, noise_key = jax.random.split(jax.random.key(3))
  expected = translate(shift_key, images, 2)
  expected = jnp.clip(expected + 0.1 * jax.random.normal(noise_key, images.shape), 0.0, 1.0)
  np.testing.assert_array_equal(augment(jax.random.key(3), images, 2, 0.1), expected)
  with pytest.raises(UserError, match="augment-scale is a zoom factor >= 1"):
    PRESET.replace(self_train_steps=5, augment_scale=0.5).validate()
  with pytest.raises(UserError, match="pretrain-augment-scale is a zoom factor"):
    PRESET.replace(pretrain_augment_scale=float("nan")).validate()


def build(**changes):
  """A self-training stage after ADDA, and its state, from untrained earlier stages."""
  cfg = PRESET.replace(self_train_steps=5, **changes).validate()
  stages = stages_for(cfg)
  earlier = {}
  for index, stage in enumerate(stages):
    earlier[stage.name] = stage.init(jax.random.key(index), earlier)
  return stages, earlier


def test_stage_follows_the_method_and_starts_from_its_target_model():
  stages, earlier = build()
  assert [s.name for s in stages] == ["pretrain", "adapt", "selftrain"]
  assert stages[-1].label == "adda+selftrain"
  state = earlier["selftrain"]
  start = stages[1].predictor(earlier["adapt"], stages[1].frozen(earlier))
  for model in (state["student"], state["teacher"]):
    jax.tree.map(np.testing.assert_array_equal, (model["encoder"], model["classifier"]), start)
  only, _ = build(method="source_only")
  assert [s.label for s in only] == ["source_only", "source_only+selftrain"]
  assert "target_labelled" not in stages[-1].data  # Self-training reads no target label.


def test_teacher_is_the_moving_average_of_the_student_and_the_loss_falls():
  stages, earlier = build(teacher_decay=0.9)
  stage, state = stages[-1], earlier["selftrain"]
  batches = stage_batches(stage, {})
  step = jax.jit(stage.step)
  first = None
  for i in range(12):
    before = state["teacher"]
    state, metrics = step(state, {}, batches, jax.random.key(i))
    expected = jax.tree.map(lambda t, s: 0.9 * t + 0.1 * s, before, state["student"])
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 state["teacher"], expected)
    first = float(metrics["source_loss"]) if first is None else first
  assert float(metrics["source_loss"]) < first
  assert not np.allclose(state["teacher"]["classifier"]["fc"]["kernel"],
                         state["student"]["classifier"]["fc"]["kernel"])
  same = ema({"w": jnp.ones(2)}, {"w": jnp.ones(2)}, 0.5)
  np.testing.assert_array_equal(same["w"], jnp.ones(2))


def test_each_weight_switches_its_term_and_zero_weights_leave_the_student_unchanged():
  """The ablations rest on this: a zero weight removes its term from the gradient."""
  off = dict(pseudo_weight=0.0, consistency_weight=0.0, self_train_source_weight=0.0,
             self_train_im_weight=0.0, vat_weight=0.0, pseudo_threshold=0.0)
  terms = ("pseudo_weight", "consistency_weight", "self_train_source_weight",
           "self_train_im_weight", "vat_weight")
  moved = {}
  for term in (None, *terms):
    stages, earlier = build(**{**off, **({term: 1.0} if term else {})})
    stage, state = stages[-1], earlier["selftrain"]
    new, metrics = jax.jit(stage.step)(state, {}, stage_batches(stage, {}), jax.random.key(0))
    assert np.isfinite(float(metrics["im_loss"]))
    moved[term] = max(float(jnp.abs(a - b).max()) for a, b in zip(
        jax.tree.leaves(new["student"]), jax.tree.leaves(state["student"])))
  assert moved[None] == 0.0
  for term in terms:
    assert moved[term] > 1e-6, term


def test_alarm_names_pseudo_label_collapse_relative_to_the_batch():
  stages, _ = build()  # Batch 16 over 10 classes covers 8.1 classes on average.
  alarms = stages[-1].alarms
  assert alarms({"pseudo_classes": 7.0}) == []
  assert "collapsing" in alarms({"pseudo_classes": 3.0})[0]
  small, _ = build(batch_size=4)  # 3.4 on average: 3 classes of 4 images is no collapse.
  assert small[-1].alarms({"pseudo_classes": 3.0}) == []


def test_run_reports_each_stage_and_resumes_exactly(raw_dir, tmp_path):
  cfg = tiny(self_train_steps=4, checkpoint_every=2, keep_checkpoints=3)
  data = DataSource("raw", raw_dir)
  straight = train.run(cfg, str(tmp_path / "straight"), data, log=lambda _: None)
  for label in ("source_only", "adda", "adda+selftrain"):
    assert 0.0 <= straight[f"{label}_accuracy"] <= 1.0
  assert straight["selftrain_history"][-1]["step"] == 4
  cut = tmp_path / "cut"  # What the same run leaves, cut back to its step-2 checkpoint.
  shutil.copytree(tmp_path / "straight", cut)
  shutil.rmtree(cut / "selftrain" / "4")
  (cut / "summary.json").unlink()
  lines = []
  resumed = train.run(cfg, str(cut), data, log=lines.append)
  assert "[selftrain] resuming from the checkpoint at step 2" in lines
  assert resumed["adda+selftrain_accuracy"] == straight["adda+selftrain_accuracy"]
  assert resumed["selftrain_history"][-1] == straight["selftrain_history"][-1]


def test_recipe_fixes_every_self_training_value_and_options_need_the_stage(tmp_path):
  recipe = PRESET.replace(**RECIPES["adda_selftrain"]).validate()
  assert recipe.self_train_steps > 0 and recipe.source_subset is None
  with pytest.raises(UserError, match="read only by self-training"):
    PRESET.replace(pseudo_threshold=0.9).validate()
  with pytest.raises(UserError, match="pseudo-threshold"):
    PRESET.replace(self_train_steps=5, pseudo_threshold=1.5).validate()
  result = run_cli("--pair", "mnist_usps", "--workdir", str(tmp_path / "run"),
                   "--teacher-decay", "0.99")
  assert_one_line_error(result, "--teacher-decay is read only by self-training")
  result = run_cli("--pair", "mnist_usps", "--workdir", str(tmp_path / "run"),
                   "--recipe", "nonesuch")
  assert_one_line_error(result, "unknown recipe 'nonesuch'")
  assert not (tmp_path / "run").exists()


def test_virtual_adversarial_loss_matches_numpy_for_a_linear_model():
  """For logits W x: the power iteration's direction is W^T (softmax(W(x + d)) - p) at the
  random probe d, scaled to the radius per image; the loss is CE(p, softmax(W(x + r)))."""
  rng = np.random.default_rng(0)
  w = rng.normal(size=(6, 3)).astype(np.float32)
  x = rng.normal(size=(4, 2, 3, 1)).astype(np.float32)
  key, radius, probe = jax.random.key(5), 0.7, 1e-2
  got = losses.virtual_adversarial_loss(lambda v: v.reshape(4, 6) @ w, jnp.asarray(x), key,
                                        radius, probe)

  def softmax(z):
    z = z - z.max(-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(-1, keepdims=True)

  def unit(d):
    return d / np.linalg.norm(d, axis=1, keepdims=True)

  flat = x.reshape(4, 6).astype(np.float64)
  p = softmax(flat @ w)
  d = probe * unit(np.asarray(jax.random.normal(key, x.shape)).reshape(4, 6))
  direction = (softmax((flat + d) @ w) - p) @ w.T
  q = softmax((flat + radius * unit(direction)) @ w)
  expected = -(p * np.log(q)).sum(-1).mean()
  np.testing.assert_allclose(float(got), expected, rtol=1e-4)
  # The adversarial direction raises the loss above a random one of the same norm.
  q_random = softmax((flat + radius * unit(d)) @ w)
  assert expected > -(p * np.log(q_random)).sum(-1).mean()
