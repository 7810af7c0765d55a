"""pyproject.toml: `pip install -e .` into an environment that already has its own JAX keeps
that JAX (the lower bounds accept it; nothing is downloaded) and imports the package."""
import os
import subprocess
import sys
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_editable_install_keeps_the_environments_jax(tmp_path):
  venv = tmp_path / "venv"
  subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
  python = str(venv / "bin" / "python")
  site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                         "['purelib'])"], capture_output=True, text=True, check=True).stdout
  # "An environment with its own JAX": this one's packages, visible to the new venv.
  with open(os.path.join(site.strip(), "parent_env.pth"), "w") as f:
    f.write(sysconfig.get_paths()["purelib"] + "\n")
  install = subprocess.run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation",
                            "-e", ROOT], capture_output=True, text=True, timeout=600)
  assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
  probe = subprocess.run([python, "-c", "import adda_jax, adda_jax.train, jax; "
                          "print(adda_jax.__file__, jax.__version__)"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
  assert probe.returncode == 0, probe.stderr[-2000:]
  path, version = probe.stdout.split()
  assert path == os.path.join(ROOT, "adda_jax", "__init__.py")  # Editable: this checkout.
  import jax
  assert version == jax.__version__


LINALG_THREADS = """
import adda_jax, jax.numpy as jnp, threadpoolctl
before = {lib["filepath"] for lib in threadpoolctl.threadpool_info()}
jnp.linalg.solve(jnp.eye(64) * 2.0, jnp.ones(64)).block_until_ready()  # Loads jaxlib's LAPACK.
print(sorted(lib["num_threads"] for lib in threadpoolctl.threadpool_info()
             if lib["filepath"] not in before))
"""


def test_jaxlib_linear_algebra_runs_on_one_thread_unless_the_user_says_otherwise():
  """adda_jax/__init__.py: the BLAS behind jaxlib's LU and SVD starts with one thread (its
  default of one per core fought XLA and other processes for the cores), and a thread count
  the user set is kept."""
  env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
  counts = {}
  for setting in (None, "2"):
    run_env = env if setting is None else {**env, "OPENBLAS_NUM_THREADS": setting}
    probe = subprocess.run([sys.executable, "-c", LINALG_THREADS], env=run_env, cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-2000:]
    counts[setting] = probe.stdout.split("\n")[-2]
  assert counts == {None: "[1]", "2": "[2]"}
