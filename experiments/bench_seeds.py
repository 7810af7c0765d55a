"""Times the pretraining step for a stack of seeds trained as one vmapped program, with the
library's convolutions and with a batched-matmul form of them, beside one seed alone.

python experiments/bench_seeds.py [--seeds 1 10] [--block-steps 500]

Vmapped over seeds, each convolution has per-seed weights and becomes a grouped convolution
(its weight gradient a batch-grouped one), which backends run far less efficiently than one
large convolution: on an H200, ten vmapped seeds trained at only twice one seed's throughput
(docs/speed.md). The "matmul" form (`ops.matmul_convolutions`, what `run.py --seeds-strategy
vmap_matmul` trains with) writes a VALID stride-1 convolution as the 25 shifted slices of its
input side by side times the kernel as a matrix, so vmapping gives a batched matrix product
instead. Reports ms per step for the whole stack and per seed, for each form;
on CPU, one step per dispatch (as training runs there), elsewhere `--block-steps` per
dispatch. The last line is one JSON object. Random arrays: no data needed.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from adda_jax import cli, steps, xla_options  # noqa: E402
from adda_jax.configs import get_config  # noqa: E402
from adda_jax.methods import stages_for  # noqa: E402
from adda_jax.methods.base import DATA  # noqa: E402
from experiments.benchmark import timed  # noqa: E402

FORMS = {"library": False, "matmul": True}  # Form name -> make_stage_call's `matmul`.


def measure(seeds: int, matmul: bool, block_steps: int, blocks: int) -> float:
  """ms per step of `seeds` stacked pretraining states (1: the unstacked step), with the
  library's convolutions or (`matmul`) the batched-matmul form."""
  cfg = get_config("mnist_usps")
  stage = stages_for(cfg)[0]
  stacked = seeds > 1
  call = steps.make_stage_call(stage.step, {"source": DATA["source"]}, cfg.batch_size,
                               stacked=stacked, matmul=matmul)
  rng = np.random.default_rng(0)
  data = {"source": steps.DeviceData(
      jnp.asarray(rng.random((4096, 28, 28, 1), np.float32)),
      jnp.asarray(rng.integers(0, 10, 4096).astype(np.int32)))}
  keys = jax.random.split(jax.random.key(0), seeds)
  states = [stage.init(k, {}) for k in keys]
  state = jax.tree.map(lambda *x: jnp.stack(x), *states) if stacked else states[0]
  key = keys if stacked else keys[0]
  per_call = 1 if jax.default_backend() == "cpu" else block_steps
  holder = {"state": state}

  def block():
    holder["state"], metrics = steps.run_calls(
        lambda s, k: call(s, {}, data, key, num_steps=k), holder["state"], block_steps,
        per_call)
    return metrics

  return timed(block, blocks, block_steps)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--seeds", type=int, nargs="+", default=[1, 10])
  parser.add_argument("--block-steps", type=int, default=None,
                      help="steps per timed block (default 40 on CPU, 500 elsewhere)")
  parser.add_argument("--blocks", type=int, default=3)
  cli.add_gpu_kernels_flag(parser, several=True)
  args = parser.parse_args()
  if min(args.seeds) < 1 or args.blocks < 1 or (args.block_steps or 1) < 1:
    parser.error("--seeds, --blocks and --block-steps take positive whole numbers")
  block_steps = args.block_steps or (40 if jax.default_backend() == "cpu" else 500)
  result = {"device": jax.devices()[0].device_kind, "block_steps": block_steps}
  policies = args.gpu_kernels if jax.default_backend() == "gpu" else ["deterministic"]
  for policy in policies:
    xla_options.use_gpu_kernels(policy)
    tag = "" if policy == "deterministic" else f"_{policy}"
    for seeds in args.seeds:
      for name, matmul in FORMS.items():
        ms = measure(seeds, matmul, block_steps, args.blocks)
        result[f"{name}_{seeds}_ms{tag}"] = ms
        kernels = f", {policy} kernels" if tag else ""
        print(f"[seeds] {seeds:3d} seed(s), {name:7s} convolutions{kernels}: "
              f"{ms:8.3f} ms/step, {ms / seeds:7.3f} ms per seed-step", flush=True)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
