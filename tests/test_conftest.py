"""tests/conftest.py: the test session's compilation cache is shared, then removed."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INNER = '''
import os, jax, jax.numpy as jnp, tempfile

def test_compiles_into_the_session_cache():
  folder = os.environ["JAX_COMPILATION_CACHE_DIR"]
  assert folder.startswith(tempfile.gettempdir())
  jax.jit(lambda x: x * 3 + 1)(jnp.arange(4.0)).block_until_ready()
  assert os.listdir(folder)
'''


def run_inner_session(tmp_path, *flags):
  """A pytest session under tests/conftest.py, with its own temp directory."""
  (tmp_path / "inner").mkdir()
  (tmp_path / "inner" / "test_inner.py").write_text(INNER)
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("PYTEST_", "JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
  env["TMPDIR"] = str(tmp_path / "temp")
  os.makedirs(env["TMPDIR"])
  result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path / "inner"),
                           str(tmp_path / "inner"), *flags], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
  return os.listdir(env["TMPDIR"])


def test_the_cache_is_used_then_removed(tmp_path):
  assert not [name for name in run_inner_session(tmp_path)
              if name.startswith("adda_jax_tests_xla_")]


def test_with_xdist_workers_the_cache_goes_when_the_session_ends(tmp_path):
  assert not [name for name in run_inner_session(tmp_path, "-n", "2")
              if name.startswith("adda_jax_tests_xla_")]
