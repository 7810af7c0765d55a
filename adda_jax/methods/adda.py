"""ADDA (Tzeng et al. 2017) and the study's weight-sharing variants.

Stage 2 trains against a domain discriminator D (source = 1) with one of three mapping losses
(`adversarial_loss`: gan, minimax, confusion; see `losses.mapping_loss`) and one of three
sharings of the encoder between domains (`sharing`):

- untied (ADDA): M_s and C stay frozen; M_t starts as M_s and alone learns to fool D:
    min_D  L_D = -E log D(M_s(x_s)) - E log(1 - D(M_t(x_t)))
    min_Mt L_M(D(M_t(x_t))) [+ target_im_weight * IM loss of C(M_t(x_t))]
  The optional term (`--target-im-weight`, default 0: the paper) is SHOT's information
  maximisation on the target predictions, the first target-aware component: M_t learns to
  make the frozen C's target predictions confident and diverse, not only to fool D.
- tied (the study's proposal): one encoder M for both domains, trained jointly with C on the
  source labels and against D, so the classifier sees a space that is discriminative and
  domain-invariant at once:
    min_{M,C} CE(C(M(x_s)), y_s) + domain_weight * [L_M(D(M(x_t))) + L_M'(D(M(x_s)))]
  where L_M' is the same mapping loss on the source side (its label inverted for gan, -L_D for
  minimax, 1/2 for confusion), since the source representation now moves too.
- partial: the two conv blocks shared, the fc 500 layer per domain (the source's is the
  pretrained one, the target's starts as a copy); the same objective as tied, the target path
  through the target's fc.

Tied and partial start from the pretrained source model (stage 1), as untied does. D sees the
500-d features or C's logits (`disc_input`) and is updated first each step; the encoder then
steps against the updated D (`adapt_update` alternating) or the old one (simultaneous).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import jax
from jax import lax

from adda_jax import losses, steps
from adda_jax.methods import joint
from adda_jax.methods.base import ADAPT_FIELDS, Method, Stage, source_pretraining
from adda_jax.models import Networks

if TYPE_CHECKING:
  from adda_jax.config import Config

SHARINGS = ("untied", "tied", "partial")
OPTIONS = ("sharing", "adversarial_loss", "disc_input", "disc_hidden", "adapt_update")
UNTIED_OPTIONS = ("target_im_weight",)  # Read by untied ADDA only.


def untied(cfg: Config, nets: Networks) -> Stage:
  tx_target = steps.adapt_optimizer(cfg.adapt_lr, cfg.adapt_b1)
  tx_disc = steps.adapt_optimizer(cfg.adapt_lr, cfg.adapt_b1)
  simultaneous = cfg.adapt_update == "simultaneous"

  def init(key, earlier):
    return steps.init_adapt(nets, tx_target, tx_disc, earlier["pretrain"]["encoder"], key)

  source_inputs = steps.make_source_inputs(nets, cfg.disc_input)

  def prepare(frozen, datasets):
    """M_s and C are frozen, so D's input for each source image is computed once, and the
    "source" batches hold those inputs in place of images."""
    source = datasets["source"]
    return {**datasets, "source": steps.DeviceData(
        source_inputs(frozen, source.images), source.labels)}

  def step(state, frozen, batches, key):
    return steps.adapt_step_on_inputs(
        nets, tx_target, tx_disc, cfg.adversarial_loss, cfg.disc_input, frozen, state,
        batches["source_images"], batches["target_images"], simultaneous,
        cfg.target_im_weight)

  return Stage(name="adapt", label=cfg.method, fields=ADAPT_FIELDS + OPTIONS + UNTIED_OPTIONS,
               data=("source", "target"), num_steps=cfg.adapt_steps, init=init, step=step,
               frozen=lambda earlier: {"source_encoder": earlier["pretrain"]["encoder"],
                                       "classifier": earlier["pretrain"]["classifier"]},
               predictor=lambda state, frozen: (state["target_encoder"], frozen["classifier"]),
               source_encoder=lambda state, frozen: frozen["source_encoder"],
               watch_discriminator=True, prepare=prepare)


def target_encoder(model: dict) -> dict:
  """The encoder the target goes through: the shared one, with the target's own fc layer
  when only the conv blocks are shared."""
  if "target_fc" in model:
    return {**model["encoder"], "fc": model["target_fc"]}
  return model["encoder"]


def shared(cfg: Config, nets: Networks, sharing: str, loss_kind: str,
           options: tuple[str, ...]) -> Stage:
  """Tied or partial sharing with the mapping loss `loss_kind`; `options` are the config
  fields the calling method reads (the `confusion` method fixes sharing and loss)."""
  tx_model, tx_disc = joint.optimizer(cfg), joint.optimizer(cfg)
  def extra(pretrained):
    return {"target_fc": pretrained["encoder"]["fc"]} if sharing == "partial" else {}

  def init(key, earlier):
    return joint.init(earlier, key, tx_model, tx_disc, {"d": nets.discriminator}, extra)

  def representations(model, batches):
    features_s = nets.encoder.apply(model["encoder"], batches["source_images"])
    features_t = nets.encoder.apply(target_encoder(model), batches["target_images"])
    to_d = lambda f: joint.disc_inputs(nets, cfg.disc_input, model["classifier"], f)
    return features_s, to_d(features_s), to_d(features_t)

  def step(state, frozen, batches, key):
    model, disc = state["model"], state["disc"]
    _, d_source, d_target = representations(model, batches)

    def disc_loss(disc):
      s = nets.discriminator.apply(disc["d"], lax.stop_gradient(d_source))
      t = nets.discriminator.apply(disc["d"], lax.stop_gradient(d_target))
      return losses.discriminator_loss(s, t), losses.discriminator_accuracy(s, t)

    (d_loss, d_acc), grads = jax.value_and_grad(disc_loss, has_aux=True)(disc)
    new_disc, disc_opt = joint.update(tx_disc, disc, grads, state["disc_opt"])
    against = disc if cfg.adapt_update == "simultaneous" else new_disc

    def model_loss(model):
      features_s, d_s, d_t = representations(model, batches)
      ce, acc = joint.source_loss(nets, model, features_s, batches["source_labels"])
      mapping = losses.mapping_loss(nets.discriminator.apply(against["d"], d_t), loss_kind,
                                    nets.discriminator.apply(against["d"], d_s))
      return ce + cfg.domain_weight * mapping, {"source_loss": ce, "source_accuracy": acc,
                                                "mapping_loss": mapping}

    (_, metrics), grads = jax.value_and_grad(model_loss, has_aux=True)(model)
    new_model, model_opt = joint.update(tx_model, model, grads, state["model_opt"])
    return ({"step": state["step"] + 1, "model": new_model, "model_opt": model_opt,
             "disc": new_disc, "disc_opt": disc_opt},
            {"disc_loss": d_loss, "disc_accuracy": d_acc, **metrics})

  return joint.stage(cfg, options, init, step,
                     lambda state, frozen: (target_encoder(state["model"]),
                                            state["model"]["classifier"]),
                     label=cfg.method, watch=True,
                     source_encoder=lambda state, frozen: state["model"]["encoder"])


def stages(cfg: Config, nets: Networks) -> list[Stage]:
  adapt = (untied(cfg, nets) if cfg.sharing == "untied" else
           shared(cfg, nets, cfg.sharing, cfg.adversarial_loss, OPTIONS + ("domain_weight",)))
  return [source_pretraining(cfg, nets), adapt]


METHOD = Method(
    name="adda",
    summary="adversarial discriminative adaptation; --sharing untied (ADDA), tied or partial",
    stages=stages,
)
