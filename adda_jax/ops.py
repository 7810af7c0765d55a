"""Layer primitives written for speed on the backends we run on.

`max_pool_2x2` is a reshape + max rather than `lax.reduce_window`: the same values and
gradients (up to ties), but XLA differentiates it with a cheap compare-and-select instead of
`select_and_scatter`, which is several times slower on CPU.
"""
from __future__ import annotations

import jax
from jax import lax


def conv2d(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """VALID, stride-1 convolution: x [N, H, W, Cin], kernel [kh, kw, Cin, Cout]."""
  return lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2, on NHWC with even H and W."""
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
