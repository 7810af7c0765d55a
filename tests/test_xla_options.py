"""Backend compiler options: accepted ones are used, refused ones are dropped with a warning."""
import jax
import jax.numpy as jnp
import pytest

from adda_jax import results, xla_options
from adda_jax.errors import UserError


@pytest.fixture(autouse=True)
def fresh_cache():
  xla_options.for_default_backend.cache_clear()
  yield
  xla_options.use_gpu_kernels("deterministic")  # Also clears the cache.


def test_this_jaxlib_accepts_the_cpu_options():
  assert jax.default_backend() == "cpu"
  options = xla_options.for_default_backend("train")
  assert options == xla_options.PER_BACKEND[("cpu", "train")]
  assert float(jax.jit(lambda x: x * 2, compiler_options=options)(jnp.ones(()))) == 2.0


def test_refused_options_fall_back_to_none(monkeypatch):
  monkeypatch.setitem(xla_options.PER_BACKEND, ("cpu", "train"),
                      {"xla_no_such_option_anywhere": True})
  with pytest.warns(UserWarning, match="refused"):
    assert xla_options.for_default_backend("train") == {}


def test_gpu_kernel_policies_pick_their_options():
  assert xla_options.options_for("gpu", "train") == {"xla_gpu_deterministic_ops": True}
  xla_options.use_gpu_kernels("autotuned")
  for use in ("train", "eval"):
    assert xla_options.options_for("gpu", use) == {}  # XLA's defaults: autotuning on.
  # The CPU's own options do not depend on the GPU policy.
  assert xla_options.options_for("cpu", "train") == xla_options.PER_BACKEND[("cpu", "train")]
  assert xla_options.options_for("cpu", "eval") == {}


def test_gpu_policy_is_neither_reported_nor_applied_off_gpu():
  xla_options.use_gpu_kernels("autotuned")
  assert xla_options.gpu_kernels() is None
  assert results.device_name() == jax.devices()[0].device_kind
  assert xla_options.for_default_backend("eval") == {}


def test_unknown_gpu_policy_is_one_line():
  with pytest.raises(UserError, match="choose one of deterministic, autotuned"):
    xla_options.use_gpu_kernels("fast")


def test_a_non_default_gpu_policy_is_named_in_the_device(monkeypatch):
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  kind = jax.devices()[0].device_kind
  assert results.device_name() == kind
  xla_options.use_gpu_kernels("autotuned")
  assert results.device_name() == f"{kind}, autotuned kernels"
