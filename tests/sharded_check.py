"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=4 by test_sharding.py.

Trains a few pretrain and adapt steps with the batch sharded over 4 CPU devices and over 1,
from the same state and data, and prints the largest difference of the resulting states.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np

from adda_jax import steps
from adda_jax.models import make_networks
from adda_jax.train import Placement

BATCH = 16


def train(placement: Placement):
  nets = make_networks(28, 1, "features", (64, 64))
  rng = np.random.default_rng(0)
  source = placement.replicate(steps.DeviceData(
      jnp.asarray(rng.random((64, 28, 28, 1), np.float32)),
      jnp.asarray(rng.integers(0, 10, 64).astype(np.int32))))
  target = placement.replicate(steps.DeviceData(
      jnp.asarray(rng.random((64, 28, 28, 1), np.float32)), jnp.zeros(64, jnp.int32)))
  key = jax.random.key(0)
  tx = steps.pretrain_optimizer(1e-3, 0.9, 2.5e-5)
  call = steps.make_pretrain_call(nets, tx, BATCH, placement.shard_batch)
  state = placement.replicate(steps.init_pretrain(nets, tx, key))
  state, _ = steps.run_calls(lambda s, n: call(s, source, key, num_steps=n), state, 3, 1)
  tx_t, tx_d = steps.adapt_optimizer(2e-4, 0.5), steps.adapt_optimizer(2e-4, 0.5)
  frozen = {"source_encoder": state["encoder"], "classifier": state["classifier"]}
  adapt = steps.make_adapt_call(nets, tx_t, tx_d, "gan", "features", BATCH,
                                placement.shard_batch)
  adapt_state = placement.replicate(steps.init_adapt(nets, tx_t, tx_d, state["encoder"], key))
  adapt_state, _ = steps.run_calls(
      lambda s, n: adapt(s, frozen, source, target, key, num_steps=n), adapt_state, 3, 1)
  return jax.device_get((state, adapt_state))


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
