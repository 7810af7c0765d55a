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
- `dev`: deep embedded validation (You et al. 2019), the held-out source images' loss
  importance-weighted towards the target (lower is better). A logistic domain classifier on
  the model's features (a fixed draw of source training images against the target draw)
  gives each held-out image the weight w = p(target | x) / p(source | x) x n_s / n_t, an
  estimate of p_target(x) / p_source(x); DEV is the mean of w x CE with a control variate,
  mean(w CE) + eta mean(w) - eta, eta = -Cov(w CE, w) / Var(w), which cancels much of the
  weights' variance. It reads source labels only. It is only as sound as the density ratio:
  where the domains' features are nearly separable the weights are extreme, so the
  classifier is ridge-regularised, and its reading should be checked against the others.
  Where they are separable enough for a weight to pass float32's range (e^89), DEV reads NaN:
  no reading. `ranked` makes such a reading the worst, so no selection or ranking takes it.

`PREFERS` says which way each score points. None of them is known to rank models well in
every setting; the point is to measure how far each is from the oracle, not to assume it.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

PREFERS = {"entropy": "min", "im": "max", "bnm": "max", "snd": "max",
           "source_accuracy": "max", "dev": "min"}
NEEDS_SOURCE_VAL = ("source_accuracy", "dev")  # They read the held-out source images.
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


@jax.jit
def domain_weights(source: jax.Array, target: jax.Array, held_out: jax.Array,
                   ridge: float = 1.0) -> jax.Array:
  """Density-ratio weights p_target(x) / p_source(x) at the `held_out` features, from a
  logistic regression of domain (target = 1) on the `source` and `target` features,
  standardised and fitted by 20 Newton steps with an L2 penalty `ridge` on the slopes."""
  pooled = jnp.concatenate([source, target])
  mean, scale = pooled.mean(0), pooled.std(0) + 1e-6
  design = lambda x: jnp.concatenate([(x - mean) / scale, jnp.ones((len(x), 1))], axis=1)
  z = design(pooled)
  y = jnp.concatenate([jnp.zeros(len(source)), jnp.ones(len(target))])
  penalty = ridge * jnp.diag(jnp.ones(z.shape[1]).at[-1].set(0.0))

  def newton(_, w):
    p = jax.nn.sigmoid(z @ w)
    gradient = z.T @ (p - y) + penalty @ w
    hessian = (z * (p * (1 - p))[:, None]).T @ z + penalty + 1e-6 * jnp.eye(z.shape[1])
    return w - jnp.linalg.solve(hessian, gradient)

  w = jax.lax.fori_loop(0, 20, newton, jnp.zeros(z.shape[1]))
  return jnp.exp(design(held_out) @ w) * len(source) / len(target)


@jax.jit
def deep_embedded_validation(weights: jax.Array, losses: jax.Array) -> jax.Array:
  """DEV's risk from per-example weights and losses (see the module docstring)."""
  weighted = weights * losses
  covariance = jnp.mean((weighted - weighted.mean()) * (weights - weights.mean()))
  eta = -covariance / jnp.maximum(weights.var(), 1e-12)
  return weighted.mean() + eta * weights.mean() - eta


def ranked(name: str, score) -> np.ndarray:
  """Readings of validator `name` with each one that is not a finite number made the worst
  possible (+inf where lower is better, -inf where higher is): selections and rankings then
  pass over it rather than compare a NaN."""
  score = np.asarray(score, np.float64)
  return np.where(np.isfinite(score), score, np.inf if PREFERS[name] == "min" else -np.inf)


def subset(images: np.ndarray, size: int = SUBSET, seed: int = 0) -> np.ndarray:
  """A fixed draw of `size` images (all of them when there are fewer)."""
  if len(images) <= size:
    return images
  return images[np.random.default_rng(seed).choice(len(images), size, replace=False)]
