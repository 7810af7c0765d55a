"""CoGAN: shared weights are one set of parameters, generators draw images in the data's shape
and range, each part of the objective reaches only the layers it should, and grids decode."""
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from adda_jax import train
from adda_jax.data.loading import DataSource
from adda_jax.methods import cogan, stages_for
from adda_jax.methods.base import DATA
from adda_jax.models import make_networks
from tests.test_methods import PRESET, toy_batches
from tests.test_train import tiny

CFG = PRESET.replace(method="cogan").validate()


@pytest.fixture(autouse=True)
def small_generator(monkeypatch):
  """The release's widths (1024 ... 128) cost seconds per step on a CPU: tests use the same
  layers, narrower. `test_the_releases_generator_sizes` checks the real ones."""
  monkeypatch.setattr(cogan, "WIDTHS", (32, 16, 16, 8))


def test_the_releases_generator_sizes(monkeypatch):
  monkeypatch.setattr(cogan, "WIDTHS", (1024, 512, 256, 128))
  shared, output = cogan.generators()
  params = jax.eval_shape(shared.init, jax.random.key(0))
  kernels = [layer["kernel"].shape for layer in params["layers"].values()]
  assert kernels == [(4, 4, 100, 1024), (3, 3, 1024, 512), (3, 3, 512, 256), (3, 3, 256, 128)]
  maps = jax.eval_shape(shared.apply, params, jax.ShapeDtypeStruct((2, 100), jnp.float32))
  assert maps.shape == (2, 25, 25, 128)  # 1 -> 4 -> 7 -> 13 -> 25, as the release.
  out = jax.eval_shape(output.apply, jax.eval_shape(output.init, jax.random.key(0)), maps)
  assert out.shape == (2, 28, 28, 1)


def test_transposed_layers_are_flax_s_with_its_parameters_and_values():
  """The generators' layers compute through `ops.conv_transpose` (a matmul kernel gradient on
  CPU) but keep flax's ConvTranspose parameters, initialisation and outputs."""
  from flax import nnx
  ours = cogan._transposed(8, 6, 3, 2, 1, nnx.Rngs(0))
  theirs = nnx.ConvTranspose(8, 6, (3, 3), (2, 2), padding=((1, 1), (1, 1)), rngs=nnx.Rngs(0))
  chex.assert_trees_all_equal(nnx.state(ours, nnx.Param), nnx.state(theirs, nnx.Param))
  x = jax.random.normal(jax.random.key(2), (2, 4, 4, 8))
  assert ours(x).shape == (2, 7, 7, 6)  # PyTorch's (4 - 1) * 2 - 2 * 1 + 3.
  chex.assert_trees_all_close(ours(x), theirs(x), rtol=1e-6, atol=1e-6)


def make(cfg=CFG):
  nets = make_networks(cfg.image_size, cfg.channels, cfg.disc_input, cfg.disc_hidden,
                       cfg.conv_relu)
  model = cogan.CoGAN(cfg, nets)
  return model, model.init(jax.random.key(0))


def test_shared_layers_are_one_set_of_parameters():
  model, state = make()
  assert set(state["gen"]) == {"shared", "source_out", "target_out"}
  assert set(state["disc"]) == {"source_conv1", "target_conv1", "shared", "real_fake",
                                "classifier"}
  # Both domains' encoders read the very same shared arrays, not equal copies.
  source = cogan.domain_encoder(state["disc"], "source")
  target = cogan.domain_encoder(state["disc"], "target")
  assert source["conv2"] is target["conv2"] is state["disc"]["shared"]["conv2"]
  assert source["fc"] is target["fc"]
  assert not np.array_equal(source["conv1"]["kernel"], target["conv1"]["kernel"])
  count = lambda tree: sum(x.size for x in jax.tree.leaves(tree))
  # Two generators cost one set of shared layers plus two output layers.
  assert count(state["gen"]) == count(state["gen"]["shared"]) + 2 * count(
      state["gen"]["source_out"])


@pytest.mark.parametrize("size,channels,scale", [(28, 1, 1.0), (32, 3, 255.0)])
def test_generators_draw_images_in_the_datas_shape_and_range(size, channels, scale):
  cfg = CFG.replace(image_size=size, channels=channels, pixel_scale=scale)
  model, state = make(cfg)
  z = jax.random.normal(jax.random.key(1), (6, cogan.LATENT))
  source, target = model.draw(state["gen"], z)
  assert source.shape == target.shape == (6, size, size, channels)
  for images in (source, target):
    assert float(images.min()) >= 0.0 and float(images.max()) <= scale
  assert not np.allclose(source, target)  # Two output layers: two renderings.


def test_discriminator_steps_lower_its_loss_on_a_toy_batch():
  model, state = make()
  batches = toy_batches()
  z = jax.random.normal(jax.random.key(2), (16, cogan.LATENT))
  loss = jax.jit(lambda disc: model.disc_loss(disc, state["gen"], batches, z)[0])
  grad = jax.jit(jax.grad(lambda disc: model.disc_loss(disc, state["gen"], batches, z)[0]))
  disc, opt = state["disc"], state["disc_opt"]
  first = float(loss(disc))
  for _ in range(10):
    updates, opt = model.tx_disc.update(grad(disc), opt, disc)
    disc = optax.apply_updates(disc, updates)
  assert float(loss(disc)) < first


def test_classifier_gradient_reaches_only_the_source_path():
  model, state = make()
  batches = toy_batches()
  grads = jax.grad(lambda disc: model.classification(
      disc, batches["source_images"], batches["source_labels"])[0])(state["disc"])
  norm = lambda tree: float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(tree)))
  for reached in ("source_conv1", "shared", "classifier"):
    assert norm(grads[reached]) > 0, reached
  for untouched in ("target_conv1", "real_fake"):
    assert norm(grads[untouched]) == 0.0, untouched


def test_alarms_name_mode_collapse_and_an_exploding_generator():
  healthy = {"sample_spread": 0.8, "gen_loss": 1.2}
  assert cogan.alarms(healthy) == []
  assert "mode collapse" in cogan.alarms({**healthy, "sample_spread": 0.02})[0]
  assert "exploding" in cogan.alarms({**healthy, "gen_loss": 80.0})[0]


def test_paired_grid_puts_each_sources_twin_below_it():
  source, target = np.zeros((64, 28, 28, 1)), np.ones((64, 28, 28, 1))
  grid = cogan.paired_grid(source, target)
  assert grid.shape == (16 * 30, 8 * 30, 1) and grid.dtype == np.uint8
  assert grid[1:29, 1:29].max() == 0 and grid[31:59, 1:29].min() == 255


def test_a_short_run_writes_grids_that_decode(raw_dir, tmp_path):
  cfg = tiny(method="cogan", adapt_steps=4, checkpoint_every=2)
  assert [stage.name for stage in stages_for(cfg)] == ["cogan"]
  assert set(stages_for(cfg)[0].data) == {"source", "target"}  # No target labels.
  assert "target_labels" not in DATA["target"]
  workdir = tmp_path / "run"
  summary = train.run(cfg, str(workdir), DataSource("raw", raw_dir), log=lambda _: None)
  assert 0.0 <= summary["cogan_accuracy"] <= 1.0
  assert {"gen_loss", "sample_spread", "disc_accuracy"} <= set(summary["cogan_history"][-1])
  assert sorted(os.listdir(workdir / "samples")) == ["latest.png", "step_000002.png",
                                                     "step_000004.png"]
  with Image.open(workdir / "samples" / "latest.png") as image:
    image.load()
    assert image.size == (8 * 30, 16 * 30)
  # --fresh deletes a CoGAN run whole, its grids too, whatever method takes the folder next.
  train.run(tiny(method="source_only"), str(workdir), DataSource("raw", raw_dir), fresh=True,
            log=lambda _: None)
  assert not (workdir / "samples").exists()
