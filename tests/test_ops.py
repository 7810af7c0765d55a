"""The fast convolution's values and both gradients equal XLA's reference convolution."""
import chex
import jax
import pytest
from jax import lax

from adda_jax import ops


def reference(x, k):
  return lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("cin", [1, 3, 20])
def test_conv2d_and_gradients_match_xla(cin):
  kx, kk, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (4, 12, 12, cin))
  k = jax.random.normal(kk, (5, 5, cin, 7))
  g = jax.random.normal(kg, (4, 8, 8, 7))
  chex.assert_trees_all_close(ops.conv2d(x, k), reference(x, k), atol=1e-4, rtol=1e-4)
  ours = jax.vjp(ops.conv2d, x, k)[1](g)
  ref = jax.vjp(reference, x, k)[1](g)
  chex.assert_trees_all_close(ours, ref, atol=1e-3, rtol=1e-4)


def test_custom_gradient_path_is_exercised():
  kx, kk, kg = jax.random.split(jax.random.key(1), 3)
  x, k = jax.random.normal(kx, (2, 9, 9, 1)), jax.random.normal(kk, (5, 5, 1, 4))
  g = jax.random.normal(kg, (2, 5, 5, 4))
  ours = jax.vjp(ops._conv_patch_grad, x, k)[1](g)
  chex.assert_trees_all_close(ours, jax.vjp(reference, x, k)[1](g), atol=1e-3, rtol=1e-4)
