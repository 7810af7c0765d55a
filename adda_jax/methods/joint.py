"""Pieces shared by the methods whose stage 2 trains the encoder and classifier jointly (ADDA
with tied or partly tied weights, DANN, DDC, domain confusion, CAN).

Their stage-2 state is {"step", "model", "model_opt"} plus, with discriminators,
{"disc", "disc_opt"}: "model" holds every trained network of the classifier path (one
"encoder" when weights are tied), "disc" every domain discriminator; each group has its own
optax state. All start from the pretrained source model (stage 1), like ADDA, and all use
stage 2's Adam (adapt_lr, adapt_b1), so a table of methods compares objectives, not solvers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import jax
import jax.numpy as jnp
import optax

from adda_jax import losses
from adda_jax.methods.base import ADAPT_FIELDS, Earlier, Stage
from adda_jax.models import Networks, PureModule

if TYPE_CHECKING:
  from adda_jax.config import Config

PyTree = Any


def optimizer(cfg: Config, schedule: Callable[[jax.Array], jax.Array] | None = None):
  """Stage 2's Adam; `schedule(count)` scales its rate (DANN's annealing)."""
  rate = cfg.adapt_lr if schedule is None else (lambda count: cfg.adapt_lr * schedule(count))
  return optax.adam(rate, b1=cfg.adapt_b1)


def init(earlier: Earlier, key: jax.Array, tx_model, tx_disc=None,
         discriminators: dict[str, PureModule] | None = None,
         extra: Callable[[PyTree], dict[str, PyTree]] = lambda pretrained: {}) -> PyTree:
  """Stage 2's state: the pretrained encoder and classifier (copied), `extra(pretrained)`
  model parameters, and fresh discriminators."""
  pretrained = earlier["pretrain"]
  model = jax.tree.map(jnp.copy, {"encoder": pretrained["encoder"],
                                  "classifier": pretrained["classifier"], **extra(pretrained)})
  state = {"step": jnp.zeros((), jnp.int32), "model": model, "model_opt": tx_model.init(model)}
  if discriminators:
    keys = jax.random.split(key, len(discriminators))
    disc = {name: net.init(k) for (name, net), k in zip(sorted(discriminators.items()), keys)}
    state.update(disc=disc, disc_opt=tx_disc.init(disc))
  return state


def update(tx, params: PyTree, grads: PyTree, opt: PyTree) -> tuple[PyTree, PyTree]:
  updates, opt = tx.update(grads, opt, params)
  return optax.apply_updates(params, updates), opt


def one_pass_step(loss, state: PyTree, tx_model, tx_disc) -> tuple[PyTree, dict]:
  """Updates models and discriminators from one backward pass of `loss((model, disc)) ->
  (value, metrics)`: the step of the methods whose game is played by gradient reversal
  (DANN, CAN), where each side's gradient already points its own way."""
  (_, metrics), (model_grads, disc_grads) = jax.value_and_grad(loss, has_aux=True)(
      (state["model"], state["disc"]))
  model, model_opt = update(tx_model, state["model"], model_grads, state["model_opt"])
  disc, disc_opt = update(tx_disc, state["disc"], disc_grads, state["disc_opt"])
  return ({"step": state["step"] + 1, "model": model, "model_opt": model_opt, "disc": disc,
           "disc_opt": disc_opt}, metrics)


def source_loss(nets: Networks, model: PyTree, features: jax.Array, labels: jax.Array):
  """Cross-entropy of C on the source features, and C's batch accuracy."""
  logits = nets.classifier.apply(model["classifier"], features)
  return losses.classification_loss(logits, labels), losses.accuracy(logits, labels)


def disc_inputs(nets: Networks, disc_input: str, classifier: PyTree, features: jax.Array):
  """What D sees of a batch: the 500-d features (paper) or C's 10-d logits."""
  return features if disc_input == "features" else nets.classifier.apply(classifier, features)


def stage(cfg: Config, options: tuple[str, ...], init_fn, step_fn, predictor,
          label: str, watch: bool, source_encoder=None) -> Stage:
  """Stage 2 of a joint method: source and target batches, adapt_steps steps; `options` are
  the method options it reads besides ADAPT_FIELDS."""
  return Stage(name="adapt", label=label, fields=ADAPT_FIELDS + options,
               data=("source", "target"), num_steps=cfg.adapt_steps, init=init_fn,
               step=step_fn, predictor=predictor, watch_discriminator=watch,
               source_encoder=source_encoder)


def shared_predictor(state: PyTree, frozen: PyTree):
  return state["model"]["encoder"], state["model"]["classifier"]
