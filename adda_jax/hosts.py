"""Multi-process training (`run.py --distributed`): one process per host, or several on one.

Every process runs the same command: JAX joins their devices into one global mesh, each
process feeds its own devices' share of every batch (the batch is sharded along the mesh's
"data" axis) and the gradients are summed across processes inside the compiled step (on CPU
through gloo collectives). Parameters are replicated, so every process holds the whole model.
Only process 0 writes the workdir (config, metrics, summary, report, results rows, logs);
checkpoints are written through orbax, which every process calls and which writes once.
"""
from __future__ import annotations

import jax

from adda_jax.errors import UserError


def initialize(coordinator: str | None, num_processes: int | None,
               process_id: int | None) -> None:
  """jax.distributed.initialize, with the cluster's settings unless all three are given."""
  given = [v is not None for v in (coordinator, num_processes, process_id)]
  if any(given) and not all(given[1:]):
    raise UserError("--distributed outside a cluster needs --num-processes and --process-id "
                    "(and --coordinator HOST:PORT, or $JAX_COORDINATOR_ADDRESS)")
  if num_processes is not None and num_processes < 1:
    raise UserError(f"--num-processes must be at least 1, not {num_processes}")
  if num_processes is not None and not 0 <= (process_id or 0) < num_processes:
    raise UserError(f"--process-id {process_id} must lie in 0..{num_processes - 1}")
  try:
    jax.distributed.initialize(coordinator, num_processes, process_id)
  except (RuntimeError, ValueError) as e:
    raise UserError(f"--distributed: could not join the other processes "
                    f"({str(e).splitlines()[0][:200]}); check --coordinator and that every "
                    f"process runs the same command") from None


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0; a lone process always)."""
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Waits until every process of a --distributed run gets here; nothing for a lone process."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def finish() -> None:
  """Leaves a --distributed run together: waits for every process, then shuts down JAX's
  distributed client (a process that simply exited first would look crashed to the others)."""
  barrier("run finished")
  jax.distributed.shutdown()
