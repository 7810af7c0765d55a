"""Loss values on inputs whose results are known in closed form."""
import math

import jax.numpy as jnp
import numpy as np
import pytest

from adda_jax import losses

LOG2 = math.log(2.0)


def test_classification_loss_uniform_logits():
  np.testing.assert_allclose(losses.classification_loss(jnp.zeros((3, 10)), jnp.array([0, 4, 9])),
                             math.log(10.0), rtol=1e-6)


def test_classification_loss_hand_computed():
  logits = jnp.array([[2.0, 0.0], [0.0, 1.0]])
  expected = 0.5 * (-math.log(math.e**2 / (math.e**2 + 1)) - math.log(math.e / (1 + math.e)))
  np.testing.assert_allclose(losses.classification_loss(logits, jnp.array([0, 1])), expected,
                             rtol=1e-6)


def test_discriminator_loss_at_chance_is_2log2():
  np.testing.assert_allclose(losses.discriminator_loss(jnp.zeros(4), jnp.zeros(4)), 2 * LOG2,
                             rtol=1e-6)


def test_discriminator_loss_hand_computed():
  s, t = jnp.array([1.0]), jnp.array([-2.0])
  expected = -math.log(1 / (1 + math.exp(-1.0))) - math.log(1 - 1 / (1 + math.exp(2.0)))
  np.testing.assert_allclose(losses.discriminator_loss(s, t), expected, rtol=1e-6)


def test_discriminator_accuracy():
  acc = losses.discriminator_accuracy(jnp.array([1.0, -1.0]), jnp.array([-1.0, -3.0]))
  np.testing.assert_allclose(acc, 0.75)


@pytest.mark.parametrize("kind,at_zero", [("gan", LOG2), ("minimax", -LOG2), ("confusion", LOG2)])
def test_mapping_losses_at_chance(kind, at_zero):
  np.testing.assert_allclose(losses.mapping_loss(jnp.zeros(5), kind), at_zero, rtol=1e-6)


def test_mapping_losses_hand_computed():
  d = jnp.array([2.0])
  p = 1 / (1 + math.exp(-2.0))
  np.testing.assert_allclose(losses.mapping_loss(d, "gan"), -math.log(p), rtol=1e-6)
  np.testing.assert_allclose(losses.mapping_loss(d, "minimax"), math.log(1 - p), rtol=1e-5)
  np.testing.assert_allclose(losses.mapping_loss(d, "confusion"),
                             -0.5 * (math.log(p) + math.log(1 - p)), rtol=1e-6)


def test_unknown_mapping_loss():
  with pytest.raises(ValueError, match="unknown adversarial loss"):
    losses.mapping_loss(jnp.zeros(1), "wasserstein")


def test_information_maximisation_loss_hand_computed():
  # Two confident predictions into different classes: entropy ~0, marginal H = log 2.
  confident = jnp.array([[20.0, 0.0], [0.0, 20.0]])
  np.testing.assert_allclose(losses.information_maximisation_loss(confident), -np.log(2),
                             atol=1e-6)
  # Uniform predictions: entropy log 2 each, marginal log 2: the loss is 0.
  np.testing.assert_allclose(losses.information_maximisation_loss(jnp.zeros((3, 2))), 0.0,
                             atol=1e-6)
  # Both confident in one class (collapse): entropy ~0 and marginal ~0, worse than diverse.
  collapsed = jnp.array([[20.0, 0.0], [20.0, 0.0]])
  assert float(losses.information_maximisation_loss(collapsed)) > -1e-6
  # p = softmax([1, 0]) and softmax([0, 1]) by hand.
  p = np.exp(1) / (np.exp(1) + 1)
  h = -(p * np.log(p) + (1 - p) * np.log(1 - p))
  np.testing.assert_allclose(
      losses.information_maximisation_loss(jnp.array([[1.0, 0.0], [0.0, 1.0]])), h - np.log(2),
      rtol=1e-5)
