"""Collaborative and Adversarial Network (Zhang et al., CVPR 2018) on LeNet's blocks.

Domain classifiers D_l sit on the outputs of the encoder's blocks (l = 1: conv1 + pool,
2: conv2 + pool, 3: fc 500, the features; `LeNetEncoder.blocks`). The lower blocks learn
domain-informative features: the encoder and D_1, D_2 all minimise the domain losses
(collaborative). The top block learns domain-invariant ones: D_3's loss reaches the encoder
through a gradient reversal layer R (adversarial). Learnable block weights lambda_l =
softplus(rho_l) weigh the domain losses:

    min_{M,C,D_l,rho}  CE(C(M(x_s)), y_s)
                       + domain_weight * sum_l lambda_l L_D(D_l(B_l(x_s)), D_l(B_l(x_t)))
                       - sum_l log lambda_l

with B_3 read through R. For fixed losses the optimum is lambda_l = 1 / (domain_weight L_l):
a block whose domains are easy to tell apart weighs more. The paper learns its block weights
too, on Office-31 with ResNet-50; the -log lambda regulariser that keeps them off zero, the
LeNet blocks and the start from the pretrained source model are this project's choices, and
so are the first digit numbers (no published ones). Each D_l is an MLP with disc_hidden.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from adda_jax import losses
from adda_jax.methods import joint
from adda_jax.methods.base import Method, Stage, source_pretraining
from adda_jax.models import Networks, block_sizes, discriminator

if TYPE_CHECKING:
  from adda_jax.config import Config

BLOCKS = ("block1", "block2", "block3")
INITIAL_WEIGHT = math.log(math.e - 1.0)  # softplus^-1(1): every block starts at weight 1.


def adapt_stage(cfg: Config, nets: Networks) -> Stage:
  tx_model, tx_disc = joint.optimizer(cfg), joint.optimizer(cfg)
  sizes = block_sizes(nets, cfg.image_size, cfg.channels)
  discs = {name: discriminator(size, cfg.disc_hidden) for name, size in zip(BLOCKS, sizes)}

  def init(key, earlier):
    state = joint.init(earlier, key, tx_model, tx_disc, discs)
    state["disc"]["block_weights"] = jnp.full((len(BLOCKS),), INITIAL_WEIGHT, jnp.float32)
    state["disc_opt"] = tx_disc.init(state["disc"])
    return state

  def step(state, frozen, batches, key):
    def loss(params):
      model, disc = params
      blocks_s = nets.encoder.apply(model["encoder"], batches["source_images"], "blocks")
      blocks_t = nets.encoder.apply(model["encoder"], batches["target_images"], "blocks")
      ce, acc = joint.source_loss(nets, model, blocks_s[-1], batches["source_labels"])
      weights = jax.nn.softplus(disc["block_weights"])
      metrics = {"source_loss": ce, "source_accuracy": acc}
      domain = 0.0
      for i, name in enumerate(BLOCKS):
        s, t = blocks_s[i], blocks_t[i]
        if name == BLOCKS[-1]:  # The top block: adversarial, through the reversal layer.
          s, t = losses.reverse_gradient(s, 1.0), losses.reverse_gradient(t, 1.0)
        logits_s = discs[name].apply(disc[name], s)
        logits_t = discs[name].apply(disc[name], t)
        block_loss = losses.discriminator_loss(logits_s, logits_t)
        domain = domain + weights[i] * block_loss
        metrics[f"{name}_disc_accuracy"] = losses.discriminator_accuracy(logits_s, logits_t)
        metrics[f"{name}_weight"] = weights[i]
      metrics["disc_accuracy"] = metrics[f"{BLOCKS[-1]}_disc_accuracy"]
      total = ce + cfg.domain_weight * domain - jnp.sum(jnp.log(weights))
      return total, metrics

    return joint.one_pass_step(loss, state, tx_model, tx_disc)

  return joint.stage(cfg, ("disc_hidden", "domain_weight"), init, step,
                     joint.shared_predictor, label="can", watch=True)


METHOD = Method(
    name="can",
    summary="collaborative and adversarial network (Zhang et al. 2018): D on every block",
    stages=lambda cfg, nets: [source_pretraining(cfg, nets), adapt_stage(cfg, nets)],
)
