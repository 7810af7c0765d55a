"""adda_jax: Adversarial Discriminative Domain Adaptation (Tzeng et al., CVPR 2017) in JAX/Flax."""

import os

# jaxlib's CPU linear algebra (the LU solve and SVD behind the validators) calls the OpenBLAS
# that SciPy ships, which starts one busy-waiting thread per core. Beside XLA's own threads,
# or another process, those threads fight for the cores: on the 2-core dev machine with a
# second job running, a 501x501 LU took 144 ms with OpenBLAS's default threads and 2 ms with
# one. The matrices here are small, so one thread is enough; a value the user set is kept.
# SciPy's OpenBLAS reads it when it loads, at the first such call, so this is in time; NumPy's
# own OpenBLAS reads it too when NumPy is imported after adda_jax (as in run.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
