"""Losses of ADDA and its adversarial variants, on discriminator logits (source = 1).

With d = D(.) a logit and sigma the sigmoid, -log sigma(d) = softplus(-d) and
-log(1 - sigma(d)) = softplus(d), which are the numerically stable forms used here.

Adversarial mapping losses for the target encoder (Tzeng et al. 2017, Sec. 3):
- "gan": inverted labels, -E[log D(M_t(x_t))]  (ADDA's choice).
- "minimax": -L_D, i.e. E[log(1 - D(M_t(x_t)))] (the source term has no gradient w.r.t. M_t).
- "confusion": cross-entropy against the uniform distribution,
  -E[1/2 log D(M_t(x_t)) + 1/2 log(1 - D(M_t(x_t)))].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

ADVERSARIAL_LOSSES = ("gan", "minimax", "confusion")


def classification_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy with integer labels."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return (jnp.argmax(logits, -1) == labels).mean()


def discriminator_loss(source_logits: jax.Array, target_logits: jax.Array) -> jax.Array:
  """L_D = -E[log D(M_s(x_s))] - E[log(1 - D(M_t(x_t)))]."""
  return jax.nn.softplus(-source_logits).mean() + jax.nn.softplus(target_logits).mean()


def discriminator_accuracy(source_logits: jax.Array, target_logits: jax.Array) -> jax.Array:
  """Fraction of source and target examples D assigns to their own domain."""
  return 0.5 * ((source_logits > 0).mean() + (target_logits < 0).mean())


def mapping_loss(target_logits: jax.Array, kind: str) -> jax.Array:
  """The target encoder's adversarial loss (see the module docstring)."""
  if kind == "gan":
    return jax.nn.softplus(-target_logits).mean()
  if kind == "minimax":
    return -jax.nn.softplus(target_logits).mean()
  if kind == "confusion":
    return 0.5 * (jax.nn.softplus(-target_logits) + jax.nn.softplus(target_logits)).mean()
  raise ValueError(f"unknown adversarial loss {kind!r}; choose one of {ADVERSARIAL_LOSSES}")
