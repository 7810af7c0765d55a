"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=4 by test_sharding.py.

Trains a few pretrain and adapt steps with the batch sharded over 4 CPU devices and over 1,
from the same state and data, and prints the largest difference of the resulting states.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np

from adda_jax import steps
from adda_jax.configs import get_config
from adda_jax.methods import stages_for
from adda_jax.methods.base import DATA
from adda_jax.runner import Placement

BATCH = 16


def train(placement: Placement):
  """Both ADDA stages as the runner builds them, a few steps each."""
  cfg = get_config("mnist_usps").replace(disc_hidden=(64, 64), batch_size=BATCH)
  pretrain, adapt = stages_for(cfg)
  rng = np.random.default_rng(0)
  datasets = {name: placement.replicate(steps.DeviceData(
      jnp.asarray(rng.random((64, 28, 28, 1), np.float32)),
      jnp.asarray(rng.integers(0, 10, 64).astype(np.int32)))) for name in ("source", "target")}
  key = jax.random.key(0)
  earlier = {}
  for stage in (pretrain, adapt):
    call = steps.make_stage_call(stage.step, {n: DATA[n] for n in stage.data}, BATCH,
                                 placement.shard_batch)
    frozen = placement.replicate(stage.frozen(earlier))
    state = placement.replicate(stage.init(key, earlier))
    inputs = stage.inputs(frozen, datasets)
    state, _ = steps.run_calls(lambda s, n: call(s, frozen, inputs, key, num_steps=n),
                               state, 3, 1)
    earlier[stage.name] = state
  return jax.device_get(earlier)


def main():
  devices = jax.devices()
  sharded = train(Placement.over(devices, BATCH))
  single = train(Placement.over(devices[:1], BATCH))
  diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - b).max()), sharded, single))
  moved = jax.tree.leaves(jax.tree.map(lambda a: float(np.abs(a).max()), sharded))
  print(json.dumps({"devices": len(devices), "max_abs_diff": max(diffs),
                    "max_abs_value": max(moved)}))


if __name__ == "__main__":
  main()
