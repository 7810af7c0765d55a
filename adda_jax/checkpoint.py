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
    self._check_layout(step, abstract_state)
    items = {"state": ocp.args.StandardRestore(abstract_state),
             "config": ocp.args.JsonRestore()}
    has_provenance = os.path.isdir(os.path.join(self.directory, str(step), "provenance"))
    if has_provenance:
      items["provenance"] = ocp.args.JsonRestore()
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # Orbax raises many types for damaged or mismatched files.
      raise self._corrupt(step, type(e).__name__) from e
    return restored.state, restored.config, restored.provenance if has_provenance else None

  def _check_layout(self, step: int, abstract_state: Any) -> None:
    """Compares the saved arrays' paths, shapes and dtypes with the state to restore into,
    before reading any data: names what differs, and spares orbax a failing restore."""
    try:
      with ocp.StandardCheckpointer() as checkpointer:
        saved = checkpointer.metadata(os.path.join(self.directory, str(step), "state"))
      saved = _layout(saved.item_metadata)
    except Exception as e:  # Missing or unreadable metadata: a damaged checkpoint.
      raise self._corrupt(step, type(e).__name__) from e
    if not saved:  # What orbax reads from an unreadable array store.
      raise self._corrupt(step, "no readable arrays")
    expected = _layout(abstract_state)
    if saved != expected:
      path = min(k for k in saved.keys() | expected.keys() if saved.get(k) != expected.get(k))
      raise UserError(
          f"checkpoint {self.directory}/{step} holds another model than these settings build "
          f"({'/'.join(path)}: saved {_describe(saved.get(path))}, expected "
          f"{_describe(expected.get(path))}); rerun with the settings it was saved with, or "
          f"with --fresh to start over")

  def _corrupt(self, step: int, reason: str) -> UserError:
    return UserError(f"checkpoint {self.directory}/{step} is corrupt ({reason}); "
                     f"delete that folder to fall back to an earlier one, or rerun with --fresh")

  def close(self) -> None:
    self._manager.close()


def _layout(tree: Any) -> dict[tuple[str, ...], tuple[tuple[int, ...], str]]:
  """Each array's path -> (shape, dtype). Paths name dict keys, attributes and indices alike,
  since orbax's metadata turns the optimiser's named tuples into dicts."""
  def name(key) -> str:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        return str(getattr(key, attr))
    return str(key)
  return {tuple(name(k) for k in path): (tuple(leaf.shape), str(leaf.dtype))
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _describe(entry: tuple[tuple[int, ...], str] | None) -> str:
  return "nothing" if entry is None else f"{entry[1]}{list(entry[0])}"


def abstract_like(state: Any) -> Any:
  """Shape/dtype/sharding placeholders for restoring into the layout of `state`."""
  return jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
