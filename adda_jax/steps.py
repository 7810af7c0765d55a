"""Pure training steps and their multi-step, device-resident drivers.

Each stage state is a plain dict pytree (step counter, parameters, optax states):

- pretrain: {"step", "encoder", "classifier", "opt"}
- adapt:    {"step", "target_encoder", "discriminator", "target_opt", "disc_opt"}

`pretrain_step`, `discriminator_step` and `target_step` are the single updates (jit them alone
for tests or custom loops); the methods in `adda_jax/methods/` build their stages from them.
`make_stage_call` builds, for any stage's step, a jitted function that runs several steps per
dispatch, sampling batches inside the compiled code from datasets that stay on the device,
and donates the incoming state's buffers; `run_calls` chains them and returns metrics
averaged on the device, so the host syncs only at logging/checkpoint boundaries.

How a call repeats its step depends on the backend. XLA:CPU runs while-loop bodies about 6x
slower than the same ops at top level (measured: LeNet pretraining 330 ms/step in a `lax.scan`
vs 46 ms unrolled, jax 0.10.2), so on CPU a call runs one step, or a few unrolled into
straight-line code. GPUs and TPUs have no such penalty and pay a fixed cost per dispatch, so
there a call runs a whole logging interval as a `lax.fori_loop` that compiles one step's body.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from adda_jax import losses, ops, xla_options
from adda_jax.models import Networks

PyTree = Any


class DeviceData(NamedTuple):
  """A training split held on the device: float images [N, S, S, C] and int labels [N]."""
  images: jax.Array
  labels: jax.Array


def sample_batch(data: DeviceData, key: jax.Array, batch_size: int,
                 constrain: Callable[[jax.Array], jax.Array]) -> tuple[jax.Array, jax.Array]:
  """A uniform draw with replacement; `constrain` lays the batch out over the device mesh."""
  index = jax.random.randint(key, (batch_size,), 0, data.images.shape[0])
  return constrain(data.images[index]), constrain(data.labels[index])


def kernel_mask(params: PyTree) -> PyTree:
  """True at weight kernels (decayed), False at biases (not), as in the authors' L2 setup."""
  return jax.tree_util.tree_map_with_path(
      lambda path, _: getattr(path[-1], "key", None) == "kernel", params)


def pretrain_optimizer(lr: float, b1: float, weight_decay: float) -> optax.GradientTransformation:
  """Adam on cross-entropy + L2: weight decay added to the gradient before Adam (coupled L2)."""
  return optax.chain(optax.masked(optax.add_decayed_weights(weight_decay), kernel_mask),
                     optax.adam(lr, b1=b1))


def caffe_lenet_solver(base_lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4,
                       gamma: float = 1e-4, power: float = 0.75) -> optax.GradientTransformation:
  """Caffe's SGD as its LeNet example sets it up: history = momentum * history
  + rate * lr_mult * (gradient + weight_decay * w), w -= history, with the "inv" rate
  base_lr * (1 + gamma * iteration) ** -power and lr_mult 2 on biases. The rate sits inside the
  momentum history, as in Caffe, so it is applied before `trace`."""
  def biases(params):
    return jax.tree.map(lambda is_kernel: not is_kernel, kernel_mask(params))

  return optax.chain(optax.add_decayed_weights(weight_decay),
                     optax.scale_by_schedule(lambda i: -base_lr * (1 + gamma * i) ** -power),
                     optax.masked(optax.scale(2.0), biases),
                     optax.trace(decay=momentum))


def adapt_optimizer(lr: float, b1: float) -> optax.GradientTransformation:
  return optax.adam(lr, b1=b1)


# ----------------------------------------------------------------------------- stage 1


def init_pretrain(nets: Networks, tx: optax.GradientTransformation, key: jax.Array) -> PyTree:
  enc_key, clf_key = jax.random.split(key)
  params = {"encoder": nets.encoder.init(enc_key), "classifier": nets.classifier.init(clf_key)}
  return {"step": jnp.zeros((), jnp.int32), **params, "opt": tx.init(params)}


def pretrain_step(nets: Networks, tx: optax.GradientTransformation, state: PyTree,
                  images: jax.Array, labels: jax.Array, label_smoothing: float = 0.0
                  ) -> tuple[PyTree, dict[str, jax.Array]]:
  """One supervised step of M_s and C on labelled source images (cross-entropy, with
  `label_smoothing` if given)."""
  params = {"encoder": state["encoder"], "classifier": state["classifier"]}

  def loss_fn(params):
    logits = nets.classifier.apply(params["classifier"],
                                   nets.encoder.apply(params["encoder"], images))
    if label_smoothing:  # Off, the integer-label loss keeps the paper's runs' rounding.
      return losses.smoothed_classification_loss(logits, labels, label_smoothing), logits
    return losses.classification_loss(logits, labels), logits

  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt = tx.update(grads, state["opt"], params)
  params = optax.apply_updates(params, updates)
  metrics = {"loss": loss, "accuracy": losses.accuracy(logits, labels)}
  return {"step": state["step"] + 1, **params, "opt": opt}, metrics


def default_steps_per_call() -> int:
  """1 on CPU, 500 (one default logging interval) on accelerators; see the module docstring."""
  return 1 if jax.default_backend() == "cpu" else 500


def default_rolled() -> bool:
  """Whether calls loop over their steps (accelerators) or unroll them (CPU)."""
  return jax.default_backend() != "cpu"


def _repeat(step_fn: Callable[[PyTree], tuple[PyTree, dict]], state: PyTree, num_steps: int,
            rolled: bool) -> tuple[PyTree, dict]:
  """Runs `step_fn` num_steps times; returns the state and the sums of its metrics.

  rolled: a `lax.fori_loop` (one compiled body, any num_steps); otherwise straight-line code.
  """
  if rolled:
    shapes = jax.eval_shape(step_fn, state)[1]
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def body(_, carry):
      state, totals = carry
      state, metrics = step_fn(state)
      return state, jax.tree.map(jnp.add, totals, metrics)

    return lax.fori_loop(0, num_steps, body, (state, zeros))
  totals = None
  for _ in range(num_steps):
    state, metrics = step_fn(state)
    totals = metrics if totals is None else jax.tree.map(jnp.add, totals, metrics)
  return state, totals


def run_calls(call: Callable[[PyTree, int], tuple[PyTree, dict]], state: PyTree,
              num_steps: int, steps_per_call: int,
              after_call: Callable[[PyTree, int], None] | None = None) -> tuple[PyTree, dict]:
  """Advances `state` by num_steps through `call`; returns metrics averaged over the steps.
  `after_call(state, n)` sees each call's result (the progress bar)."""
  totals, left = None, num_steps
  while left > 0:
    n = min(steps_per_call, left)
    state, sums = call(state, n)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    left -= n
    if after_call is not None:
      after_call(state, n)
  return state, jax.tree.map(lambda t: t / num_steps, totals)


# ----------------------------------------------------------------------------- stage 2


def discriminator_inputs(nets: Networks, disc_input: str, encoder: PyTree, classifier: PyTree,
                         images: jax.Array) -> jax.Array:
  """What D sees: the 500-d features (paper) or the classifier's 10-d logits (authors' code)."""
  features = nets.encoder.apply(encoder, images)
  return features if disc_input == "features" else nets.classifier.apply(classifier, features)


def init_adapt(nets: Networks, tx_target: optax.GradientTransformation,
               tx_disc: optax.GradientTransformation, source_encoder: PyTree,
               key: jax.Array) -> PyTree:
  """M_t starts as a copy of M_s; D starts fresh; each has its own optimiser state."""
  target_encoder = jax.tree.map(jnp.copy, source_encoder)
  discriminator = nets.discriminator.init(key)
  return {"step": jnp.zeros((), jnp.int32), "target_encoder": target_encoder,
          "discriminator": discriminator, "target_opt": tx_target.init(target_encoder),
          "disc_opt": tx_disc.init(discriminator)}


def discriminator_step(nets: Networks, tx: optax.GradientTransformation, params: PyTree,
                       opt: PyTree, source_inputs: jax.Array, target_inputs: jax.Array
                       ) -> tuple[PyTree, PyTree, dict[str, jax.Array]]:
  """One update of D to tell source (1) from target (0) representations."""
  target_inputs = lax.stop_gradient(target_inputs)

  def loss_fn(params):
    s = nets.discriminator.apply(params, source_inputs)
    t = nets.discriminator.apply(params, target_inputs)
    return losses.discriminator_loss(s, t), losses.discriminator_accuracy(s, t)

  (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt = tx.update(grads, opt, params)
  return optax.apply_updates(params, updates), opt, {"disc_loss": loss, "disc_accuracy": acc}


def target_forward(nets: Networks, disc_input: str, classifier: PyTree, params: PyTree,
                   target_images: jax.Array) -> tuple[jax.Array, Callable]:
  """M_t's forward to D's inputs, with its pull-back from those inputs to M_t's parameters."""
  return jax.vjp(lambda p: discriminator_inputs(nets, disc_input, p, classifier, target_images),
                 params)


def target_update(nets: Networks, tx: optax.GradientTransformation, loss_kind: str,
                  params: PyTree, opt: PyTree, discriminator: PyTree, target_inputs: jax.Array,
                  pull_back: Callable, im_weight: float = 0.0,
                  target_logits: Callable[[jax.Array], jax.Array] | None = None
                  ) -> tuple[PyTree, PyTree, dict[str, jax.Array]]:
  """One update of M_t to fool the (fixed) D, given M_t's forward from `target_forward`;
  with `im_weight`, plus that weight times the information maximisation loss of the target
  predictions (`target_logits` maps D's inputs to the frozen C's logits)."""
  def loss(x):
    mapping = losses.mapping_loss(nets.discriminator.apply(discriminator, x), loss_kind)
    if not im_weight:
      return mapping, {"mapping_loss": mapping}
    im = losses.information_maximisation_loss(target_logits(x))
    return mapping + im_weight * im, {"mapping_loss": mapping, "im_loss": im}

  (_, metrics), input_grads = jax.value_and_grad(loss, has_aux=True)(target_inputs)
  (grads,) = pull_back(input_grads)
  updates, opt = tx.update(grads, opt, params)
  return optax.apply_updates(params, updates), opt, metrics


def target_step(nets: Networks, tx: optax.GradientTransformation, loss_kind: str,
                disc_input: str, classifier: PyTree, params: PyTree, opt: PyTree,
                discriminator: PyTree, target_images: jax.Array
                ) -> tuple[PyTree, PyTree, dict[str, jax.Array]]:
  """One update of M_t to fool the (fixed) D with the chosen adversarial mapping loss."""
  forward = target_forward(nets, disc_input, classifier, params, target_images)
  return target_update(nets, tx, loss_kind, params, opt, discriminator, *forward)


def adapt_step(nets: Networks, tx_target, tx_disc, loss_kind: str, disc_input: str,
               frozen: PyTree, state: PyTree, source_images: jax.Array,
               target_images: jax.Array, simultaneous: bool = False
               ) -> tuple[PyTree, dict[str, jax.Array]]:
  """A discriminator step, then a target-encoder step against the updated D (alternating, the
  paper), or against the D before this step (simultaneous, the authors' released code)."""
  source_inputs = discriminator_inputs(nets, disc_input, frozen["source_encoder"],
                                       frozen["classifier"], source_images)
  return adapt_step_on_inputs(nets, tx_target, tx_disc, loss_kind, disc_input, frozen, state,
                              source_inputs, target_images, simultaneous)


def adapt_step_on_inputs(nets: Networks, tx_target, tx_disc, loss_kind: str, disc_input: str,
                         frozen: PyTree, state: PyTree, source_inputs: jax.Array,
                         target_images: jax.Array, simultaneous: bool = False,
                         im_weight: float = 0.0) -> tuple[PyTree, dict[str, jax.Array]]:
  """`adapt_step` given D's source inputs (the frozen M_s's features, or C's logits of them),
  which the training run computes once per source image (`source_inputs`).

  M_t's forward runs once and serves both updates: D trains on its output, and M_t's
  gradient is pulled back through it (M_t's output does not depend on D).
  """
  target_inputs, pull_back = target_forward(nets, disc_input, frozen["classifier"],
                                            state["target_encoder"], target_images)
  disc, disc_opt, d_metrics = discriminator_step(
      nets, tx_disc, state["discriminator"], state["disc_opt"], source_inputs, target_inputs)
  to_logits = ((lambda x: x) if disc_input == "logits" else
               (lambda x: nets.classifier.apply(frozen["classifier"], x)))
  target, target_opt, t_metrics = target_update(
      nets, tx_target, loss_kind, state["target_encoder"], state["target_opt"],
      state["discriminator"] if simultaneous else disc, target_inputs, pull_back, im_weight,
      to_logits)
  new_state = {"step": state["step"] + 1, "target_encoder": target, "discriminator": disc,
               "target_opt": target_opt, "disc_opt": disc_opt}
  return new_state, {**d_metrics, **t_metrics}


def make_source_inputs(nets: Networks, disc_input: str, chunk: int = 1000):
  """(frozen, images) -> D's inputs for every image through the frozen M_s (and C, for
  logits), in chunks of `chunk` images so a full training set never holds all its
  activations at once. Compiled once: every seed of a stack reuses it."""
  forward = jax.jit(lambda frozen, images: discriminator_inputs(
      nets, disc_input, frozen["source_encoder"], frozen["classifier"], images))

  def source_inputs(frozen: PyTree, images: jax.Array) -> jax.Array:
    return jnp.concatenate([forward(frozen, images[start:start + chunk])
                            for start in range(0, images.shape[0], chunk)])

  return source_inputs


def make_stage_call(step: Callable, data: dict[str, tuple[str, ...]], batch_size: int,
                    constrain: Callable[[jax.Array], jax.Array] = lambda x: x,
                    rolled: bool | None = None, stacked: bool = False,
                    stacked_data: tuple[str, ...] = (), matmul: bool = False):
  """jit(state, frozen, datasets, key, num_steps) -> (state, metric sums) over num_steps
  steps of `step(state, frozen, batches, step_key)`, for any method's stage.

  Each step draws one batch from `datasets[name]` per name in `data`, with the key
  fold_in(key, step) (split in `data`'s order when there are several), and hands the step
  the arrays `data[name]` names: ("target_images",) keeps a batch's images and drops its
  labels, so labels not named never reach the step.
  rolled: loop over the steps (default on accelerators) or unroll them (default on CPU).
  stacked: state, frozen and key carry a leading axis of independent runs (seeds), trained as
  one vmapped program; every run draws its own batches, from the one copy of the datasets,
  except the datasets named in `stacked_data`, which hold one copy per run (prepared from
  each run's frozen parameters).
  matmul: trace the step's convolutions as batched matrix products
  (`ops.matmul_convolutions`), for a stack whose grouped convolutions run slowly.
  """
  rolled = default_rolled() if rolled is None else rolled
  form = ops.matmul_convolutions if matmul else contextlib.nullcontext

  @functools.partial(jax.jit, static_argnames="num_steps", donate_argnums=0,
                     compiler_options=xla_options.for_default_backend("train"))
  def call(state, frozen, datasets: dict[str, DeviceData], key, num_steps: int):
    def one(state, frozen, key, datasets):
      base = jax.random.fold_in(key, state["step"])
      keys = jax.random.split(base, len(data)) if len(data) > 1 else [base]
      batches = {}
      for (name, names), batch_key in zip(data.items(), keys):
        batches.update(zip(names, sample_batch(datasets[name], batch_key, batch_size,
                                               constrain)))
      return step(state, frozen, batches, jax.random.fold_in(base, len(data)))

    if stacked:
      one = jax.vmap(one, in_axes=(0, 0, 0, {name: 0 if name in stacked_data else None
                                             for name in datasets}))
    with form():
      return _repeat(lambda state: one(state, frozen, key, datasets), state, num_steps, rolled)

  return call


# ----------------------------------------------------------------------------- stage 3


def make_embed(nets: Networks):
  """jit(encoder, classifier, images) -> (features M(x), logits C(M(x))), one forward for
  the label-free validators (scores read the logits, DEV the features too)."""

  @functools.partial(jax.jit, compiler_options=xla_options.for_default_backend("eval"))
  def embed(encoder, classifier, images):
    features = nets.encoder.apply(encoder, images)
    return features, nets.classifier.apply(classifier, features)

  return embed


def make_predict(nets: Networks):
  """jit(encoder, classifier, images) -> predicted labels: C(M(x))."""

  @functools.partial(jax.jit, compiler_options=xla_options.for_default_backend("eval"))
  def predict(encoder, classifier, images):
    logits = nets.classifier.apply(classifier, nets.encoder.apply(encoder, images))
    return jnp.argmax(logits, -1)

  return predict
