"""Layer primitives written for speed on the backends we run on.

`max_pool_2x2` is a reshape + max rather than `lax.reduce_window` (flax `nn.max_pool`): the
same values and gradients (up to ties), but XLA differentiates it with a cheap
compare-and-select instead of `select_and_scatter`, which is several times slower on CPU.

Convolutions stay XLA's own; on CPU, `xla_options` keeps them out of YNNPACK, which was the
larger cost. Custom matmul-based convolution gradients (patches x output gradient) were
measured on top of that and were no faster, so they are not used.
"""
from __future__ import annotations

import jax
from jax import lax


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1,
           padding: str = "VALID") -> jax.Array:
  """2-D convolution (LeNet's: VALID, stride 1): x [N, H, W, Cin], kernel [kh, kw, Cin, Cout]."""
  return lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2, on NHWC with even H and W."""
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
