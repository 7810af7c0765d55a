"""Label-free validators: how good a model looks on the unlabelled target, without a label.

Choosing a checkpoint or a hyperparameter by target test accuracy is the field's most common
leak. These scores read only the model's predictions on unlabelled target training images,
so a run may compute them at every progress line and a selection may use them. Each is
computed from the softmax outputs P [N, C] of a fixed draw of target training images:

- `entropy`: mean prediction entropy, -1/N sum_i sum_c P_ic log P_ic (lower is better: a
  confident model; entropy minimisation's objective).
- `im`: information maximisation, H(mean_i P_i) - entropy (higher is better: confident and
  diverse; SHOT's objective).
- `bnm`: batch nuclear norm, ||P||_* / N, the sum of P's singular values (higher is better:
  confident and diverse at once; Cui et al. 2020).
- `snd`: soft neighbourhood density (Saito et al. 2021): the rows of P, L2-normalised, give
  cosine similarities S_ij (i != j); each row's softmax over S_ij / 0.05 is a soft
  neighbourhood, and SND is its mean entropy (higher is better: target points sit in dense
  clusters).

- `source_accuracy`: the model's accuracy on source images held out of training
  (`--source-val-size`), the classic "source risk" check; it reads source labels only.

`PREFERS` says which way each score points. None of them is known to rank models well in
every setting; the point is to measure how far each is from the oracle, not to assume it.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

PREFERS = {"entropy": "min", "im": "max", "bnm": "max", "snd": "max",
           "source_accuracy": "max"}
SND_TEMPERATURE = 0.05
SUBSET = 1000  # Target training images scored at each progress line (a fixed draw).


def _entropy(p: jax.Array, axis: int = -1) -> jax.Array:
  return -jnp.sum(p * jnp.log(jnp.clip(p, 1e-12)), axis=axis)


def entropy(probs: jax.Array) -> jax.Array:
  return _entropy(probs).mean()


def information_maximisation(probs: jax.Array) -> jax.Array:
  return _entropy(probs.mean(axis=0)) - entropy(probs)


def batch_nuclear_norm(probs: jax.Array) -> jax.Array:
  return jnp.linalg.svd(probs, compute_uv=False).sum() / probs.shape[0]


def soft_neighbourhood_density(probs: jax.Array,
                               temperature: float = SND_TEMPERATURE) -> jax.Array:
  unit = probs / jnp.linalg.norm(probs, axis=-1, keepdims=True)
  similarity = unit @ unit.T
  similarity = jnp.where(jnp.eye(len(probs), dtype=bool), -jnp.inf, similarity / temperature)
  return _entropy(jax.nn.softmax(similarity, axis=-1)).mean()


@jax.jit
def scores(logits: jax.Array) -> dict[str, jax.Array]:
  """Every validator read from target predictions, from one matrix of logits [N, C]."""
  probs = jax.nn.softmax(logits, axis=-1)
  return {"entropy": entropy(probs), "im": information_maximisation(probs),
          "bnm": batch_nuclear_norm(probs), "snd": soft_neighbourhood_density(probs)}


def subset(images: np.ndarray, size: int = SUBSET, seed: int = 0) -> np.ndarray:
  """A fixed draw of `size` images (all of them when there are fewer)."""
  if len(images) <= size:
    return images
  return images[np.random.default_rng(seed).choice(len(images), size, replace=False)]
