"""Module output shapes for the paper's and the colour input shapes."""
import chex
import jax
import jax.numpy as jnp
import pytest

from adda_jax.models import instance_normalise, make_networks


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3)])
@pytest.mark.parametrize("disc_input,disc_width", [("features", 500), ("logits", 10)])
def test_shapes(size, channels, disc_input, disc_width):
  nets = make_networks(size, channels, disc_input, (500, 500))
  enc = nets.encoder.init(jax.random.key(0))
  clf = nets.classifier.init(jax.random.key(1))
  disc = nets.discriminator.init(jax.random.key(2))
  features = nets.encoder.apply(enc, jnp.zeros((4, size, size, channels)))
  chex.assert_shape(features, (4, 500))
  chex.assert_shape(nets.classifier.apply(clf, features), (4, 10))
  chex.assert_shape(nets.discriminator.apply(disc, jnp.zeros((4, disc_width))), (4,))
  chex.assert_shape(disc["fc1"]["kernel"], (disc_width, 500))
  chex.assert_shape(enc["fc"]["kernel"], (800 if size == 28 else 1250, 500))


def test_features_are_relu_outputs():
  nets = make_networks(28, 1, "features", (500, 500))
  enc = nets.encoder.init(jax.random.key(0))
  features = nets.encoder.apply(enc, jax.random.normal(jax.random.key(1), (8, 28, 28, 1)))
  assert float(features.min()) >= 0.0 and float(features.max()) > 0.0


@pytest.mark.parametrize("conv_relu", [True, False])
def test_encoder_matches_a_hand_written_lenet(conv_relu):
  """Both variants share parameter shapes; only the conv-block activation differs."""
  from adda_jax.ops import conv2d, max_pool_2x2
  nets = make_networks(28, 1, "features", (500, 500), conv_relu=conv_relu)
  p = nets.encoder.init(jax.random.key(0))
  x = jax.random.normal(jax.random.key(1), (4, 28, 28, 1))
  act = jax.nn.relu if conv_relu else (lambda y: y)
  h = act(max_pool_2x2(conv2d(x, p["conv1"]["kernel"]) + p["conv1"]["bias"]))
  h = act(max_pool_2x2(conv2d(h, p["conv2"]["kernel"]) + p["conv2"]["bias"]))
  expected = jax.nn.relu(h.reshape(4, -1) @ p["fc"]["kernel"] + p["fc"]["bias"])
  chex.assert_trees_all_close(nets.encoder.apply(p, x), expected, atol=1e-5)
  other = make_networks(28, 1, "features", (500, 500), conv_relu=not conv_relu)
  chex.assert_trees_all_equal_shapes(p, other.encoder.init(jax.random.key(0)))
  assert not jnp.allclose(other.encoder.apply(p, x), expected, atol=1e-3)


def test_dtn_encoder_shapes_and_per_example_normalisation():
  nets = make_networks(32, 3, "features", (500, 500), encoder="dtn")
  params = nets.encoder.init(jax.random.key(0))
  assert params["conv1"]["kernel"].shape == (5, 5, 3, 64)
  assert params["fc"]["kernel"].shape == (256 * 4 * 4, 500)
  images = jax.random.uniform(jax.random.key(1), (6, 32, 32, 3))
  features = nets.encoder.apply(params, images)
  chex.assert_shape(features, (6, 500))
  assert float(features.min()) >= 0.0
  blocks = nets.encoder.apply(params, images, "blocks")
  assert [b.shape[1] for b in blocks] == [16 * 16 * 64, 8 * 8 * 128, 4 * 4 * 256, 500]
  # No statistic crosses images: an image's features do not depend on its batch.
  alone = nets.encoder.apply(params, images[:1])
  with_others = nets.encoder.apply(params, jnp.concatenate([images[:1], jnp.zeros_like(images)]))
  chex.assert_trees_all_close(alone, with_others[:1], atol=1e-5)


def test_dtn_encoder_is_refused_where_it_cannot_work():
  from adda_jax.configs import get_config
  from adda_jax.errors import UserError
  cfg = get_config("mnist_mnistm").replace(encoder="dtn", image_size=32, channels=3)
  assert cfg.validate().encoder == "dtn"
  with pytest.raises(UserError, match="multiple of 8"):
    cfg.replace(image_size=28).validate()
  with pytest.raises(UserError, match="--method cogan trains only the lenet encoder"):
    cfg.replace(method="cogan").validate()
  with pytest.raises(UserError, match="unknown encoder"):
    cfg.replace(encoder="resnet").validate()


def test_instance_normalise_standardises_each_image_and_channel():
  images = jax.random.uniform(jax.random.key(0), (3, 8, 8, 2)) * jnp.array([1.0, 5.0]) + 2.0
  out = instance_normalise(images)
  chex.assert_trees_all_close(out.mean(axis=(1, 2)), jnp.zeros((3, 2)), atol=1e-5)
  chex.assert_trees_all_close(out.var(axis=(1, 2)), jnp.ones((3, 2)), atol=1e-3)
  flat = jnp.full((1, 8, 8, 1), 0.7)  # A blank image stays finite, near zero everywhere.
  chex.assert_trees_all_close(instance_normalise(flat), jnp.zeros_like(flat), atol=1e-4)


@pytest.mark.parametrize("encoder,size,channels", [("lenet", 28, 1), ("dtn", 32, 3)])
def test_input_norm_makes_the_features_blind_to_each_images_colour_and_contrast(
    encoder, size, channels):
  images = jax.random.uniform(jax.random.key(1), (4, size, size, channels))
  # Per image and channel: a contrast change and a colour cast.
  gain = jax.random.uniform(jax.random.key(2), (4, 1, 1, channels), minval=0.3, maxval=2.0)
  cast = jax.random.uniform(jax.random.key(3), (4, 1, 1, channels), minval=-0.5, maxval=0.5)
  recoloured = images * gain + cast
  for input_norm, blind in (("instance", True), ("none", False)):
    nets = make_networks(size, channels, "features", (500, 500), encoder=encoder,
                         input_norm=input_norm)
    params = nets.encoder.init(jax.random.key(0))
    a, b = nets.encoder.apply(params, images), nets.encoder.apply(params, recoloured)
    assert bool(jnp.allclose(a, b, atol=1e-3)) == blind, input_norm

