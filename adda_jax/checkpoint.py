"""Per-stage orbax checkpoints: one `CheckpointManager` directory per stage.

Each checkpoint holds the stage's train state (parameters, optimiser states, step), the run's
config as JSON and the stage's provenance (training seconds so far, the commit that trained it),
so a stage reused or resumed later still reports where its numbers came from. Orbax writes into
a temporary folder and renames it when complete, so a process killed mid-save leaves no
checkpoint that `latest_step` would pick up; `max_to_keep` prunes old steps but always keeps the
newest.
"""
from __future__ import annotations

import contextlib
import gc
import glob
import os
import shutil
import sys
import tempfile
import time
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from adda_jax.errors import UserError


class StageCheckpoints:
  """Save and restore one stage's state under `directory`."""

  def __init__(self, directory: str, keep: int, best: tuple[str, str] | None = None):
    """best: (metric, "min" or "max"): keep the `keep` checkpoints best by that metric
    (orbax's best-checkpoint support; each save then passes `metrics`), not the newest."""
    self.directory = os.path.abspath(directory)
    best_options = {} if best is None else dict(
        best_fn=lambda metrics, name=best[0]: metrics[name], best_mode=best[1],
        keep_checkpoints_without_metrics=False)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=False, **best_options)
    # Naming each item's handler lets orbax read one item's metadata (the layout check) or
    # data (the config) alone, without warnings about the items it was not asked for.
    handlers = {"state": ocp.StandardCheckpointHandler(), "config": ocp.JsonCheckpointHandler(),
                "provenance": ocp.JsonCheckpointHandler()}
    try:
      self._manager = ocp.CheckpointManager(self.directory, options=options,
                                            item_handlers=handlers)
    except OSError as e:
      raise UserError(f"cannot create checkpoint folder {self.directory} ({e}); choose a "
                      f"writable --workdir")

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    return self._manager.best_step()

  def save(self, step: int, state: Any, config: dict[str, Any], provenance: dict[str, Any],
           metrics: dict[str, float] | None = None) -> None:
    try:
      with _stderr_held_back():
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config),
            provenance=ocp.args.JsonSave(provenance)), metrics=metrics, force=True)
        self._manager.wait_until_finished()
    except (OSError, ValueError) as e:  # tensorstore reports a full disk as ValueError.
      for partial in glob.glob(os.path.join(self.directory, f"{step}.orbax-checkpoint-tmp*")):
        shutil.rmtree(partial, ignore_errors=True)
      reason = ("no space left on device" if "No space left on device" in str(e) else
                str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
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
      with _stderr_held_back():
        restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # Orbax raises many types for damaged or mismatched files.
      raise self._corrupt(step, type(e).__name__) from e
    return restored.state, restored.config, restored.provenance if has_provenance else None

  def saved_config(self, step: int) -> dict[str, Any]:
    """The config saved with the checkpoint at `step`, read without touching its arrays."""
    try:
      with _stderr_held_back():
        return self._manager.restore(step, args=ocp.args.Composite(
            config=ocp.args.JsonRestore())).config
    except Exception as e:  # Orbax raises many types for damaged files.
      raise self._corrupt(step, type(e).__name__) from e

  def _check_layout(self, step: int, abstract_state: Any) -> None:
    """Compares the saved arrays' paths, shapes and dtypes with the state to restore into,
    before reading any data: names what differs, and spares orbax a failing restore."""
    try:
      with _stderr_held_back():
        saved = _layout(self._manager.item_metadata(step)["state"])
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


_GRACE_SECONDS = 0.5


@contextlib.contextmanager
def _stderr_held_back() -> Iterator[None]:
  """Holds back what orbax and tensorstore print on the process's stderr (their threads log
  every failed write and print tracebacks of their own) while the block runs: released if it
  succeeds, dropped if it fails, since the caller then reports the failure in one line.

  The text goes to an in-memory file (`memfd_create`), as a full disk may be the failure."""
  sys.stderr.flush()
  fd = (os.memfd_create("adda_jax_stderr") if hasattr(os, "memfd_create")
        else os.dup(tempfile.TemporaryFile().fileno()))
  saved = os.dup(2)
  os.dup2(fd, 2)
  failed = False
  try:
    yield
  except BaseException:
    failed = True
    # A failed read leaves tensorstore callbacks that fire into orbax's closed event loop and
    # print tracebacks for a moment afterwards: let them land here, not on the terminal.
    gc.collect()
    time.sleep(_GRACE_SECONDS)
    raise
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    if not failed and os.lseek(fd, 0, os.SEEK_END):
      os.write(2, os.pread(fd, os.lseek(fd, 0, os.SEEK_END), 0))
    os.close(fd)


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


def abstract_of(make_state: Callable[[], Any]) -> Any:
  """`abstract_like(make_state())` without computing it: the layout traced, on the device a
  new array starts on (building a state to read its layout costs compilations and seconds)."""
  device = jnp.zeros(()).sharding
  return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=device),
                      jax.eval_shape(make_state))
