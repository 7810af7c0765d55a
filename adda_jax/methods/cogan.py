"""CoGAN: coupled generative adversarial networks (Liu & Tuzel, NIPS 2016), the study's example
of generative adaptation and of partial weight sharing.

One noise vector z goes through two generators whose layers are shared except the last (a
per-domain output layer), so the pair (G_s(z), G_t(z)) renders "the same digit" in both
domains. Two discriminators mirror them: a per-domain first conv block, then shared layers
(LeNet's second conv block and fc 500), a real/fake head, and a classifier head C trained on
labelled source images. Because the discriminators share everything above their first block,
the classifier also reads target images: the target prediction is C on the target
discriminator's features, C(D_t-features(x_t)). With L the binary cross-entropy, d_s, d_t the
real/fake logits and f_s, f_t the 500-d shared features,

  min_D  sum_dom [L(d_dom(x_dom), 1) + L(d_dom(G_dom(z)), 0)]
         + CLASS_WEIGHT * CE(C(f_s(x_s)), y_s) + FEATURE_WEIGHT * |f_s(G_s(z)) - f_t(G_t(z))|^2
  min_G  sum_dom L(d_dom(G_dom(z)), 1)

D steps first, then G against the updated D, each with its own noise batch. Settings of the authors'
release for MNIST<->USPS (cogan_pytorch: mnist2usps_small_cogan.yaml and its trainer):
generator 100 -> 1024 (4x4) -> 512 -> 256 -> 128 transposed convs, each with batch norm (no
affine part) and PReLU, then a per-domain 1-channel layer and a sigmoid (4 -> 7 -> 13 -> 25
-> 28 pixels); Adam 2e-4, beta1 0.5 (stage 2's `adapt_lr`, `adapt_b1`), L2 weight decay 5e-4
on both networks, classifier weight 10, feature-matching weight 0.01, batch 64 (our sweep
passes `--batch-size 64`), 10,000 iterations (`--adapt-steps`).

Differences, documented: D is this project's LeNet (ReLU after fc 500 and, with the default
`conv_relu`, after each conv block; the release has no activation after the conv blocks and a
PReLU after fc 500), so the target predictor is an ordinary LeNet encoder + classifier and
every evaluation, report and checkpoint path stays the shared one; the real/fake head is one
logit with a sigmoid (the release: two logits and a softmax, the same model); images lie in
[0, pixel_scale] and the generators' sigmoid is scaled to match; inputs other than 28 pixels
get the 28-pixel samples resized; initialisation is Flax's (LeCun normal; the release:
Xavier). The release evaluated on the USPS *training* subset; our tables use the target test
split (`--eval-split train` gives theirs).

Failure is visible: the discriminator watch reports D accuracy pinned at 1 or 0.5, and the
stage raises an alarm when the generator loss explodes or the samples of a batch become
nearly identical (mode collapse), in the log and the summary. Sample grids of a fixed noise
batch go to WORKDIR/samples/ at every checkpoint.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from adda_jax import losses, ops
from adda_jax.methods.base import COMMON_FIELDS, Method, Stage
from adda_jax.models import FEATURES, Networks, PureModule, discriminator

if TYPE_CHECKING:
  from adda_jax.config import Config

PyTree = Any
LATENT = 100
WIDTHS = (1024, 512, 256, 128)
CLASS_WEIGHT = 10.0
FEATURE_WEIGHT = 0.01
WEIGHT_DECAY = 5e-4
GRID_SIDE = 8  # The sample grid: 8 noise vectors per row pair, 8 row pairs.
SAMPLES_DIR = "samples"
COLLAPSED_SPREAD = 0.1  # Fake-batch pixel spread below this fraction of the real one.
EXPLODED_LOSS = 20.0
FIELDS = COMMON_FIELDS + ("method", "target_subset", "adapt_steps", "adapt_lr", "adapt_b1")


def _batch_norm(x: jax.Array) -> jax.Array:
  """Batch norm without an affine part or running averages (the release's `affine=False`,
  always in training mode, also when drawing grids)."""
  mean = x.mean(axis=(0, 1, 2), keepdims=True)
  return (x - mean) * jax.lax.rsqrt(x.var(axis=(0, 1, 2), keepdims=True) + 1e-5)


class PReLU(nnx.Module):
  def __init__(self):
    self.slope = nnx.Param(jnp.full((), 0.25, jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    return jnp.where(x >= 0, x, self.slope[...] * x)


class TransposedConv(nnx.ConvTranspose):
  """flax's ConvTranspose (its parameters, their initialisation, its values) computed by
  `ops.conv_transpose`, whose kernel gradient on CPU is a matmul instead of XLA:CPU's
  dilated convolution (adda_jax/ops.py): a CoGAN step at the release's widths and batch 64
  went from 21.7-22.4 s to 0.72-0.84 s on this project's 2-core CPU (docs/speed.md)."""

  def __call__(self, x: jax.Array) -> jax.Array:
    return ops.conv_transpose(x, self.kernel[...], self.strides[0], self.padding) + self.bias[...]


def _transposed(in_features: int, out_features: int, kernel: int, stride: int, padding: int,
                rngs: nnx.Rngs) -> TransposedConv:
  """A transposed conv sized like PyTorch's ConvTranspose2d(kernel, stride, padding): output
  side (side - 1) * stride - 2 * padding + kernel."""
  pad = kernel - 1 - padding
  return TransposedConv(in_features, out_features, (kernel, kernel), (stride, stride),
                        padding=((pad, pad), (pad, pad)), rngs=rngs)


class SharedGenerator(nnx.Module):
  """z [N, LATENT] -> shared 128-channel 25x25 maps: every generator layer but the last."""

  def __init__(self, widths: tuple[int, ...], *, rngs: nnx.Rngs):
    self.layers = nnx.List([_transposed(LATENT, widths[0], 4, 1, 0, rngs)] + [
        _transposed(a, b, 3, 2, 1, rngs) for a, b in zip(widths, widths[1:])])
    self.activations = nnx.List([PReLU() for _ in widths])

  def __call__(self, z: jax.Array) -> jax.Array:
    x = z[:, None, None, :]
    for layer, activation in zip(self.layers, self.activations):
      x = activation(_batch_norm(layer(x)))
    return x


class OutputLayer(nnx.Module):
  """One domain's last generator layer: 128 maps (25x25) -> 1 channel (28x28) in (0, 1)."""

  def __init__(self, in_features: int, *, rngs: nnx.Rngs):
    self.layer = _transposed(in_features, 1, 6, 1, 1, rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(self.layer(x))


def generators() -> tuple[PureModule, PureModule]:
  """(the shared layers, one domain's output layer: each domain has its own parameters).
  WIDTHS is read here, so tests can shrink the generator to keep CPU time low."""
  widths = WIDTHS
  return (PureModule(lambda rngs: SharedGenerator(widths, rngs=rngs)),
          PureModule(lambda rngs: OutputLayer(widths[-1], rngs=rngs)))


def generate(shared: PureModule, output: PureModule, gen: PyTree, z: jax.Array,
             image_size: int, channels: int, pixel_scale: float) -> tuple[jax.Array, jax.Array]:
  """(source images, target images) for the same noise, in the data's shape and range."""
  maps = shared.apply(gen["shared"], z)

  def render(params):
    x = output.apply(params, maps)
    if image_size != x.shape[1]:
      x = jax.image.resize(x, (x.shape[0], image_size, image_size, 1), "bilinear")
    return jnp.repeat(x, channels, axis=-1) * pixel_scale

  return render(gen["source_out"]), render(gen["target_out"])


def domain_encoder(disc: PyTree, domain: str) -> PyTree:
  """A LeNet encoder's parameters: the domain's own first conv block, the shared rest."""
  return {"conv1": disc[f"{domain}_conv1"], **disc["shared"]}


def _weight_decay(tx: optax.GradientTransformation) -> optax.GradientTransformation:
  """The release's PyTorch Adam(weight_decay=5e-4): L2 added to the gradient before Adam."""
  return optax.chain(optax.add_decayed_weights(WEIGHT_DECAY), tx)


class CoGAN:
  """The networks and objectives of one config; `stage()` is what the runner trains."""

  def __init__(self, cfg: Config, nets: Networks):
    self.cfg, self.nets = cfg, nets
    self.shared, self.output = generators()
    self.real_fake = discriminator(FEATURES, ())  # One linear logit on the 500-d features.
    self.tx_gen = _weight_decay(optax.adam(cfg.adapt_lr, b1=cfg.adapt_b1))
    self.tx_disc = _weight_decay(optax.adam(cfg.adapt_lr, b1=cfg.adapt_b1))
    self._draw_compiled = jax.jit(self.draw)  # For the grids: compiled once per run.

  def init(self, key: jax.Array, earlier=None) -> PyTree:
    keys = jax.random.split(key, 7)
    source, target = self.nets.encoder.init(keys[0]), self.nets.encoder.init(keys[1])
    disc = {"source_conv1": source["conv1"], "target_conv1": target["conv1"],
            "shared": {"conv2": source["conv2"], "fc": source["fc"]},
            "real_fake": self.real_fake.init(keys[2]),
            "classifier": self.nets.classifier.init(keys[3])}
    gen = {"shared": self.shared.init(keys[4]), "source_out": self.output.init(keys[5]),
           "target_out": self.output.init(keys[6])}
    return {"step": jnp.zeros((), jnp.int32), "gen": gen, "gen_opt": self.tx_gen.init(gen),
            "disc": disc, "disc_opt": self.tx_disc.init(disc)}

  def draw(self, gen: PyTree, z: jax.Array) -> tuple[jax.Array, jax.Array]:
    cfg = self.cfg
    return generate(self.shared, self.output, gen, z, cfg.image_size, cfg.channels,
                    cfg.pixel_scale)

  def features(self, disc: PyTree, domain: str, images: jax.Array) -> jax.Array:
    return self.nets.encoder.apply(domain_encoder(disc, domain), images)

  def logit(self, disc: PyTree, features: jax.Array) -> jax.Array:
    return self.real_fake.apply(disc["real_fake"], features)

  def classification(self, disc: PyTree, images: jax.Array, labels: jax.Array):
    """C on the source discriminator's features: (cross-entropy, accuracy)."""
    logits = self.nets.classifier.apply(disc["classifier"],
                                        self.features(disc, "source", images))
    return (optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(),
            (logits.argmax(-1) == labels).mean())

  def disc_loss(self, disc: PyTree, gen: PyTree, batches, z: jax.Array):
    fake_s, fake_t = jax.lax.stop_gradient(self.draw(gen, z))
    real_s = self.features(disc, "source", batches["source_images"])
    real_t = self.features(disc, "target", batches["target_images"])
    f_fake_s = self.features(disc, "source", fake_s)
    f_fake_t = self.features(disc, "target", fake_t)
    pairs = [(self.logit(disc, real), self.logit(disc, fake))
             for real, fake in ((real_s, f_fake_s), (real_t, f_fake_t))]
    adversarial = sum(losses.discriminator_loss(r, f) for r, f in pairs)
    accuracy = sum(losses.discriminator_accuracy(r, f) for r, f in pairs) / 2
    classification, class_accuracy = self.classification(disc, batches["source_images"],
                                                          batches["source_labels"])
    matching = jnp.sum((f_fake_s - f_fake_t) ** 2, axis=-1).mean()
    total = adversarial + CLASS_WEIGHT * classification + FEATURE_WEIGHT * matching
    return total, {"disc_loss": adversarial, "disc_accuracy": accuracy,
                   "source_loss": classification, "source_accuracy": class_accuracy,
                   "feature_distance": matching}

  def gen_loss(self, gen: PyTree, disc: PyTree, z: jax.Array):
    fake_s, fake_t = self.draw(gen, z)
    fooled = (losses.mapping_loss(self.logit(disc, self.features(disc, "source", fake_s)), "gan")
              + losses.mapping_loss(self.logit(disc, self.features(disc, "target", fake_t)),
                                    "gan"))
    return fooled, fake_s

  def step(self, state: PyTree, frozen: PyTree, batches, key: jax.Array):
    shape = (batches["source_images"].shape[0], LATENT)
    z_disc, z_gen = (jax.random.normal(k, shape) for k in jax.random.split(key))
    (_, metrics), grads = jax.value_and_grad(self.disc_loss, has_aux=True)(
        state["disc"], state["gen"], batches, z_disc)
    updates, disc_opt = self.tx_disc.update(grads, state["disc_opt"], state["disc"])
    disc = optax.apply_updates(state["disc"], updates)
    (g_loss, fake_s), grads = jax.value_and_grad(self.gen_loss, has_aux=True)(
        state["gen"], disc, z_gen)
    updates, gen_opt = self.tx_gen.update(grads, state["gen_opt"], state["gen"])
    gen = optax.apply_updates(state["gen"], updates)
    real = batches["source_images"]
    spread = fake_s.std(axis=0).mean() / (real.std(axis=0).mean() + 1e-8)
    return ({"step": state["step"] + 1, "gen": gen, "gen_opt": gen_opt, "disc": disc,
             "disc_opt": disc_opt},
            {**metrics, "gen_loss": g_loss, "sample_spread": spread})

  def draw_grid(self, state: PyTree, frozen: PyTree, step: int, workdir: str) -> None:
    """WORKDIR/samples/step_NNNNNN.png and latest.png: the same fixed noise every time."""
    folder = os.path.join(workdir, SAMPLES_DIR)
    os.makedirs(folder, exist_ok=True)
    z = jax.random.normal(jax.random.key(0), (GRID_SIDE * GRID_SIDE, LATENT))
    source, target = self._draw_compiled(state["gen"], z)
    scale = self.cfg.pixel_scale
    grid = paired_grid(np.asarray(source) / scale, np.asarray(target) / scale)
    for name in (f"step_{step:06d}.png", "latest.png"):
      _save_png(grid, os.path.join(folder, name))

  def stage(self) -> Stage:
    return Stage(name="cogan", label="cogan", fields=FIELDS, data=("source", "target"),
                 num_steps=self.cfg.adapt_steps, init=self.init, step=self.step,
                 predictor=lambda state, frozen: (domain_encoder(state["disc"], "target"),
                                                  state["disc"]["classifier"]),
                 source_encoder=lambda state, frozen: domain_encoder(state["disc"], "source"),
                 watch_discriminator=True, alarms=alarms, after_checkpoint=self.draw_grid,
                 outputs=(SAMPLES_DIR,))


def alarms(metrics: dict[str, float]) -> list[str]:
  """Mode collapse (a batch of near-identical samples) and an exploding generator loss."""
  found = []
  if metrics["sample_spread"] < COLLAPSED_SPREAD:
    found.append(f"generator mode collapse: the samples of a batch vary "
                 f"{metrics['sample_spread']:.3f}x as much as real images")
  if metrics["gen_loss"] > EXPLODED_LOSS:
    found.append(f"generator loss exploding ({metrics['gen_loss']:.1f})")
  return found


def paired_grid(source: np.ndarray, target: np.ndarray, side: int = GRID_SIDE) -> np.ndarray:
  """uint8 [H, W, C]: row pairs of `side` samples, the source rendering above the target
  rendering of the same noise, one pixel of gap between cells."""
  count, size, _, channels = source.shape
  rows = []
  for r in range(min(side, count // side)):
    for images in (source, target):
      cells = [np.pad(images[r * side + c], ((1, 1), (1, 1), (0, 0))) for c in range(side)]
      rows.append(np.concatenate(cells, axis=1))
  grid = np.concatenate(rows, axis=0)
  return (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)


def _save_png(grid: np.ndarray, path: str) -> None:
  from PIL import Image
  image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  image.save(path + ".tmp.png")
  os.replace(path + ".tmp.png", path)  # Readers never see half a PNG.


METHOD = Method(
    name="cogan",
    summary="coupled GANs (Liu & Tuzel 2016): paired generators and discriminators sharing "
            "weights; C on the target discriminator's features",
    stages=lambda cfg, nets: [CoGAN(cfg, nets).stage()],
    encoders=("lenet",),  # Its discriminators' shared layers are LeNet's.
)
