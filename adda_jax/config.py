"""Run configuration: one frozen dataclass, every protocol choice an explicit, documented field.

Defaults follow the ADDA paper (Tzeng et al. 2017) where it is specific, and the authors' released
code (github.com/erictzeng/adda, scripts/svhn-mnist.sh) where the paper is silent:

- Pretraining: Adam lr 1e-3 (beta1 0.9), batch 128, 10,000 steps, L2 weight decay 2.5e-5 on
  the encoder's and classifier's kernels (the code's slim `l2_regularizer`). The paper names no
  pretraining solver; `pretrain_solver="caffe_lenet"` uses the one Caffe ships with the LeNet
  the paper builds on (examples/mnist/lenet_solver.prototxt): SGD with momentum 0.9, rate 0.01
  decayed by Caffe's "inv" policy (gamma 1e-4, power 0.75), weight decay 5e-4 on every
  parameter, biases at twice the rate (the prototxt's `lr_mult: 2`). Caffe's own batch is 64;
  ours stays `batch_size`. The `pretrain_lr`, `pretrain_b1` and `pretrain_weight_decay` fields
  are Adam's and do not apply to it.
- Adaptation: Adam lr 2e-4, beta1 0.5 for both D and M_t (separate states), batch 128 from each
  domain, 10,000 steps, GAN (inverted label) mapping loss, M_t initialised from M_s.
- Encoder: the released TF code's LeNet, a ReLU after each conv block and after fc 500
  (`conv_relu=True`). The paper names Caffe's LeNet as its base, which has the fc ReLU only:
  `conv_relu=False`. Measured over seeds 0-9 on an H100 (README), the code's encoder reaches
  the paper's MNIST<->USPS numbers (88.0 / 88.5 against 89.4 / 90.1) and Caffe's does not
  (82.0 / 83.8), so the paper's figures evidently came from the code's network.
- D: 500-500-1 MLP with ReLU on the 500-d encoder features (paper). The code fed D the 10-d
  classifier logits: `disc_input="logits"`.
- D and M_t are updated alternately (D first, then M_t against the updated D), as in the paper's
  description; the released code ran both updates from one forward pass, each against the
  other's old parameters: `adapt_update="simultaneous"`.
- MNIST<->USPS: the paper's 2,000 MNIST / 1,800 USPS training subsets (fixed `subset_seed`);
  `source_subset=None, target_subset=None` uses the full sets.
- Evaluation on the target *test* split; the released code evaluated on the target train split:
  `eval_split="train"`.
- Input: 28x28 gray in [0, 1]; `image_size=32, channels=3` keeps colour for the colour pairs.
  The released code fed gray [0, 255] pixels at 32x32 (its LeNet's `default_image_size`, and
  its MNIST/USPS readers' range): `image_size=32, pixel_scale=255`. Under Adam the range is not
  cosmetic: the first layer's weight steps are the same size either way, so at 255 each step
  moves the features 255 times as far, in both stages.
- Batches are sampled uniformly with replacement from the device-resident training set; the
  draw for step s depends only on (seed, stage, s), which makes resumed runs bit-exact.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from adda_jax.errors import UserError
from adda_jax.data.domains import DIGITS
from adda_jax.losses import ADVERSARIAL_LOSSES, MMD_KERNELS
from adda_jax.models import ENCODERS, INPUT_NORMS
from adda_jax.methods import REGISTRY, stages_for
from adda_jax.methods.adda import SHARINGS
from adda_jax.methods.self_training import OPTIONS as SELF_TRAINING_OPTIONS
from adda_jax.methods.base import METHOD_OPTIONS, PRETRAIN_FIELDS
from adda_jax.validators import NEEDS_SOURCE_VAL, PREFERS

PRETRAIN_SOLVERS = ("adam", "caffe_lenet")
DISC_INPUTS = ("features", "logits")
ADAPT_UPDATES = ("alternating", "simultaneous")
EVAL_SPLITS = ("test", "train")

# Fields that only change how a run is observed or stored, not what it computes.
BOOKKEEPING_FIELDS = ("log_every", "checkpoint_every", "keep_checkpoints", "monitor_target",
                      "select")


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything that determines a run's result (plus how it is logged and checkpointed)."""
  pair: str
  source: str  # A built-in domain, an image folder or a TFDS name (adda_jax/data/domains.py).
  target: str
  class_names: tuple[str, ...] = DIGITS  # The source's classes; the target's are matched.
  method: str = "adda"
  seed: int = 0
  # Data protocol.
  image_size: int = 28
  channels: int = 1
  pixel_scale: float = 1.0  # Pixels lie in [0, pixel_scale].
  source_subset: int | None = None
  # Source training images held out of every training batch, for the label-free validator
  # `source_accuracy` (0: none, every source image trains, as the papers' protocols do).
  source_val_size: int = 0
  target_subset: int | None = None
  subset_seed: int = 0
  eval_split: str = "test"
  # Networks.
  encoder: str = "lenet"  # The paper's LeNet, or "dtn": the stronger net for 32x32 RGB.
  input_norm: str = "none"  # "instance": each image standardised per channel (DIRT-T's).
  conv_relu: bool = True  # LeNet's.
  disc_input: str = "features"
  disc_hidden: tuple[int, ...] = (500, 500)
  adversarial_loss: str = "gan"
  adapt_update: str = "alternating"
  # Method options (each read by some methods only; see adda_jax/methods/).
  sharing: str = "untied"  # ADDA: untied (the paper), tied or partial encoder weights.
  domain_weight: float = 1.0  # Weight of the adversarial term of joint methods (DANN: max).
  mmd_kernel: str = "gaussian"  # DDC: one Gaussian (median bandwidth) or DAN's five.
  mmd_weight: float = 0.25  # DDC's lambda.
  target_im_weight: float = 0.0  # ADDA untied: weight of the target IM loss (0: the paper).
  # Self-training with a mean teacher after the method's last stage (0 steps: none); see
  # adda_jax/methods/self_training.py. The other values are read only when it runs, and
  # default to the literature's: FixMatch's 0.95 threshold, mean teacher's 0.999 decay, a
  # 2-pixel shift (the digits' border), 0.1 noise; label smoothing off (docs/recipe.md).
  self_train_steps: int = 0
  self_train_lr: float = 1e-4
  pseudo_threshold: float = 0.95
  class_balanced: bool = False
  teacher_decay: float = 0.999
  consistency_weight: float = 1.0
  pseudo_weight: float = 1.0  # Weight of the pseudo-label cross-entropy (0: mean teacher only).
  self_train_source_weight: float = 1.0  # Weight of the labelled source cross-entropy.
  self_train_im_weight: float = 0.0  # Weight of the IM loss on the student's target batch.
  # Virtual adversarial training on the student's target view (0: off); the radius is the
  # perturbation's L2 norm per image for pixels in [0, 1] (DIRT-T's released default 3.5).
  vat_weight: float = 0.0
  vat_radius: float = 3.5
  label_smoothing: float = 0.0
  augment_shift: int = 2
  augment_noise: float = 0.1
  augment_scale: float = 1.0  # Random zoom by up to this factor either way (1: none).
  # Optimisation.
  batch_size: int = 128
  pretrain_solver: str = "adam"
  pretrain_steps: int = 10_000
  pretrain_lr: float = 1e-3
  pretrain_b1: float = 0.9
  pretrain_weight_decay: float = 2.5e-5
  # Stage 1's regularisers (the paper uses neither): label smoothing of its cross-entropy, and
  # a random translation of its images by up to this many pixels and a random zoom by up to
  # this factor either way (adda_jax/augment.py).
  pretrain_label_smoothing: float = 0.0
  pretrain_augment_shift: int = 0
  pretrain_augment_scale: float = 1.0
  adapt_steps: int = 10_000
  adapt_lr: float = 2e-4
  adapt_b1: float = 0.5
  # Bookkeeping.
  log_every: int = 500
  checkpoint_every: int = 2_000
  keep_checkpoints: int = 2
  # Measure target accuracy at each progress line (reads target labels: watching only).
  monitor_target: bool = True
  # Also keep, and report beside the last step's, the final stage's model at the progress line
  # this label-free validator prefers (adda_jax/validators.py); "" keeps the last step only.
  select: str = ""

  def replace(self, **changes: Any) -> "Config":
    return dataclasses.replace(self, **changes)

  def to_json(self) -> dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, data: dict[str, Any]) -> "Config":
    # Runs saved before a field existed used its default.
    data = {**data, "disc_hidden": tuple(data["disc_hidden"]),
            "class_names": tuple(data.get("class_names", DIGITS))}
    return cls(**data)

  def result_fields(self) -> dict[str, Any]:
    """The fields that decide the numbers a run produces."""
    return {k: v for k, v in self.to_json().items() if k not in BOOKKEEPING_FIELDS}

  def pretrain_fields(self) -> dict[str, Any]:
    """The fields that decide the pretrained source model (stage 1, shared by every method
    but the oracle): runs that agree on them can share it."""
    return self.fields(PRETRAIN_FIELDS)

  def fields(self, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(self, name) for name in names}

  def validate(self) -> "Config":
    """Raises UserError with a one-line message for any value that cannot work."""
    _check_types(self)
    _choice("method", self.method, tuple(REGISTRY))
    _choice("sharing", self.sharing, SHARINGS)
    _choice("MMD kernel", self.mmd_kernel, MMD_KERNELS)
    _choice("pretrain solver", self.pretrain_solver, PRETRAIN_SOLVERS)
    _choice("adversarial loss", self.adversarial_loss, ADVERSARIAL_LOSSES)
    _choice("discriminator input", self.disc_input, DISC_INPUTS)
    _choice("adapt update", self.adapt_update, ADAPT_UPDATES)
    _choice("eval split", self.eval_split, EVAL_SPLITS)
    if self.select:
      _choice("select", self.select, tuple(PREFERS))
    if self.select in NEEDS_SOURCE_VAL and not self.source_val_size:
      raise UserError(f"--select {self.select} needs held-out source images: add "
                      f"--source-val-size N")
    if not isinstance(self.source_val_size, int) or self.source_val_size < 0:
      raise UserError(f"source_val_size must be a whole number >= 0, not "
                      f"{self.source_val_size!r}")
    _choice("channels", self.channels, (1, 3))
    for name in ("batch_size", "pretrain_steps", "adapt_steps", "log_every",
                 "checkpoint_every", "keep_checkpoints"):
      _positive_int(name, getattr(self, name))
    for name in ("source_subset", "target_subset"):
      if getattr(self, name) is not None:
        _positive_int(name, getattr(self, name))
    for name in ("self_train_steps", "augment_shift", "pretrain_augment_shift"):
      if isinstance(getattr(self, name), bool) or getattr(self, name) < 0:
        raise UserError(f"--{name.replace('_', '-')} must be a whole number >= 0, "
                        f"got {getattr(self, name)!r}")
    if not 0 <= self.pseudo_threshold <= 1:
      raise UserError(f"--pseudo-threshold is a probability in [0, 1], got "
                      f"{self.pseudo_threshold!r}")
    if not 0 <= self.seed <= MAX_SEED:
      raise UserError(f"--seed must be an integer in 0..{MAX_SEED} (JAX seeds are 32-bit), "
                      f"got {self.seed}")
    for name in ("augment_scale", "pretrain_augment_scale"):
      value = getattr(self, name)
      if not (math.isfinite(value) and value >= 1):
        raise UserError(f"--{name.replace('_', '-')} is a zoom factor >= 1 (1: no zoom), "
                        f"got {value!r}")
    for name in ("pretrain_lr", "adapt_lr", "self_train_lr", "pixel_scale", "vat_radius"):
      value = getattr(self, name)
      if not (math.isfinite(value) and value > 0):
        raise UserError(f"--{name.replace('_', '-')} must be a positive finite number, "
                        f"got {value!r}")
    for name in ("pretrain_b1", "adapt_b1", "teacher_decay", "label_smoothing",
                 "pretrain_label_smoothing"):
      if not 0 <= getattr(self, name) < 1:
        raise UserError(f"{name} must lie in [0, 1), got {getattr(self, name)!r}")
    for name in ("pretrain_weight_decay", "domain_weight", "mmd_weight", "target_im_weight",
                 "consistency_weight", "pseudo_weight", "self_train_source_weight",
                 "self_train_im_weight", "vat_weight", "augment_noise"):
      value = getattr(self, name)
      if not (math.isfinite(value) and value >= 0):
        raise UserError(f"--{name.replace('_', '-')} must be a finite number >= 0, "
                        f"got {value!r}")
    _choice("encoder", self.encoder, ENCODERS)
    _choice("input_norm", self.input_norm, INPUT_NORMS)
    if self.encoder not in REGISTRY[self.method].encoders:
      raise UserError(f"--method {self.method} trains only the "
                      f"{', '.join(REGISTRY[self.method].encoders)} encoder; drop --encoder "
                      f"{self.encoder}")
    if self.encoder == "dtn" and (self.image_size < 16 or self.image_size % 8):
      raise UserError(f"--image-size must be a multiple of 8 and at least 16 for the DTN "
                      f"encoder (three stride-2 convolutions), got {self.image_size}")
    # LeNet: two VALID 5x5 convolutions, each followed by a 2x2 pool that needs an even side.
    if self.encoder == "lenet" and (self.image_size < 16 or self.image_size % 4):
      raise UserError(f"--image-size must be a multiple of 4 and at least 16 for LeNet (two "
                      f"5x5 convolutions, each followed by a 2x2 pool), got {self.image_size}")
    if len(set(self.class_names)) != len(self.class_names) or len(self.class_names) < 2:
      raise UserError(f"a run needs at least two distinct classes, got {self.class_names}")
    if any(h <= 0 for h in self.disc_hidden):
      raise UserError(f"discriminator hidden sizes must be positive integers, "
                      f"got {self.disc_hidden}")
    _check_method_options(self)
    return self

  def stage_fields(self) -> set[str]:
    """The fields the method's stages read."""
    return {f for stage in stages_for(self) for f in stage.fields}


MAX_SEED = 2**32 - 1


def _check_types(cfg: Config) -> None:
  """Each field holds a value of its annotated type (a config.json edited by hand, or a field
  renamed, must not reach the training code as a string)."""
  hints = typing.get_type_hints(Config)
  for field in dataclasses.fields(cfg):
    value = getattr(cfg, field.name)
    if not _is_instance(value, hints[field.name]):
      raise UserError(f"config field {field.name} must be of type "
                      f"{_type_name(hints[field.name])}, got {value!r}")


def _is_instance(value: Any, kind: Any) -> bool:
  args = typing.get_args(kind)
  if typing.get_origin(kind) in (typing.Union, types.UnionType):
    return any(_is_instance(value, arg) for arg in args)
  if typing.get_origin(kind) is tuple:
    return isinstance(value, tuple) and all(_is_instance(v, args[0]) for v in value)
  if isinstance(value, bool) and kind is not bool:
    return False  # bool is an int to Python, never a count or a rate here.
  if kind is float:
    return isinstance(value, (int, float))
  return isinstance(value, kind)


def _type_name(kind: Any) -> str:
  return getattr(kind, "__name__", None) or str(kind)


def _check_method_options(cfg: Config) -> None:
  """Refuses a method option set away from its default for a method that does not read it."""
  read, default = cfg.stage_fields(), Config(pair="", source="", target="")
  for name in METHOD_OPTIONS:
    if name not in read and getattr(cfg, name) != getattr(default, name):
      if not cfg.self_train_steps and name in SELF_TRAINING_OPTIONS:
        raise UserError(f"--{name.replace('_', '-')} is read only by self-training: add "
                        f"--self-train-steps N, or drop it")
      raise UserError(f"--{name.replace('_', '-')} is not read by --method {cfg.method} with "
                      f"these settings; drop it")


def _choice(what: str, value: Any, options: tuple) -> None:
  if value not in options:
    raise UserError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, options))}")


def _positive_int(name: str, value: Any) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise UserError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
