"""Per-stage orbax checkpoints: one `CheckpointManager` directory per stage.

Each checkpoint holds the stage's train state (parameters, optimiser states, step), the run's
config as JSON and the stage's provenance (training seconds so far, the commit that trained it),
so a stage reused or resumed later still reports where its numbers came from. Orbax writes into
a temporary folder and renames it when complete, so a process killed mid-save leaves no
checkpoint that `latest_step` would pick up; `max_to_keep` prunes old steps but always keeps the
newest.
"""
from __future__ import annotations

import glob
import os
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp

from adda_jax.errors import UserError


class StageCheckpoints:
  """Save and restore one stage's state under `directory`."""

  def __init__(self, directory: str, keep: int):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=False)
    try:
      self._manager = ocp.CheckpointManager(self.directory, options=options)
    except OSError as e:
      raise UserError(f"cannot create checkpoint folder {self.directory} ({e}); choose a "
                      f"writable --workdir")

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, config: dict[str, Any],
           provenance: dict[str, Any]) -> None:
    try:
      self._manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config),
          provenance=ocp.args.JsonSave(provenance)), force=True)
      self._manager.wait_until_finished()
    except (OSError, ValueError) as e:  # tensorstore reports a full disk as ValueError.
      for partial in glob.glob(os.path.join(self.directory, f"{step}.orbax-checkpoint-tmp*")):
        shutil.rmtree(partial, ignore_errors=True)
      reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
      raise UserError(f"could not save the checkpoint at step {step} in {self.directory} "
                      f"({reason}); free disk space and rerun the same command: training "
                      f"resumes from the last complete checkpoint") from e

  def restore(self, step: int, abstract_state: Any
              ) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    """The state saved at `step`, laid out like `abstract_state`, its config and provenance
    (None for checkpoints written before provenance was saved)."""
    items = {"state": ocp.args.StandardRestore(abstract_state),
             "config": ocp.args.JsonRestore()}
    has_provenance = os.path.isdir(os.path.join(self.directory, str(step), "provenance"))
    if has_provenance:
      items["provenance"] = ocp.args.JsonRestore()
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # Orbax raises many types for damaged or mismatched files.
      raise UserError(
          f"checkpoint {self.directory}/{step} is corrupt or does not match this model "
          f"({type(e).__name__}); delete that folder to fall back to an earlier one, or rerun "
          f"with --fresh") from e
    return restored.state, restored.config, restored.provenance if has_provenance else None

  def close(self) -> None:
    self._manager.close()


def abstract_like(state: Any) -> Any:
  """Shape/dtype/sharding placeholders for restoring into the layout of `state`."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
