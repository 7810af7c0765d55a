"""Self-training with a mean teacher: a refinement stage after any method's last stage.

ADDA's classifier only ever sees source data; this stage lets it learn from the target too,
without target labels. Encoder and classifier (one encoder for both domains) start from the
model the previous stage ends with, and so does a teacher, an exponential moving average of
them (Tarvainen & Valpola 2017). Each step:

  teacher probabilities p = softmax(teacher(shift(x_t)))
  pseudo-label y = argmax p, counted where max p >= pseudo_threshold (optionally class-balanced,
  `losses.pseudo_labels`)
  min  source_weight * CE_smooth(student(shift(x_s)), y_s)
       + pseudo_weight * CE_weighted(student(shift+noise(x_t)), y)
       + consistency_weight * |softmax(student(shift+noise(x_t))) - p|^2
       + im_weight * IM(student(shift+noise(x_t)))     (off by default)
       + vat_weight * VAT(student, shift+noise(x_t))     (off by default)
  teacher <- teacher_decay * teacher + (1 - teacher_decay) * student

The source term keeps the classifier anchored to the true labels while the target terms move
it towards the target's clusters; the teacher, averaged over many steps, gives steadier
pseudo-labels than the student, and it is the model the stage ends with. Each term has its
weight so that an ablation can switch it off; information maximisation (SHOT's entropy minus
diversity) and virtual adversarial training (VADA / DIRT-T's smoothness term) are optional
extras.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import optax

from adda_jax import losses
from adda_jax.augment import augment
from adda_jax.methods.base import Stage
from adda_jax.models import Networks

if TYPE_CHECKING:
  from adda_jax.config import Config

NAME = "selftrain"
OPTIONS = ("self_train_steps", "self_train_lr", "pseudo_threshold", "class_balanced",
           "teacher_decay", "consistency_weight", "pseudo_weight", "self_train_source_weight",
           "self_train_im_weight", "vat_weight", "vat_radius", "label_smoothing",
           "augment_shift", "augment_noise", "augment_scale")


def ema(teacher, student, decay: float):
  """The teacher's update: decay * teacher + (1 - decay) * student, leaf by leaf."""
  return jax.tree.map(lambda t, s: decay * t + (1.0 - decay) * s, teacher, student)


def stage(cfg: Config, nets: Networks, previous: Stage) -> Stage:
  """The refinement stage that follows `previous` (whose target model it starts from)."""
  tx = optax.adam(cfg.self_train_lr)

  def init(key, earlier):
    encoder, classifier = previous.predictor(earlier[previous.name], previous.frozen(earlier))
    model = {"encoder": encoder, "classifier": classifier}
    return {"step": jnp.zeros((), jnp.int32), "student": jax.tree.map(jnp.copy, model),
            "teacher": jax.tree.map(jnp.copy, model), "opt": tx.init(model)}

  def logits(model, images):
    return nets.classifier.apply(model["classifier"], nets.encoder.apply(model["encoder"],
                                                                          images))

  def step(state, frozen, batches, key):
    source_key, weak_key, strong_key = jax.random.split(key, 3)
    source = augment(source_key, batches["source_images"], cfg.augment_shift,
                     max_scale=cfg.augment_scale)
    weak = augment(weak_key, batches["target_images"], cfg.augment_shift,
                   max_scale=cfg.augment_scale)
    strong = augment(strong_key, batches["target_images"], cfg.augment_shift,
                     cfg.augment_noise, cfg.pixel_scale, cfg.augment_scale)
    teacher_probs = jax.nn.softmax(logits(state["teacher"], weak), -1)
    labels, weights = losses.pseudo_labels(teacher_probs, cfg.pseudo_threshold,
                                           cfg.class_balanced)

    def loss_fn(model):
      source_logits = logits(model, source)
      target_logits = logits(model, strong)
      source_loss = losses.smoothed_classification_loss(
          source_logits, batches["source_labels"], cfg.label_smoothing)
      pseudo = losses.pseudo_label_loss(target_logits, labels, weights)
      consistency = losses.consistency_loss(target_logits, teacher_probs)
      im = losses.information_maximisation_loss(target_logits)
      total = (cfg.self_train_source_weight * source_loss + cfg.pseudo_weight * pseudo
               + cfg.consistency_weight * consistency + cfg.self_train_im_weight * im)
      extra = {}
      if cfg.vat_weight:  # Two more passes through the student: only when asked for.
        extra["vat_loss"] = losses.virtual_adversarial_loss(
            lambda x: logits(model, x), strong, jax.random.fold_in(key, 1),
            cfg.vat_radius * cfg.pixel_scale)
        total = total + cfg.vat_weight * extra["vat_loss"]
      return total, {**extra, "source_loss": source_loss, "im_loss": im,
                     "source_accuracy": losses.accuracy(source_logits,
                                                        batches["source_labels"]),
                     "pseudo_loss": pseudo, "consistency_loss": consistency}

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["student"])
    updates, opt = tx.update(grads, state["opt"], state["student"])
    student = optax.apply_updates(state["student"], updates)
    confident = (weights > 0).astype(jnp.float32)
    classes = jnp.zeros(teacher_probs.shape[-1]).at[labels].max(confident).sum()
    return ({"step": state["step"] + 1, "student": student,
             "teacher": ema(state["teacher"], student, cfg.teacher_decay), "opt": opt},
            {**metrics, "pseudo_fraction": confident.mean(), "pseudo_classes": classes})

  num_classes = len(cfg.class_names)
  # Distinct classes in a batch of uniformly drawn labels, on average; a batch whose
  # confident pseudo-labels cover under half of that has collapsed onto a few classes.
  expected = num_classes * (1 - (1 - 1 / num_classes) ** cfg.batch_size)

  def alarms(metrics):
    """Self-training's failure: pseudo-labels collapsing onto a few classes."""
    if metrics["pseudo_classes"] < expected / 2:
      return [f"confident pseudo-labels cover {metrics['pseudo_classes']:.1f} classes per "
              f"batch, where balanced labels would cover {expected:.1f}: self-training may "
              f"be collapsing"]
    return []

  return Stage(name=NAME, label=f"{previous.label}+{NAME}", fields=previous.fields + OPTIONS,
               data=("source", "target"), num_steps=cfg.self_train_steps, init=init,
               step=step, alarms=alarms,
               predictor=lambda state, frozen: (state["teacher"]["encoder"],
                                                state["teacher"]["classifier"]))
