"""adda_jax.ops: the layer primitives give XLA's values and gradients."""
import functools

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


STRIDE2_CASES = [((2, 32, 32, 3), (5, 5, 3, 8), "SAME"),   # DTN's conv1
                 ((2, 8, 8, 16), (5, 5, 16, 6), "SAME"),   # DTN's conv3, fewer channels
                 ((2, 9, 7, 3), (3, 2, 3, 4), "SAME"),     # odd sides, an even kernel side
                 ((2, 10, 11, 2), (4, 3, 2, 3), "VALID")]


@pytest.mark.parametrize("shape,kernel_shape,padding", STRIDE2_CASES)
def test_stride2_convolutions_have_xla_s_values_and_gradients(shape, kernel_shape, padding):
  """Stride 2 (DTN): on CPU XLA's forward with the input gradient taken on 2x2 pixel blocks;
  inside `matmul_convolutions()` the blocks form throughout. Values and gradients are XLA's."""
  kx, kk = jax.random.split(jax.random.key(10))
  x = jax.random.normal(kx, shape)
  kernel = jax.random.normal(kk, kernel_shape) / np.sqrt(np.prod(kernel_shape[:3]))
  ours = functools.partial(ops.conv2d, stride=2, padding=padding)
  xla = functools.partial(ops.xla_conv2d, stride=2, padding=padding)
  with ops.matmul_convolutions():
    blocks = jax.jit(jax.value_and_grad(conv_loss(ours), argnums=(0, 1)))(x, kernel)
  chex.assert_trees_all_equal(ours(x, kernel), xla(x, kernel))
  expected = jax.jit(jax.value_and_grad(conv_loss(xla), argnums=(0, 1)))(x, kernel)
  for grads in (jax.jit(jax.value_and_grad(conv_loss(ours), argnums=(0, 1)))(x, kernel),
                blocks):
    # Kernel gradients sum up to 512 terms of size ~1 (conv1's): float32 rounding of 1e-5.
    chex.assert_trees_all_close(grads, expected, rtol=1e-4, atol=1e-5)
  assert float(jnp.abs(expected[1][0]).min()) > 0  # Every input pixel gets a gradient.


def test_stride2_input_gradient_avoids_xla_s_dilated_convolution():
  """XLA:CPU's own input gradient of a stride-2 convolution is a convolution over the output
  gradient dilated by 2, which took 434 ms against 19 ms for the forward pass at DTN's conv3
  (batch 128); the library's gradient has no dilated convolution in it."""
  x = jax.random.normal(jax.random.key(11), (2, 8, 8, 4))
  kernel = jax.random.normal(jax.random.key(12), (5, 5, 4, 6))

  def input_grad_text(conv):
    grad = jax.jit(jax.grad(conv_loss(functools.partial(conv, stride=2, padding="SAME"))))
    return grad.lower(x, kernel).as_text()

  assert "lhs_dilate = [2, 2]" in input_grad_text(ops.xla_conv2d)
  assert "lhs_dilate = [2, 2]" not in input_grad_text(ops.conv2d)


@pytest.mark.parametrize("shape,kernel_shape,stride,padding", [
    ((2, 1, 1, 5), (4, 4, 5, 8), 1, ((3, 3), (3, 3))),  # CoGAN's layers, narrower: z -> 4x4,
    ((2, 4, 4, 8), (3, 3, 8, 6), 2, ((1, 1), (1, 1))),  # 4 -> 7,
    ((2, 13, 13, 6), (3, 3, 6, 4), 2, ((1, 1), (1, 1))),  # 13 -> 25,
    ((2, 25, 25, 4), (6, 6, 4, 1), 1, ((4, 4), (4, 4))),  # 25 -> 28 (the output layer).
    ((3, 5, 7, 3), (3, 2, 3, 5), 2, ((0, 2), (1, 0))),  # Uneven sides, kernel and padding.
    ((2, 6, 6, 3), (3, 3, 3, 2), 3, ((4, 3), (3, 4))),  # Padding past the kernel, stride 3.
])
def test_transposed_convolutions_have_xla_s_values_and_gradients(shape, kernel_shape, stride,
                                                                  padding):
  kx, kk = jax.random.split(jax.random.key(13))
  x = jax.random.normal(kx, shape)
  kernel = jax.random.normal(kk, kernel_shape) / np.sqrt(np.prod(kernel_shape[:3]))
  ours = functools.partial(ops.conv_transpose, stride=stride, padding=padding)
  xla = functools.partial(ops.xla_conv_transpose, stride=stride, padding=padding)
  chex.assert_trees_all_equal(ours(x, kernel), xla(x, kernel))
  grads = [jax.jit(jax.grad(conv_loss(conv), argnums=(0, 1)))(x, kernel) for conv in (ours, xla)]
  chex.assert_trees_all_close(*grads, rtol=1e-4, atol=1e-5)
  assert float(jnp.abs(grads[1][1]).min()) > 0  # Every tap gets a gradient.


def test_transposed_kernel_gradient_is_no_convolution():
  """XLA:CPU's kernel gradient of a stride-2 transposed convolution is a convolution over the
  dilated input, which took 3-12 s per layer at CoGAN's widths; the library's is a matmul,
  so the gradient's program holds only the forward pass's convolution."""
  x = jax.random.normal(jax.random.key(14), (2, 4, 4, 8))
  kernel = jax.random.normal(jax.random.key(15), (3, 3, 8, 6))

  def convolutions(conv):
    loss = conv_loss(functools.partial(conv, stride=2, padding=((1, 1), (1, 1))))
    return jax.jit(jax.grad(loss, argnums=1)).lower(x, kernel).as_text().count(
        "stablehlo.convolution")

  assert convolutions(ops.xla_conv_transpose) == 2
  assert convolutions(ops.conv_transpose) == 1


def plain_conv_pool(x, kernel, bias):
  return ops.max_pool_2x2(ops.xla_conv2d(x, kernel) + bias)


def conv_input_channels(fn, *args):
  """Input channels of each convolution `fn(*args)` runs (its jaxpr, nested ones such as
  custom_vjp's included)."""
  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name == "conv_general_dilated":
        yield eqn.invars[1].aval.shape[2]
      for param in eqn.params.values():
        inner = getattr(param, "jaxpr", param)
        if hasattr(inner, "eqns"):
          yield from walk(inner)
  return list(walk(jax.make_jaxpr(fn)(*args).jaxpr))


def conv_pool_loss(conv):
  def loss(x, kernel, bias):
    return conv_loss(lambda x, kernel: conv(x, kernel, bias))(x, kernel)
  return loss


@pytest.mark.parametrize("shape,kernel_shape", [((3, 28, 28, 1), (5, 5, 1, 20)),
                                                 ((2, 32, 32, 3), (5, 5, 3, 20)),
                                                 ((2, 10, 8, 2), (3, 5, 2, 4))])
def test_conv_pool_is_trained_on_pixel_blocks_with_the_plain_forms_values(shape,
                                                                          kernel_shape):
  """Images: differentiated, the space-to-depth form (4x the channels); evaluated, the plain
  one. Values and the gradients of input, kernel and bias are the plain form's."""
  kx, kk, kb = jax.random.split(jax.random.key(4), 3)
  x = jax.random.normal(kx, shape)
  kernel = jax.random.normal(kk, kernel_shape) / np.sqrt(np.prod(kernel_shape[:3]))
  bias = jax.random.normal(kb, kernel_shape[-1:])
  loss = conv_pool_loss(ops.conv2d_max_pool_2x2)
  assert conv_input_channels(ops.conv2d_max_pool_2x2, x, kernel, bias) == [shape[-1]]
  assert 4 * shape[-1] in conv_input_channels(jax.grad(loss, argnums=1), x, kernel, bias)
  chex.assert_trees_all_close(ops.conv2d_max_pool_2x2(x, kernel, bias),
                              plain_conv_pool(x, kernel, bias), rtol=1e-6)
  ours = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(x, kernel, bias)
  plain = jax.jit(jax.value_and_grad(conv_pool_loss(plain_conv_pool), argnums=(0, 1, 2)))(
      x, kernel, bias)
  chex.assert_trees_all_close(ours, plain, rtol=1e-4, atol=1e-5)
  assert float(jnp.abs(ours[1][1]).min()) > 0  # Every kernel tap gets a gradient.


def test_conv_pool_on_pixel_blocks_under_vmap():
  kx, kk = jax.random.split(jax.random.key(5))
  x = jax.random.normal(kx, (3, 2, 28, 28, 1))
  kernels = jax.random.normal(kk, (3, 5, 5, 1, 20)) / 5
  biases = jnp.arange(60.0).reshape(3, 20) / 60
  grads = [jax.jit(jax.vmap(jax.grad(conv_pool_loss(conv), argnums=(1, 2))))(x, kernels, biases)
           for conv in (ops.conv2d_max_pool_2x2, plain_conv_pool)]
  chex.assert_trees_all_close(*grads, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape,kernel_shape", [((2, 12, 12, 20), (5, 5, 20, 50)),
                                                 ((2, 11, 11, 1), (4, 4, 1, 3))])
def test_other_conv_pools_keep_the_plain_form(shape, kernel_shape):
  """Many input channels, or odd image sides (then an even kernel, for an even output): the
  plain convolution, differentiated or not."""
  x = jax.random.normal(jax.random.key(6), shape)
  kernel = jax.random.normal(jax.random.key(7), kernel_shape)
  bias = jnp.ones(kernel_shape[-1:])
  loss = conv_pool_loss(ops.conv2d_max_pool_2x2)
  assert conv_input_channels(ops.conv2d_max_pool_2x2, x, kernel, bias) == [shape[-1]]
  assert 4 * shape[-1] not in conv_input_channels(jax.grad(loss, argnums=1), x, kernel, bias)
  chex.assert_trees_all_equal(ops.conv2d_max_pool_2x2(x, kernel, bias),
                              ops.max_pool_2x2(ops.conv2d(x, kernel) + bias))


@pytest.mark.parametrize("shape,kernel_shape", [((3, 12, 12, 4), (5, 5, 4, 6)),
                                                 ((2, 9, 7, 2), (3, 2, 2, 5))])
def test_matmul_convolution_has_xla_s_values_and_gradients(shape, kernel_shape):
  kx, kk = jax.random.split(jax.random.key(8))
  x = jax.random.normal(kx, shape)
  kernel = jax.random.normal(kk, kernel_shape) / np.sqrt(np.prod(kernel_shape[:3]))
  chex.assert_trees_all_close(ops.matmul_conv2d(x, kernel), ops.xla_conv2d(x, kernel),
                              rtol=1e-5, atol=1e-6)
  grads = [jax.jit(jax.grad(conv_loss(conv), argnums=(0, 1)))(x, kernel)
           for conv in (ops.matmul_conv2d, ops.xla_conv2d)]
  chex.assert_trees_all_close(*grads, rtol=1e-4, atol=1e-6)


def test_matmul_convolutions_leave_no_convolution_in_a_vmapped_gradient():
  """`--seeds-strategy vmap_matmul`: traced inside the block, a stack's training gradient
  through conv + pool compiles to no (grouped) convolution and keeps the library's values;
  outside it the library's convolutions come back."""
  kx, kk = jax.random.split(jax.random.key(9))
  x = jax.random.normal(kx, (3, 2, 28, 28, 1))
  kernels = jax.random.normal(kk, (3, 5, 5, 1, 20)) / 5
  biases = jnp.arange(60.0).reshape(3, 20) / 60

  def stacked_grad():  # A new function each time: JAX caches traces by function.
    return jax.jit(jax.vmap(jax.value_and_grad(conv_pool_loss(ops.conv2d_max_pool_2x2),
                                               argnums=(1, 2))))

  def convolutions():
    return stacked_grad().lower(x, kernels, biases).as_text().count("stablehlo.convolution")

  with ops.matmul_convolutions():
    assert convolutions() == 0
    matmul = stacked_grad()(x, kernels, biases)
  assert convolutions() > 0
  chex.assert_trees_all_close(matmul, stacked_grad()(x, kernels, biases), rtol=1e-4,
                              atol=1e-5)
