"""Layer primitives written for speed on the backends we run on.

`max_pool_2x2` is a reshape + max rather than `lax.reduce_window` (flax `nn.max_pool`): the
same values and gradients (up to ties), but XLA differentiates it with a cheap
compare-and-select instead of `select_and_scatter`, which is several times slower on CPU.

`conv2d` is XLA's convolution, except for one gradient on CPU. XLA:CPU computes a VALID
convolution's input gradient as a full convolution over the output gradient padded by the
kernel size, which for LeNet's conv2 costs three times its forward pass and was a step's
slowest piece: 7.7 ms, against 2.3 ms for the forward pass and 3.6 ms for the weight gradient
(batch 128, timed alone on this project's 2-core CPU). `_conv_input_grad_by_matmul` instead
multiplies the output gradient by the kernel once (a plain matmul, the forward pass's cost)
and adds the kernel-sized blocks back into place: 3.2 ms. Matmul forms of the forward pass and
the weight gradient were measured too and were several times slower than XLA's, so those stay
XLA's. Accelerators keep XLA's gradients throughout (cuDNN's are good).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1,
           padding: str = "VALID") -> jax.Array:
  """2-D convolution (LeNet's: VALID, stride 1): x [N, H, W, Cin], kernel [kh, kw, Cin, Cout].

  Same values as `xla_conv2d`; on CPU its VALID stride-1 input gradient is the matmul form
  (module docstring)."""
  if stride == 1 and padding == "VALID" and jax.default_backend() == "cpu":
    return _conv_valid(x, kernel)
  return xla_conv2d(x, kernel, stride, padding)


def xla_conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1,
               padding: str = "VALID") -> jax.Array:
  """XLA's convolution and XLA's gradients (NHWC activations, HWIO kernel)."""
  return lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


@jax.custom_vjp
def _conv_valid(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return xla_conv2d(x, kernel)


def _conv_valid_forward(x, kernel):
  return xla_conv2d(x, kernel), (x, kernel)


def _conv_valid_backward(residuals, grad):
  x, kernel = residuals
  _, kernel_vjp = jax.vjp(lambda k: xla_conv2d(x, k), kernel)
  # Unused input gradients (conv1's, whose input is the images) are dropped by XLA.
  return _conv_input_grad_by_matmul(grad, kernel), kernel_vjp(grad)[0]


_conv_valid.defvjp(_conv_valid_forward, _conv_valid_backward)


def _conv_input_grad_by_matmul(grad: jax.Array, kernel: jax.Array) -> jax.Array:
  """d(VALID stride-1 conv)/d(input) applied to grad [N, Ho, Wo, Cout]: [N, H, W, Cin].

  Input pixel (h + i, w + j) received kernel[i, j] times output (h, w), so its gradient is
  the sum over (i, j) of grad[h, w] @ kernel[i, j].T: one matmul gives every (i, j) term,
  and padding each back to its offset adds them up (a row at a time, which measured faster
  than all kh * kw blocks at once)."""
  kh, kw = kernel.shape[:2]
  blocks = jnp.einsum("nhwo,ijco->nhwijc", grad, kernel)
  total = 0
  for i in range(kh):
    row = sum(jnp.pad(blocks[:, :, :, i, j], ((0, 0), (0, 0), (j, kw - 1 - j), (0, 0)))
              for j in range(kw))
    total = total + jnp.pad(row, ((0, 0), (i, kh - 1 - i), (0, 0), (0, 0)))
  return total


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2, on NHWC with even H and W."""
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
