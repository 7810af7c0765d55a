"""Gradient reversal / DANN (Ganin & Lempitsky, ICML 2015).

One encoder M and classifier C, and a domain classifier D behind a gradient reversal layer R
(identity forward, -lambda x the gradient backward), trained in one backward pass:

    min_{M,C,D}  CE(C(M(x_s)), y_s) + L_D(D(R(M(x_s))), D(R(M(x_t))))

so D minimises its domain loss while M receives -lambda times its gradient (M maximises it:
the minimax objective, in the study's terms: tied weights, minimax loss). As in the paper,
lambda ramps up as lambda_p = domain_weight * (2 / (1 + exp(-10 p)) - 1), and the learning
rate anneals as adapt_lr / (1 + 10 p)^0.75, p the fraction of stage 2 done. Unlike the paper
(SGD with momentum, from scratch), it starts from the pretrained source model and uses stage
2's Adam, as every method here does. D is the ADDA discriminator (disc_hidden, on the 500-d
features). Published on digits: ADDA's Table 2 77.1 (MNIST->USPS), 73.0 (USPS->MNIST),
73.9 (SVHN->MNIST); the DANN paper 76.7 on MNIST->MNIST-M.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from adda_jax import losses
from adda_jax.methods import joint
from adda_jax.methods.base import Method, Stage, source_pretraining
from adda_jax.models import Networks

if TYPE_CHECKING:
  from adda_jax.config import Config


def reversal_weight(progress: jax.Array) -> jax.Array:
  """The paper's ramp 2 / (1 + exp(-10 p)) - 1: 0 at the start, near 1 by p = 0.5."""
  return 2.0 / (1.0 + jnp.exp(-10.0 * progress)) - 1.0


def annealing(progress: jax.Array) -> jax.Array:
  """The paper's learning-rate factor 1 / (1 + 10 p)^0.75."""
  return (1.0 + 10.0 * progress) ** -0.75


def adapt_stage(cfg: Config, nets: Networks) -> Stage:
  progress = lambda count: jnp.minimum(count / cfg.adapt_steps, 1.0)
  tx_model = joint.optimizer(cfg, lambda count: annealing(progress(count)))
  tx_disc = joint.optimizer(cfg, lambda count: annealing(progress(count)))

  def init(key, earlier):
    return joint.init(earlier, key, tx_model, tx_disc, {"d": nets.discriminator})

  def step(state, frozen, batches, key):
    scale = cfg.domain_weight * reversal_weight(progress(state["step"]))

    def loss(params):
      model, disc = params
      features_s = nets.encoder.apply(model["encoder"], batches["source_images"])
      features_t = nets.encoder.apply(model["encoder"], batches["target_images"])
      ce, acc = joint.source_loss(nets, model, features_s, batches["source_labels"])
      s = nets.discriminator.apply(disc["d"], losses.reverse_gradient(features_s, scale))
      t = nets.discriminator.apply(disc["d"], losses.reverse_gradient(features_t, scale))
      d_loss = losses.discriminator_loss(s, t)
      return ce + d_loss, {"source_loss": ce, "source_accuracy": acc, "disc_loss": d_loss,
                           "disc_accuracy": losses.discriminator_accuracy(s, t),
                           "reversal_weight": scale}

    return joint.one_pass_step(loss, state, tx_model, tx_disc)

  return joint.stage(cfg, ("disc_hidden", "domain_weight"), init, step,
                     joint.shared_predictor, label="dann", watch=True)


METHOD = Method(
    name="dann",
    summary="gradient reversal (Ganin & Lempitsky 2015): shared encoder, D behind R",
    stages=lambda cfg, nets: [source_pretraining(cfg, nets), adapt_stage(cfg, nets)],
)
