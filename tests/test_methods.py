"""The method registry: each method's pieces, its step, its state, its refusals and resume."""
import os
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adda_jax import losses, steps, train
from adda_jax.augment import augment
from adda_jax.configs import get_config
from adda_jax.data.loading import DataSource
from adda_jax.errors import UserError
from adda_jax.methods import REGISTRY, stages_for
from adda_jax.methods.base import DATA, pretrain_optimizer
from adda_jax.models import make_networks
from adda_jax.steps import DeviceData
from tests.test_cli import assert_one_line_error, run_cli
from tests.test_steps import toy_batch
from tests.test_train import tiny

PRESET = get_config("mnist_usps").replace(disc_hidden=(32, 32), batch_size=16)
# Every method and sharing, by the name its results rows carry.
VARIANTS = {
    "source_only": {}, "target_oracle": {}, "adda": {}, "adda_tied": {"sharing": "tied"},
    "adda_partial": {"sharing": "partial"}, "dann": {}, "ddc": {}, "confusion": {}, "can": {},
    "cogan": {},
}


@pytest.fixture(autouse=True)
def small_generator(monkeypatch):
  from adda_jax.methods import cogan
  monkeypatch.setattr(cogan, "WIDTHS", (32, 16, 16, 8))  # See tests/test_cogan.py.


def config(variant, **changes):
  method = variant.split("_tied")[0].split("_partial")[0]
  return PRESET.replace(method=method, **VARIANTS[variant], **changes).validate()


def test_reversal_is_identity_forward_and_minus_lambda_backward():
  x = jnp.array([1.0, -2.0, 3.0])
  np.testing.assert_array_equal(losses.reverse_gradient(x, 0.7), x)
  grad = jax.grad(lambda x: jnp.sum(losses.reverse_gradient(x, 0.7) * jnp.array([1., 2., 3.])))
  np.testing.assert_allclose(grad(x), [-0.7, -1.4, -2.1], rtol=1e-6)


def mmd2_reference(s, t, bandwidths):
  joint = np.concatenate([s, t]).astype(np.float64)
  d = ((joint[:, None] - joint[None]) ** 2).sum(-1)
  k = sum(np.exp(-d / h) for h in bandwidths) / len(bandwidths)
  n = len(s)
  return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


@pytest.mark.parametrize("kernel", ["gaussian", "multi"])
def test_mmd_matches_numpy_is_zero_on_equal_and_positive_on_shifted(kernel):
  rng = np.random.default_rng(0)
  s, t = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.5
  joint = np.concatenate([s, t])
  d = ((joint[:, None] - joint[None]) ** 2).sum(-1)[np.triu_indices(24, k=1)]
  bandwidths = ([np.median(d)] if kernel == "gaussian" else
                [d.mean() * 2.0 ** j for j in range(-2, 3)])
  ours = losses.mmd2(jnp.asarray(s, jnp.float32), jnp.asarray(t, jnp.float32), kernel)
  np.testing.assert_allclose(ours, mmd2_reference(s, t, bandwidths), rtol=1e-4, atol=1e-6)
  same = losses.mmd2(jnp.asarray(s, jnp.float32), jnp.asarray(s, jnp.float32), kernel)
  np.testing.assert_allclose(same, 0.0, atol=1e-6)
  assert float(ours) > 0.01


def build(variant):
  """The variant's stages, and its last stage's state after the stages before it."""
  cfg = config(variant)
  stages = stages_for(cfg)
  earlier = {}
  for index, stage in enumerate(stages):
    state = stage.init(jax.random.key(index), earlier)
    earlier[stage.name] = state
  return stages[-1], state, earlier


def toy_batches():
  xs, ys = toy_batch(4, 16)
  xt, yt = toy_batch(5, 16)
  return {"source_images": xs, "source_labels": ys, "target_images": xt, "target_labels": yt}


def stage_batches(stage, frozen):
  """The toy batches as the stage's step sees them: its datasets prepared, if it prepares
  them (ADDA's source batches hold M_s's features)."""
  raw = toy_batches()
  datasets = {"source": DeviceData(raw["source_images"], raw["source_labels"]),
              "target": DeviceData(raw["target_images"], raw["target_labels"])}
  datasets["target_labelled"] = datasets["target"]
  batches = {}
  for name, data in stage.inputs(frozen, datasets).items():
    batches.update(zip(DATA[name], data))
  return batches


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_step_lowers_its_own_objective(variant):
  """Repeated steps on one toy batch lower the stage's main training loss: the supervised
  loss, ADDA's mapping loss (its encoder's only objective), DDC's MMD, and the source loss of
  the joint adversarial methods (their domain terms are a game: confusion starts at its
  minimum, D's and the encoder's losses trade places). A step also returns its state in the
  types it took (no weak types or dtypes that drift), so a run compiles its step once."""
  stage, state, earlier = build(variant)
  types = jax.tree.map(jax.typeof, state)
  frozen = stage.frozen(earlier)
  batches = stage_batches(stage, frozen)
  step = jax.jit(stage.step)
  objective = {"pretrain": "loss", "oracle": "loss"}.get(stage.name)
  objective = objective or ("mmd2" if variant == "ddc" else
                            "mapping_loss" if variant in ("adda", "adda_tied", "adda_partial")
                            else "source_loss")
  first = None
  for _ in range(15):
    state, metrics = step(state, frozen, batches, jax.random.key(0))
    first = float(metrics[objective]) if first is None else first
  assert int(state["step"]) == 15
  assert jax.tree.map(jax.typeof, state) == types
  assert float(metrics[objective]) < first, (objective, first, float(metrics[objective]))


def test_states_hold_exactly_the_parameters_claimed():
  _, untied, earlier = build("adda")
  assert set(untied) == {"step", "target_encoder", "discriminator", "target_opt", "disc_opt"}
  _, tied, _ = build("adda_tied")
  assert set(tied["model"]) == {"encoder", "classifier"}  # one encoder for both domains
  assert set(tied["disc"]) == {"d"}
  _, partial, _ = build("adda_partial")
  assert set(partial["model"]) == {"encoder", "classifier", "target_fc"}
  chex.assert_trees_all_equal(partial["model"]["target_fc"],
                              earlier["pretrain"]["encoder"]["fc"])
  count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))
  # Partial adds exactly one fc layer to tied; untied trains a whole second encoder.
  assert count(partial["model"]) - count(tied["model"]) == count(
      earlier["pretrain"]["encoder"]["fc"])
  assert count(untied["target_encoder"]) == count(earlier["pretrain"]["encoder"])
  _, can, _ = build("can")
  assert set(can["disc"]) == {"block1", "block2", "block3", "block_weights"}


def test_only_the_oracle_reads_target_labels():
  for name, method in REGISTRY.items():
    stages = stages_for(PRESET.replace(method=name))
    assert 1 <= len(stages) <= 2
    reads = any("target_labelled" in stage.data for stage in stages)
    assert reads == method.uses_target_labels == (name == "target_oracle"), name


@pytest.mark.parametrize("args,message", [
    (["--method", "dann", "--sharing", "tied"], "--sharing is not read by --method dann"),
    (["--method", "ddc", "--adversarial-loss", "minimax"],
     "--adversarial-loss is not read by --method ddc"),
    (["--method", "adda", "--mmd-kernel", "multi"], "--mmd-kernel is not read by --method adda"),
    (["--domain-weight", "2"], "--domain-weight is not read by --method adda"),
    (["--method", "target_oracle", "--pretrained-from", "runs/x"],
     "--method target_oracle has no source pretraining stage"),
])
def test_meaningless_combinations_are_refused_before_anything_is_written(args, message,
                                                                         tmp_path):
  result = run_cli("--pair", "mnist_usps", "--workdir", str(tmp_path / "run"), *args)
  assert_one_line_error(result, message)
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_resume_from_a_middle_checkpoint_is_exact(raw_dir, tmp_path, variant):
  """A run cut off after a middle checkpoint (its later checkpoints and summary gone, as a kill
  leaves them) resumes to exactly the uninterrupted run's final state."""
  cfg = tiny(**{**VARIANTS[variant], "method": config(variant).method}, pretrain_steps=6,
             adapt_steps=6, checkpoint_every=2, keep_checkpoints=3)
  data = DataSource("raw", raw_dir)
  straight = train.run(cfg, str(tmp_path / "straight"), data, log=lambda _: None)
  cut = tmp_path / "cut"  # What the same run leaves, cut back to its step-2 checkpoint.
  shutil.copytree(tmp_path / "straight", cut)
  last = stages_for(cfg)[-1].name
  for step in ("4", "6"):
    shutil.rmtree(cut / last / step)
  os.remove(cut / "summary.json")
  lines = []
  resumed = train.run(cfg, str(cut), data, log=lines.append)
  assert f"[{last}] resuming from the checkpoint at step 2" in lines
  label = stages_for(cfg)[-1].label
  assert resumed[f"{label}_accuracy"] == straight[f"{label}_accuracy"]
  assert resumed[f"{last}_history"][-1] == straight[f"{last}_history"][-1]
  for a, b in zip(checkpoint_arrays(cut / last / "6"),
                  checkpoint_arrays(tmp_path / "straight" / last / "6"), strict=True):
    np.testing.assert_array_equal(a, b)


def checkpoint_arrays(checkpoint) -> list[np.ndarray]:
  """Every array a stage checkpoint holds, in a fixed order."""
  import orbax.checkpoint as ocp
  with ocp.StandardCheckpointer() as checkpointer:
    tree = checkpointer.restore(os.path.join(checkpoint, "state"))
  arrays = [np.asarray(x) for x in jax.tree.leaves(tree)]
  assert arrays, checkpoint
  return arrays


def test_adda_target_im_term_lowers_its_loss_and_only_adda_reads_it():
  cfg = config("adda", target_im_weight=1.0)
  stages = stages_for(cfg)
  earlier = {"pretrain": stages[0].init(jax.random.key(0), {})}
  stage = stages[1]
  state, frozen = stage.init(jax.random.key(1), earlier), stage.frozen(earlier)
  step = jax.jit(stage.step)
  batches = stage_batches(stage, frozen)
  first = None
  for _ in range(15):
    state, metrics = step(state, frozen, batches, jax.random.key(0))
    first = float(metrics["im_loss"]) if first is None else first
  assert float(metrics["im_loss"]) < first
  plain = stages_for(config("adda"))[1]
  _, without = jax.jit(plain.step)(plain.init(jax.random.key(1), earlier), frozen, batches,
                                   jax.random.key(0))
  assert "im_loss" not in without
  for other in ("dann", "adda_tied"):
    with pytest.raises(UserError, match="--target-im-weight is not read"):
      config(other, target_im_weight=1.0)


def test_stage_one_regularisers_smooth_its_labels_and_shift_and_zoom_its_images():
  """Off (the paper) the step is the plain supervised step on the batch as drawn; label
  smoothing changes the loss to the smoothed cross-entropy; a shift trains on translated
  images (the same translation `augment` draws from the step's key)."""
  key = jax.random.key(3)

  def first_loss(**changes):
    cfg = PRESET.replace(**changes).validate()
    stage = stages_for(cfg)[0]
    state = stage.init(jax.random.key(0), {})
    batches = stage_batches(stage, {})
    _, metrics = jax.jit(stage.step)(state, {}, batches, key)
    return cfg, state, batches, float(metrics["loss"])

  cfg, state, batches, plain = first_loss()
  nets = make_networks(cfg.image_size, cfg.channels, cfg.disc_input, cfg.disc_hidden)
  logits = nets.classifier.apply(state["classifier"],
                                 nets.encoder.apply(state["encoder"], batches["source_images"]))
  np.testing.assert_allclose(plain, losses.classification_loss(logits, batches["source_labels"]),
                             rtol=1e-5)
  *_, smoothed = first_loss(pretrain_label_smoothing=0.2)
  np.testing.assert_allclose(smoothed, losses.smoothed_classification_loss(
      logits, batches["source_labels"], 0.2), rtol=1e-5)
  cfg, state, batches, shifted = first_loss(pretrain_augment_shift=3)
  _, expected = steps.pretrain_step(nets, pretrain_optimizer(cfg), state,
                                    augment(key, batches["source_images"], 3),
                                    batches["source_labels"])
  np.testing.assert_allclose(shifted, float(expected["loss"]), rtol=1e-5)
  assert abs(shifted - plain) > 1e-4
  cfg, state, batches, zoomed = first_loss(pretrain_augment_scale=1.4)
  _, expected = steps.pretrain_step(nets, pretrain_optimizer(cfg), state,
                                    augment(key, batches["source_images"], 0, max_scale=1.4),
                                    batches["source_labels"])
  np.testing.assert_allclose(zoomed, float(expected["loss"]), rtol=1e-5)
  assert abs(zoomed - plain) > 1e-4
  with pytest.raises(UserError, match="pretrain-augment-shift"):
    PRESET.replace(pretrain_augment_shift=-1).validate()
