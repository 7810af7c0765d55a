"""Losses of ADDA, its adversarial variants and its relatives, on discriminator logits
(source = 1), plus gradient reversal (DANN) and MMD (DDC).

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
import numpy as np
import optax
from jax import lax

ADVERSARIAL_LOSSES = ("gan", "minimax", "confusion")
MMD_KERNELS = ("gaussian", "multi")


def per_example_classification_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Softmax cross-entropy with integer labels, one value per example."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def classification_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy with integer labels."""
  return per_example_classification_loss(logits, labels).mean()


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return (jnp.argmax(logits, -1) == labels).mean()


def discriminator_loss(source_logits: jax.Array, target_logits: jax.Array) -> jax.Array:
  """L_D = -E[log D(M_s(x_s))] - E[log(1 - D(M_t(x_t)))]."""
  return jax.nn.softplus(-source_logits).mean() + jax.nn.softplus(target_logits).mean()


def discriminator_accuracy(source_logits: jax.Array, target_logits: jax.Array) -> jax.Array:
  """Fraction of source and target examples D assigns to their own domain."""
  return 0.5 * ((source_logits > 0).mean() + (target_logits < 0).mean())


def mapping_loss(target_logits: jax.Array, kind: str,
                 source_logits: jax.Array | None = None) -> jax.Array:
  """The encoder's adversarial loss (see the module docstring) on the target representations,
  plus, when the source representations come from a trained encoder too (tied or partly tied
  weights), its mirror image on them: "gan" inverts their label as well (-E[log(1 - D(x_s))]),
  "minimax" is then exactly -L_D, "confusion" pulls both towards 1/2."""
  loss = _mapping_term(target_logits, kind, label=0)
  if source_logits is not None:
    loss = loss + _mapping_term(source_logits, kind, label=1)
  return loss


def _mapping_term(logits: jax.Array, kind: str, label: int) -> jax.Array:
  """The mapping loss on representations whose true domain label is `label` (source = 1)."""
  toward_source, toward_target = jax.nn.softplus(-logits), jax.nn.softplus(logits)
  if kind == "gan":  # the inverted label
    return (toward_source if label == 0 else toward_target).mean()
  if kind == "minimax":  # minus D's own loss on them
    return -(toward_target if label == 0 else toward_source).mean()
  if kind == "confusion":
    return 0.5 * (toward_source + toward_target).mean()
  raise ValueError(f"unknown adversarial loss {kind!r}; choose one of {ADVERSARIAL_LOSSES}")


@jax.custom_vjp
def reverse_gradient(x: jax.Array, scale: jax.Array) -> jax.Array:
  """Gradient reversal (Ganin & Lempitsky 2015): identity forward, -scale x the gradient
  backward; `scale` itself gets no gradient."""
  return x


def _reverse_forward(x, scale):
  return x, scale


def _reverse_backward(scale, g):
  return -scale * g, jnp.zeros_like(scale)


reverse_gradient.defvjp(_reverse_forward, _reverse_backward)


def mmd2(source: jax.Array, target: jax.Array, kernel: str = "gaussian") -> jax.Array:
  """Squared maximum mean discrepancy between two feature batches (biased V-statistic):
  E k(s, s') + E k(t, t') - 2 E k(s, t), zero when the two batches are the same.

  "gaussian": k(a, b) = exp(-|a - b|^2 / h) with h the median squared distance over all pairs
  of the joint batch (the median heuristic). "multi" (DAN, Long et al. 2015): the mean of five
  such kernels with h = m * 2^j, j = -2..2, m the mean squared pairwise distance (DAN's
  released code). The bandwidth is a statistic of the batch, not a parameter: no gradient.
  """
  joint = jnp.concatenate([source, target])
  sq = jnp.sum(joint ** 2, -1)
  distances = jnp.maximum(sq[:, None] + sq[None, :] - 2 * joint @ joint.T, 0.0)
  off_diagonal = distances[np.triu_indices(len(joint), k=1)]
  if kernel == "gaussian":
    bandwidths = [jnp.median(off_diagonal)]
  elif kernel == "multi":
    bandwidths = [jnp.mean(off_diagonal) * 2.0 ** j for j in range(-2, 3)]
  else:
    raise ValueError(f"unknown MMD kernel {kernel!r}; choose one of {MMD_KERNELS}")
  gram = sum(jnp.exp(-distances / jnp.maximum(lax.stop_gradient(h), 1e-12))
             for h in bandwidths) / len(bandwidths)
  n = len(source)
  return gram[:n, :n].mean() + gram[n:, n:].mean() - 2 * gram[:n, n:].mean()


def information_maximisation_loss(logits: jax.Array) -> jax.Array:
  """Minus the information maximisation of target predictions (SHOT, Liang et al. 2020):
  mean_i H(p_i) - H(mean_i p_i). Minimising it makes each prediction confident (first term)
  while keeping the classes used evenly (second term), so it cannot be met by sending every
  target image to one class."""
  probs = jax.nn.softmax(logits, axis=-1)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  conditional = -jnp.sum(probs * log_probs, axis=-1).mean()
  mean = probs.mean(axis=0)
  marginal = -jnp.sum(mean * jnp.log(jnp.clip(mean, 1e-12)))
  return conditional - marginal


def smoothed_classification_loss(logits: jax.Array, labels: jax.Array,
                                 smoothing: float) -> jax.Array:
  """Cross-entropy against one-hot labels mixed with the uniform distribution: the true class
  gets 1 - smoothing + smoothing / K (SHOT trains its source model so); 0 is plain CE."""
  classes = logits.shape[-1]
  targets = optax.smooth_labels(jax.nn.one_hot(labels, classes), smoothing)
  return optax.softmax_cross_entropy(logits, targets).mean()


def pseudo_labels(probs: jax.Array, threshold: float, class_balanced: bool
                  ) -> tuple[jax.Array, jax.Array]:
  """(labels, weights) for self-training from a teacher's class probabilities [N, K].

  The label is the teacher's most probable class; an example counts (weight > 0) only when
  that probability reaches `threshold`. Plain: weight 1 for each confident example.
  `class_balanced`: the confident examples' weights are shared equally among the classes
  they fall in, so each class present contributes the same total weight (the sum stays the
  number of confident examples): a class the teacher labels often cannot drown the rest.
  Weights carry no gradient.
  """
  probs = lax.stop_gradient(probs)
  labels = jnp.argmax(probs, -1)
  confident = (jnp.max(probs, -1) >= threshold).astype(probs.dtype)
  if not class_balanced:
    return labels, confident
  per_class = jnp.zeros(probs.shape[-1], probs.dtype).at[labels].add(confident)
  present = jnp.sum(per_class > 0)
  share = confident.sum() / jnp.maximum(present, 1) / jnp.maximum(per_class[labels], 1)
  return labels, confident * share


def pseudo_label_loss(logits: jax.Array, labels: jax.Array, weights: jax.Array) -> jax.Array:
  """Weighted cross-entropy on pseudo-labels, averaged over the whole batch (unconfident
  examples count as zeros, so the loss grows as more examples pass the threshold)."""
  return jnp.sum(weights * per_example_classification_loss(logits, labels)) / logits.shape[0]


def consistency_loss(student_logits: jax.Array, teacher_probs: jax.Array) -> jax.Array:
  """Mean teacher's consistency (Tarvainen & Valpola 2017): the squared distance between the
  student's and the teacher's class probabilities, summed over classes, averaged over the
  batch; the teacher side carries no gradient."""
  diff = jax.nn.softmax(student_logits, -1) - lax.stop_gradient(teacher_probs)
  return jnp.sum(diff ** 2, -1).mean()


def virtual_adversarial_loss(logits_fn, images: jax.Array, key: jax.Array, radius: float,
                             probe: float = 1e-2) -> jax.Array:
  """Virtual adversarial training (Miyato et al. 2018), as VADA / DIRT-T use it on target
  images: the cross-entropy between the model's own (fixed) prediction at x and its
  prediction at x + r, where r, of L2 norm `radius` per image, is the direction that changes
  the prediction most, found by one power iteration from a random probe of norm `probe`.
  Penalising it keeps the decision boundary away from the target's images (the cluster
  assumption), without a label.

  The papers' probe norm is 1e-6; in float32 that moves each pixel by about 4e-8, below the
  resolution of a pixel near 1, so the gradient would be mostly rounding. 1e-2 is still far
  below the radius, and resolved."""
  def per_image_unit(d):
    norm = jnp.sqrt(jnp.sum(d ** 2, axis=tuple(range(1, d.ndim)), keepdims=True))
    return d / jnp.maximum(norm, 1e-12)

  clean = lax.stop_gradient(jax.nn.softmax(logits_fn(images), -1))

  def divergence(d):
    return optax.softmax_cross_entropy(logits_fn(images + d), clean).sum()

  probe_dir = probe * per_image_unit(jax.random.normal(key, images.shape))
  direction = lax.stop_gradient(jax.grad(divergence)(probe_dir))
  adversarial = images + radius * per_image_unit(direction)
  return optax.softmax_cross_entropy(logits_fn(adversarial), clean).mean()
