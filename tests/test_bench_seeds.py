"""experiments/bench_seeds.py: its matmul form is the library's convolution, values and
gradients (up to float rounding: the two sum in different orders)."""
import sys

import jax
import numpy as np

from adda_jax import ops
from tests.test_recipe_table import ROOT

sys.path.insert(0, ROOT)
from experiments.bench_seeds import matmul_conv  # noqa: E402


def test_matmul_convolution_equals_the_library_convolution_and_its_gradients():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3, 12, 12, 4)).astype(np.float32)
  kernel = rng.normal(size=(5, 5, 4, 6)).astype(np.float32)
  np.testing.assert_allclose(matmul_conv(x, kernel), ops.conv2d(x, kernel), rtol=1e-4,
                             atol=1e-4)
  grads = [jax.grad(lambda x, k, f=f: (f(x, k) ** 2).sum(), argnums=(0, 1))(x, kernel)
           for f in (matmul_conv, ops.conv2d)]
  for mine, library in zip(*grads):
    np.testing.assert_allclose(mine, library, rtol=1e-4, atol=1e-3)
