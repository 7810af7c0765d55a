"""Layer primitives written for speed on the backends we run on.

`conv2d` on CPU computes the weight gradient of a convolution with few input channels (the
first LeNet layer: 1 or 3) as one matrix product of image patches with the output gradient.
XLA:CPU's own weight-gradient convolution is slow for that shape (measured 6 ms of a 46 ms
LeNet step at batch 128, jax 0.10.2, 2 cores); the forward pass and input gradient stay XLA
convolutions, and accelerators use XLA's (cuDNN's) convolutions throughout.

`max_pool_2x2` is a reshape + max rather than `lax.reduce_window`: the same values and
gradients (up to ties), but XLA differentiates it with a cheap compare-and-select instead of
`select_and_scatter`, which is several times slower on CPU.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

_DIMS = ("NHWC", "HWIO", "NHWC")
PATCH_GRAD_MAX_CHANNELS = 3  # Input channels up to which the patch-matmul weight gradient wins.


def conv2d(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """VALID, stride-1 convolution: x [N, H, W, Cin], kernel [kh, kw, Cin, Cout]."""
  if jax.default_backend() == "cpu" and kernel.shape[2] <= PATCH_GRAD_MAX_CHANNELS:
    return _conv_patch_grad(x, kernel)
  return _xla_conv(x, kernel)


def _xla_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=_DIMS)


def _patches(x: jax.Array, kh: int, kw: int) -> jax.Array:
  """[N, H, W, C] -> [N, H-kh+1, W-kw+1, kh*kw*C], ordered (i, j, c) like an HWIO kernel."""
  _, h, w, _ = x.shape
  oh, ow = h - kh + 1, w - kw + 1
  return jnp.concatenate([x[:, i:i + oh, j:j + ow, :] for i in range(kh) for j in range(kw)],
                         axis=-1)


@jax.custom_vjp
def _conv_patch_grad(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return _xla_conv(x, kernel)


def _conv_patch_grad_fwd(x, kernel):
  return _xla_conv(x, kernel), (x, kernel)


def _conv_patch_grad_bwd(residuals, grad):
  x, kernel = residuals
  kh, kw, cin, cout = kernel.shape
  patches = _patches(x, kh, kw).reshape(-1, kh * kw * cin)
  d_kernel = (patches.T @ grad.reshape(-1, cout)).reshape(kernel.shape)
  # The input gradient is a full convolution with the flipped kernel (unused, hence removed by
  # XLA, when x is the input image).
  padded = jnp.pad(grad, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
  d_x = _xla_conv(padded, kernel[::-1, ::-1].transpose(0, 1, 3, 2))
  return d_x, d_kernel


_conv_patch_grad.defvjp(_conv_patch_grad_fwd, _conv_patch_grad_bwd)


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2, on NHWC with even H and W."""
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
