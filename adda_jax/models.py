"""The paper's digit networks as Flax NNX modules, plus a pure-function view of them.

- `LeNetEncoder`: conv 20@5x5 -> max-pool 2 -> conv 50@5x5 -> max-pool 2 -> fc 500 -> ReLU,
  giving the 500-d feature M(x): Caffe's LeNet, which the paper names as its base.
  `conv_relu=True` (the training default) adds a ReLU after each pool, as the released TF
  code's LeNet (ReLU after the pool equals ReLU before it, at a quarter of the cost).
- `DTNEncoder` (`encoder="dtn"`): the stronger conv net the digit papers after ADDA use for
  32x32 RGB (SHOT's and DIRT-T's "DTN"): three 5x5 stride-2 convs, 64 -> 128 -> 256 channels,
  each normalised and ReLU'd, then fc 500 -> ReLU, so C and D stay as they are.
- `input_norm="instance"` (either encoder): each image is standardised per channel over its
  pixels before the first layer (DIRT-T's release does this by default, its `--inorm 1`), so
  an image's overall brightness, contrast and colour cast never reach the network.
- `Classifier`: linear 500 -> 10 (C).
- `Discriminator`: 500 -> 500 -> 500 -> 1 with ReLU, one logit for "source" (D); its input is
  the 500-d feature (paper) or the 10-d logits (authors' code), a config choice.

Training code holds parameters as plain nested dicts (`PureModule.init`) and applies them with
`PureModule.apply`, so train states are ordinary pytrees for jit, optax and orbax.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from adda_jax import ops

FEATURES = 500
NUM_CLASSES = 10


class Conv2d(nnx.Module):
  """A 2-D convolution (HWIO kernel, NHWC activations) through `ops.conv2d`: VALID, stride 1
  unless told otherwise."""

  def __init__(self, in_channels: int, out_channels: int, kernel: int, *, stride: int = 1,
               padding: str = "VALID", rngs: nnx.Rngs):
    init = nnx.initializers.lecun_normal()
    self.kernel = nnx.Param(init(rngs.params(), (kernel, kernel, in_channels, out_channels)))
    self.bias = nnx.Param(jnp.zeros((out_channels,)))
    self.stride, self.padding = stride, padding

  def __call__(self, x: jax.Array) -> jax.Array:
    return ops.conv2d(x, self.kernel[...], self.stride, self.padding) + self.bias[...]

  def pooled(self, x: jax.Array) -> jax.Array:
    """This (VALID, stride 1) convolution, then the 2x2 max-pool, as one op (fast on CPU)."""
    return ops.conv2d_max_pool_2x2(x, self.kernel[...], self.bias[...])


INPUT_NORMS = ("none", "instance")


def instance_normalise(images: jax.Array, eps: float = 1e-5) -> jax.Array:
  """Each image's channels to zero mean and unit variance over its pixels (no parameters:
  the first convolution's kernel and bias can take any scale and shift back)."""
  mean = images.mean(axis=(1, 2), keepdims=True)
  var = images.var(axis=(1, 2), keepdims=True)
  return (images - mean) * jax.lax.rsqrt(var + eps)


def _prepare(images: jax.Array, input_norm: str) -> jax.Array:
  return instance_normalise(images) if input_norm == "instance" else images


class LeNetEncoder(nnx.Module):
  """LeNet feature extractor: images [N, S, S, C] -> features [N, 500]."""

  def __init__(self, image_size: int, channels: int, conv_relu: bool = True,
               input_norm: str = "none", *, rngs: nnx.Rngs):
    self.conv_relu, self.input_norm = conv_relu, input_norm
    self.conv1 = Conv2d(channels, 20, 5, rngs=rngs)
    self.conv2 = Conv2d(20, 50, 5, rngs=rngs)
    side = ((image_size - 4) // 2 - 4) // 2
    self.fc = nnx.Linear(50 * side * side, FEATURES, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.blocks(x)[-1]

  def blocks(self, x: jax.Array) -> list[jax.Array]:
    """Each block's output, flattened: conv1 + pool, conv2 + pool, fc 500 (the features).
    Methods that act on several depths (CAN) read them all."""
    conv_activation = jax.nn.relu if self.conv_relu else (lambda y: y)
    block1 = conv_activation(self.conv1.pooled(_prepare(x, self.input_norm)))
    block2 = conv_activation(self.conv2.pooled(block1))
    flat = block2.reshape(block2.shape[0], -1)
    return [block1.reshape(block1.shape[0], -1), flat, jax.nn.relu(self.fc(flat))]


class DTNEncoder(nnx.Module):
  """DTN-style encoder: images [N, S, S, C] (S a multiple of 8) -> features [N, 500].

  Each conv block is normalised per example (group normalisation, 32 groups), not with batch
  statistics: no statistic is shared across images, so the choice between statistics shared
  by both domains and statistics per domain does not arise, a prediction never depends on the
  other images in its batch (or on the padding of the last evaluation batch), and nothing
  about the target is learned but through the losses, as the unsupervised setting requires.
  """
  WIDTHS = (64, 128, 256)

  def __init__(self, image_size: int, channels: int, input_norm: str = "none", *,
               rngs: nnx.Rngs):
    self.input_norm = input_norm
    sizes = (channels, *self.WIDTHS)
    for i, (a, b) in enumerate(zip(sizes, sizes[1:]), start=1):
      setattr(self, f"conv{i}", Conv2d(a, b, 5, stride=2, padding="SAME", rngs=rngs))
      setattr(self, f"norm{i}", nnx.GroupNorm(b, num_groups=32, rngs=rngs))
    side = image_size // 8
    self.fc = nnx.Linear(self.WIDTHS[-1] * side * side, FEATURES, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.blocks(x)[-1]

  def blocks(self, x: jax.Array) -> list[jax.Array]:
    """Each block's output, flattened: the three conv blocks, then fc 500 (the features)."""
    out, x = [], _prepare(x, self.input_norm)
    for i in range(1, len(self.WIDTHS) + 1):
      x = jax.nn.relu(getattr(self, f"norm{i}")(getattr(self, f"conv{i}")(x)))
      out.append(x.reshape(x.shape[0], -1))
    return out + [jax.nn.relu(self.fc(out[-1]))]


ENCODERS = ("lenet", "dtn")


class Classifier(nnx.Module):
  """Linear classifier C: features [N, 500] -> logits [N, num_classes] (10 digits)."""

  def __init__(self, num_classes: int = NUM_CLASSES, *, rngs: nnx.Rngs):
    self.fc = nnx.Linear(FEATURES, num_classes, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.fc(x)


class Discriminator(nnx.Module):
  """Domain discriminator D: inputs [N, in_features] -> one logit per example (source = 1).
  Its input is flattened, so it also sits on a conv block's output (CAN)."""

  def __init__(self, in_features: int, hidden: tuple[int, ...], *, rngs: nnx.Rngs):
    sizes = (in_features, *hidden)
    # Named attributes (fc1, fc2, ...) keep checkpoint keys readable strings.
    self.depth = len(hidden)
    for i, (a, b) in enumerate(zip(sizes, sizes[1:]), start=1):
      setattr(self, f"fc{i}", nnx.Linear(a, b, rngs=rngs))
    self.out = nnx.Linear(sizes[-1], 1, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x.reshape(x.shape[0], -1)
    for i in range(1, self.depth + 1):
      x = jax.nn.relu(getattr(self, f"fc{i}")(x))
    return self.out(x)[:, 0]


@dataclasses.dataclass(frozen=True)
class PureModule:
  """An NNX module seen as `init(key) -> params` and `apply(params, x) -> y` on plain dicts."""
  build: Callable[[nnx.Rngs], nnx.Module]

  def init(self, key: jax.Array) -> dict[str, Any]:
    return nnx.to_pure_dict(nnx.state(self.build(nnx.Rngs(params=key))))

  def apply(self, params: dict[str, Any], x: jax.Array, method: str = "__call__") -> Any:
    return getattr(nnx.merge(self._graphdef, params), method)(x)

  @functools.cached_property
  def _graphdef(self):
    return nnx.graphdef(nnx.eval_shape(lambda: self.build(nnx.Rngs(params=0))))


@dataclasses.dataclass(frozen=True)
class Networks:
  """The three ADDA networks for one input shape and discriminator setting."""
  encoder: PureModule
  classifier: PureModule
  discriminator: PureModule


def make_networks(image_size: int, channels: int, disc_input: str,
                  disc_hidden: tuple[int, ...], conv_relu: bool = True,
                  num_classes: int = NUM_CLASSES, encoder: str = "lenet",
                  input_norm: str = "none") -> Networks:
  """C, D and the encoder `encoder` ("lenet", or "dtn", which has no conv_relu choice), its
  inputs instance-normalised or not (`input_norm`)."""
  disc_in = {"features": FEATURES, "logits": num_classes}[disc_input]
  if encoder == "dtn":
    build = lambda rngs: DTNEncoder(image_size, channels, input_norm, rngs=rngs)
  else:
    build = lambda rngs: LeNetEncoder(image_size, channels, conv_relu, input_norm, rngs=rngs)
  return Networks(
      encoder=PureModule(build),
      classifier=PureModule(lambda rngs: Classifier(num_classes, rngs=rngs)),
      discriminator=discriminator(disc_in, disc_hidden),
  )


def discriminator(in_features: int, hidden: tuple[int, ...]) -> PureModule:
  return PureModule(lambda rngs: Discriminator(in_features, tuple(hidden), rngs=rngs))


def block_sizes(nets: Networks, image_size: int, channels: int) -> list[int]:
  """The flattened width of each encoder block's output (`LeNetEncoder.blocks`)."""
  params = jax.eval_shape(nets.encoder.init, jax.random.key(0))
  images = jax.ShapeDtypeStruct((1, image_size, image_size, channels), jnp.float32)
  blocks = jax.eval_shape(lambda p, x: nets.encoder.apply(p, x, "blocks"), params, images)
  return [b.shape[1] for b in blocks]
