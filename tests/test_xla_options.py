"""Backend compiler options: accepted ones are used, refused ones are dropped with a warning."""
import jax
import jax.numpy as jnp
import pytest

from adda_jax import xla_options


@pytest.fixture(autouse=True)
def fresh_cache():
  xla_options.for_default_backend.cache_clear()
  yield
  xla_options.for_default_backend.cache_clear()


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
