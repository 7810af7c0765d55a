"""What a method is to the runner: a name, the config fields it reads, and its stages.

A `Stage` is everything the runner needs and nothing more: its checkpoint folder, the config
fields it reads (so stage reuse and workdir checks stay exact), the batches it samples each
step, how to build its initial state (from keys and the finished states of earlier stages),
one pure step, and which parameters predict the target. The runner (`adda_jax/runner.py`)
does the rest alike for every method: device placement, batch sampling inside the jitted
call, donation, checkpoints and resume, the NaN stop, progress lines and the collapse watch.

Target labels reach a step only through the "target_labelled" batches, which only a method
marked `uses_target_labels` may ask for (the oracle upper bound); "target" batches carry
images alone.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Mapping

import jax

from adda_jax import steps
from adda_jax.augment import augment
from adda_jax.models import ENCODERS, Networks

if TYPE_CHECKING:
  from adda_jax.config import Config

PyTree = Any
Batches = Mapping[str, jax.Array]
Earlier = Mapping[str, PyTree]  # The finished states of the stages before, by stage name.
Model = tuple[PyTree, PyTree]  # (encoder params, classifier params): C(M(x)).

# What each kind of batch holds; the runner fills `Batches` with exactly these keys.
DATA = {
    "source": ("source_images", "source_labels"),
    "target": ("target_images",),
    "target_labelled": ("target_images", "target_labels"),
}
# The fields every stage reads: the data, the encoder, the batch and the seed.
COMMON_FIELDS = ("pair", "source", "target", "class_names", "seed", "image_size", "channels",
                 "pixel_scale", "source_subset", "source_val_size", "subset_seed", "conv_relu",
                 "encoder", "input_norm", "batch_size")
# Stage 1's optional regularisers (off in the paper): ablations name them as arms.
PRETRAIN_REGULARISERS = ("pretrain_label_smoothing", "pretrain_augment_shift",
                         "pretrain_augment_scale")
PRETRAIN_FIELDS = COMMON_FIELDS + ("pretrain_solver", "pretrain_steps", "pretrain_lr",
                                   "pretrain_b1", "pretrain_weight_decay",
                                   *PRETRAIN_REGULARISERS)
# Fields of stage 2 that every method reading them interprets alike.
ADAPT_FIELDS = PRETRAIN_FIELDS + ("method", "target_subset", "adapt_steps", "adapt_lr",
                                  "adapt_b1")
# Options some methods read and others do not: a config whose method does not read one must
# leave it at its default (`--sharing` with dann means nothing, and is refused).
METHOD_OPTIONS = ("sharing", "adversarial_loss", "disc_input", "adapt_update",
                  "domain_weight", "mmd_kernel", "mmd_weight", "target_im_weight",
                  # Self-training's, read only with self_train_steps > 0.
                  "self_train_lr", "pseudo_threshold", "class_balanced", "teacher_decay",
                  "consistency_weight", "pseudo_weight", "self_train_source_weight",
                  "self_train_im_weight", "vat_weight", "vat_radius", "label_smoothing",
                  "augment_shift", "augment_noise", "augment_scale")


@dataclasses.dataclass(frozen=True)
class Stage:
  name: str  # Checkpoint folder and log prefix.
  label: str  # The method name on the results row of the model this stage ends with.
  fields: tuple[str, ...]
  data: tuple[str, ...]  # Keys of DATA, sampled each step in this order.
  num_steps: int
  init: Callable[[jax.Array, Earlier], PyTree]
  step: Callable[[PyTree, PyTree, Batches, jax.Array], tuple[PyTree, dict[str, jax.Array]]]
  predictor: Callable[[PyTree, PyTree], Model]  # (state, frozen) -> the target model.
  frozen: Callable[[Earlier], PyTree] = lambda earlier: {}  # Read by `step`, never trained.
  watch_discriminator: bool = False  # Its metrics have "disc_accuracy" worth watching.
  # The encoder source images go through once this stage is done, for pictures of the
  # feature space; None: the predictor's (one encoder for both domains).
  source_encoder: Callable[[PyTree, PyTree], PyTree] | None = None
  # The method's own warnings at each progress line (a GAN's mode collapse, say): messages
  # the runner logs and keeps in the summary.
  alarms: Callable[[dict[str, float]], list[str]] | None = None
  # Called after each checkpoint with (state, frozen, step, workdir): pictures of progress.
  after_checkpoint: Callable[[PyTree, PyTree, int, str], None] | None = None
  # Folders it writes in the workdir besides its checkpoints (deleted with them by --fresh).
  outputs: tuple[str, ...] = ()
  # (frozen, {name: DeviceData}) -> the datasets the step samples from, computed once on the
  # device before training: work on frozen parameters done per image once instead of per
  # step (ADDA: M_s's features of every source image). None: the datasets as they are.
  prepare: Callable[[PyTree, Mapping[str, steps.DeviceData]],
                    dict[str, steps.DeviceData]] | None = None

  def inputs(self, frozen: PyTree, datasets: Mapping[str, steps.DeviceData]
             ) -> dict[str, steps.DeviceData]:
    """The datasets this stage's step samples from (prepared, if it prepares them)."""
    chosen = {name: datasets[name] for name in self.data}
    return chosen if self.prepare is None else self.prepare(frozen, chosen)

  def encoders(self, state: PyTree, frozen: PyTree) -> tuple[PyTree, PyTree]:
    """(source encoder, target encoder) after this stage."""
    target = self.predictor(state, frozen)[0]
    return (target if self.source_encoder is None else self.source_encoder(state, frozen),
            target)


@dataclasses.dataclass(frozen=True)
class Method:
  """A method: its stages for a config (at most two: the shared source pretraining, then
  the method's own stage; self-training may follow them). The config fields it reads are
  those its stages declare."""
  name: str
  summary: str  # One line for --help and the README's table.
  stages: Callable[[Config, Networks], list[Stage]]
  uses_target_labels: bool = False
  encoders: tuple[str, ...] = ENCODERS  # The `encoder` settings it can train.


def pretrain_optimizer(cfg: Config):
  if cfg.pretrain_solver == "caffe_lenet":
    return steps.caffe_lenet_solver()
  return steps.pretrain_optimizer(cfg.pretrain_lr, cfg.pretrain_b1, cfg.pretrain_weight_decay)


def supervised_stage(cfg: Config, nets: Networks, name: str, label: str, data: str,
                     fields: tuple[str, ...]) -> Stage:
  """Stage 1 of every method (source pretraining, on "source"), and the oracle's only stage
  (the same training on "target_labelled")."""
  tx = pretrain_optimizer(cfg)
  images, labels = DATA[data]

  def step(state, frozen, batches, key):
    return steps.pretrain_step(nets, tx, state,
                               augment(key, batches[images], cfg.pretrain_augment_shift,
                                       max_scale=cfg.pretrain_augment_scale),
                               batches[labels], cfg.pretrain_label_smoothing)

  return Stage(name=name, label=label, fields=fields, data=(data,), num_steps=cfg.pretrain_steps,
               init=lambda key, earlier: steps.init_pretrain(nets, tx, key), step=step,
               predictor=lambda state, frozen: (state["encoder"], state["classifier"]))


def source_pretraining(cfg: Config, nets: Networks) -> Stage:
  """The shared stage 1: M_s and C on labelled source data. Every method but the oracle
  starts from it, so a sweep over methods trains it once per pair, seed and setting."""
  return supervised_stage(cfg, nets, "pretrain", "source_only", "source", PRETRAIN_FIELDS)
