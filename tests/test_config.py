"""Config validation: every value that cannot work is refused in one line before any work."""
import dataclasses

import jax
import jax.numpy as jnp
import pytest

from adda_jax.config import MAX_SEED, Config
from adda_jax.configs import get_config
from adda_jax.errors import UserError
from adda_jax.models import make_networks

PRESET = get_config("mnist_usps")


@pytest.mark.parametrize("size", [16, 20, 24, 28, 32, 64])
def test_every_accepted_image_size_builds_lenet(size):
  PRESET.replace(image_size=size).validate()
  nets = make_networks(size, 1, "features", (8,))
  features = nets.encoder.apply(nets.encoder.init(jax.random.key(0)), jnp.zeros((2, size, size, 1)))
  assert features.shape == (2, 500)


@pytest.mark.parametrize("size", [12, 17, 18, 30, 31])
def test_image_sizes_lenet_cannot_take_are_refused(size):
  with pytest.raises(UserError, match="--image-size must be a multiple of 4 and at least 16"):
    PRESET.replace(image_size=size).validate()


@pytest.mark.parametrize("field,value", [
    ("seed", "zero"), ("batch_size", 8.0), ("batch_size", True), ("pixel_scale", "255"),
    ("conv_relu", 1), ("source_subset", "2000"), ("disc_hidden", [500, 500]),
    ("disc_hidden", (500, "x")),
])
def test_wrongly_typed_fields_are_refused(field, value):
  with pytest.raises(UserError, match=f"config field {field} must be of type"):
    PRESET.replace(**{field: value}).validate()


def test_seeds_are_32_bit():
  PRESET.replace(seed=MAX_SEED).validate()
  for seed in (-1, MAX_SEED + 1, 2**70):
    with pytest.raises(UserError, match=r"--seed must be an integer in 0\.\.4294967295"):
      PRESET.replace(seed=seed).validate()


@pytest.mark.parametrize("field,value", [
    ("pixel_scale", float("inf")), ("adapt_lr", float("nan")), ("pretrain_lr", -1e-3),
    ("adapt_b1", 1.0), ("pretrain_weight_decay", float("inf")),
])
def test_non_finite_or_out_of_range_numbers_are_refused(field, value):
  with pytest.raises(UserError):
    PRESET.replace(**{field: value}).validate()


def test_json_round_trip_keeps_a_valid_config():
  assert Config.from_json(PRESET.to_json()) == PRESET
  assert {f.name for f in dataclasses.fields(Config)} == set(PRESET.to_json())
