"""experiments/bench_seeds.py: a stack of seeds times with the matmul form (the library's
forms, and their values, are tested in test_ops.py and test_seeds.py)."""
import math
import sys

from tests.test_recipe_table import ROOT

sys.path.insert(0, ROOT)
from experiments import bench_seeds  # noqa: E402


def test_a_stack_times_with_the_matmul_form():
  ms = bench_seeds.measure(2, bench_seeds.FORMS["matmul"], block_steps=1, blocks=1)
  assert math.isfinite(ms) and ms > 0
