"""XLA compiler options for the library's jitted training and evaluation calls, per backend.

They go to `jax.jit(..., compiler_options=...)`, so they apply to our calls only and never
touch the process-wide XLA_FLAGS.

- CPU: XLA:CPU (jaxlib 0.10) hands convolutions to YNNPACK fusions by default, which are slow
  on LeNet's small convolutions and their gradients (profiled: the conv2 weight gradient took
  11.7 ms, the conv2 forward 9.7 ms of a 45 ms pretraining step). An empty YNN fusion list
  sends them back to XLA's own (Eigen) kernels: pretraining went from 39-45 to 25-31 ms/step
  on the 2-core dev machine (`experiments/benchmark.py --baseline`, results/benchmark_cpu.jsonl).
  Restricting YNN to elementwise fusions measured the same; matmul-based convolution
  weight gradients were no faster on top of it (the input gradient was: `adda_jax/ops.py`).
  Evaluation (forward only) keeps the defaults: there YNNPACK was faster (5.5 vs 8.5-9.4 ms
  per batch of 128).
- GPU, two kernel policies (`--gpu-kernels`, `use_gpu_kernels`):
  - "deterministic" (the default): `xla_gpu_deterministic_ops`, so one seed gives one result
    (measured on an H100: two runs of the same command gave identical losses and accuracies,
    and LeNet's steps were not slower). It also switches XLA's autotuning off, as does the
    narrower `xla_gpu_exclude_nondeterministic_ops` (XLA's autotuner pass selects the first
    candidate under either), so every convolution runs its default algorithm. That may be
    what makes CoGAN's transposed convolutions and the vmapped seeds' grouped ones slow
    there (docs/speed.md); not measured.
  - "autotuned": XLA's defaults. XLA times the candidate kernels and keeps the fastest,
    non-deterministic ones included, so the same seed may differ in its last bits from one
    invocation to the next, and a resumed run is not bit-exact on GPU.

A jaxlib that does not know an option would refuse every compile; `for_default_backend` tries
the options once on a tiny function and drops them (with a warning) if they are refused.
"""
from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp

from adda_jax.errors import UserError

# (backend, use) -> options; use is "train" (the multi-step training calls) or "eval".
PER_BACKEND: dict[tuple[str, str], dict[str, object]] = {
    ("cpu", "train"): {"xla_cpu_experimental_ynn_fusion_type": ""},
}
# GPU policy -> options, for training and evaluation alike.
GPU_KERNELS: dict[str, dict[str, object]] = {
    "deterministic": {"xla_gpu_deterministic_ops": True},
    "autotuned": {},
}
_gpu_policy = "deterministic"


def use_gpu_kernels(policy: str) -> None:
  """Sets the GPU kernel policy for every call compiled from now on (see the docstring)."""
  if policy not in GPU_KERNELS:
    raise UserError(f"--gpu-kernels {policy!r}: choose one of {', '.join(GPU_KERNELS)}")
  global _gpu_policy
  _gpu_policy = policy
  for_default_backend.cache_clear()


def gpu_kernels() -> str | None:
  """The GPU kernel policy in force, or None when JAX does not run on a GPU."""
  return _gpu_policy if jax.default_backend() == "gpu" else None


def options_for(backend: str, use: str) -> dict[str, object]:
  if backend == "gpu":
    return dict(GPU_KERNELS[_gpu_policy])
  return dict(PER_BACKEND.get((backend, use), {}))


@functools.cache
def for_default_backend(use: str) -> dict[str, object]:
  """The options for `use` on JAX's default backend, if this jaxlib accepts them; else none."""
  backend = jax.default_backend()
  options = options_for(backend, use)
  if not options:
    return {}
  try:
    jax.jit(lambda x: x + 1, compiler_options=options)(jnp.zeros(()))
  except Exception as e:  # noqa: BLE001 - any refusal means "run without them".
    warnings.warn(f"XLA compiler options {options} were refused on {backend} ({e}); "
                  f"running without them (slower, or not deterministic on GPU)")
    return {}
  return options
