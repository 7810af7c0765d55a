"""Deep Domain Confusion (Tzeng et al. 2014), with DAN's multi-kernel MMD as an option.

One encoder M and classifier C trained on the source labels plus the squared maximum mean
discrepancy between the source and target features at the adaptation layer (the 500-d
features):

    min_{M,C}  CE(C(M(x_s)), y_s) + mmd_weight * MMD^2(M(x_s), M(x_t))

`mmd_kernel` "gaussian": one Gaussian kernel, bandwidth by the median heuristic; "multi" (DAN,
Long et al. 2015): five Gaussians around the mean squared distance (`losses.mmd2`).
mmd_weight 0.25 is DDC's lambda. No discriminator: the study's non-adversarial baseline.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import jax

from adda_jax import losses
from adda_jax.methods import joint
from adda_jax.methods.base import Method, Stage, source_pretraining
from adda_jax.models import Networks

if TYPE_CHECKING:
  from adda_jax.config import Config


def adapt_stage(cfg: Config, nets: Networks) -> Stage:
  tx_model = joint.optimizer(cfg)

  def step(state, frozen, batches, key):
    def loss(model):
      features_s = nets.encoder.apply(model["encoder"], batches["source_images"])
      features_t = nets.encoder.apply(model["encoder"], batches["target_images"])
      ce, acc = joint.source_loss(nets, model, features_s, batches["source_labels"])
      mmd = losses.mmd2(features_s, features_t, cfg.mmd_kernel)
      return ce + cfg.mmd_weight * mmd, {"source_loss": ce, "source_accuracy": acc,
                                         "mmd2": mmd}

    (_, metrics), grads = jax.value_and_grad(loss, has_aux=True)(state["model"])
    model, model_opt = joint.update(tx_model, state["model"], grads, state["model_opt"])
    return {"step": state["step"] + 1, "model": model, "model_opt": model_opt}, metrics

  return joint.stage(cfg, ("mmd_kernel", "mmd_weight"),
                     lambda key, earlier: joint.init(earlier, key, tx_model), step,
                     joint.shared_predictor, label="ddc", watch=False)


METHOD = Method(
    name="ddc",
    summary="deep domain confusion (Tzeng et al. 2014): source loss + MMD between features",
    stages=lambda cfg, nets: [source_pretraining(cfg, nets), adapt_stage(cfg, nets)],
)
