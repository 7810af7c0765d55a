"""adda_jax.ops: the layer primitives give XLA's values and gradients."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adda_jax import ops


def test_max_pool_matches_reduce_window():
  from flax import linen
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  chex.assert_trees_all_close(ops.max_pool_2x2(x), linen.max_pool(x, (2, 2), (2, 2)))


def conv_loss(conv):
  """A scalar that reaches every input and output pixel with a different weight."""
  def loss(x, kernel):
    y = conv(x, kernel)
    return jnp.sum(jnp.sin(y) * jnp.arange(y.size, dtype=y.dtype).reshape(y.shape) / y.size)
  return loss


@pytest.mark.parametrize("shape,kernel_shape", [((3, 28, 28, 1), (5, 5, 1, 20)),
                                                 ((3, 12, 12, 20), (5, 5, 20, 50)),
                                                 ((2, 9, 7, 4), (3, 2, 4, 5))])
def test_conv_gradients_match_xla(shape, kernel_shape):
  kx, kk = jax.random.split(jax.random.key(0))
  x = jax.random.normal(kx, shape)
  kernel = jax.random.normal(kk, kernel_shape) / np.sqrt(np.prod(kernel_shape[:3]))
  chex.assert_trees_all_close(ops.conv2d(x, kernel), ops.xla_conv2d(x, kernel), rtol=1e-6)
  ours = jax.jit(jax.grad(conv_loss(ops.conv2d), argnums=(0, 1)))(x, kernel)
  xla = jax.jit(jax.grad(conv_loss(ops.xla_conv2d), argnums=(0, 1)))(x, kernel)
  chex.assert_trees_all_close(ours, xla, rtol=1e-4, atol=1e-6)
  assert float(jnp.abs(ours[0]).max()) > 0  # The input gradient is not trivially zero.


def test_conv_gradients_match_xla_under_vmap():
  """Stacked seeds (`--seeds-strategy vmap`) vmap the convolution over per-seed kernels."""
  kx, kk = jax.random.split(jax.random.key(1))
  x = jax.random.normal(kx, (3, 2, 12, 12, 20))
  kernels = jax.random.normal(kk, (3, 5, 5, 20, 50)) / 10
  grads = [jax.jit(jax.vmap(jax.grad(conv_loss(conv), argnums=(0, 1))))(x, kernels)
           for conv in (ops.conv2d, ops.xla_conv2d)]
  chex.assert_trees_all_close(*grads, rtol=1e-4, atol=1e-6)


def test_strided_and_padded_convolutions_are_xla_s():
  x = jax.random.normal(jax.random.key(2), (2, 8, 8, 3))
  kernel = jax.random.normal(jax.random.key(3), (3, 3, 3, 4))
  for stride, padding in ((2, "SAME"), (1, "SAME"), (2, "VALID")):
    chex.assert_trees_all_equal(ops.conv2d(x, kernel, stride, padding),
                                ops.xla_conv2d(x, kernel, stride, padding))
