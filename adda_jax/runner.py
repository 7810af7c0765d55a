"""Runs any method's stages: the one trainer every method shares.

`StageRunner.train` builds a stage's state (restored from its newest checkpoint, or from the
stage's `init`), puts it and the datasets on the device mesh, and advances it with a jitted
call that samples batches inside the compiled code, donates the state, and runs one step per
call on CPU and a `fori_loop` over a logging interval on accelerators. It stops at every log
and checkpoint boundary only: metrics are read back there, a non-finite loss stops the stage
before the bad state is saved, and a pinned discriminator is reported. Nothing here names a
method: a method is its list of `Stage`s (adda_jax/methods/).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from typing import Any, Callable, Mapping, NamedTuple

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from adda_jax import hosts, steps
from adda_jax.checkpoint import StageCheckpoints, abstract_of
from adda_jax.config import Config
from adda_jax.errors import UserError
from adda_jax.methods.base import DATA, Stage
from adda_jax.progress import Progress
from adda_jax.results import join_commits
from adda_jax.validators import PREFERS, ranked

Log = Callable[[str], None]
Measure = Callable[[Any, Any], dict[str, float]]
EVAL_BATCH = 1000
SELECTED_SUFFIX = "_selected"  # WORKDIR/<stage>_selected: the --select checkpoint.


def stage_keys(seed: int, index: int) -> tuple[jax.Array, jax.Array]:
  """(init key, data key) of the stage at `index` of a run: a stage's draws depend only on
  the seed and its position, so every method's stage 1 (source pretraining) is the same.
  Stages 0 and 1 split the seed's key four ways (as runs have from the start); a later stage
  (self-training) folds its index in first, leaving the earlier stages' keys as they were."""
  if index < 2:
    keys = jax.random.split(jax.random.key(seed), 4)
    return keys[2 * index], keys[2 * index + 1]
  init, data = jax.random.split(jax.random.fold_in(jax.random.key(seed), index))
  return init, data


@dataclasses.dataclass(frozen=True)
class Placement:
  """Data parallelism over every device: batches split along "data", the rest replicated."""
  mesh: jax.sharding.Mesh

  @classmethod
  def over_all_devices(cls, batch_size: int) -> "Placement":
    return cls.over(jax.devices(), batch_size)

  @classmethod
  def over(cls, devices: list, batch_size: int) -> "Placement":
    count = len(devices)
    if batch_size % count:
      raise UserError(f"--batch-size {batch_size} is not divisible by the {count} devices; "
                      f"use a multiple of {count}")
    mesh = jax.sharding.Mesh(np.asarray(devices), ("data",),
                             axis_types=(jax.sharding.AxisType.Auto,))
    return cls(mesh)

  def replicate(self, tree: Any) -> Any:
    return jax.device_put(tree, NamedSharding(self.mesh, P()))

  def shard_batch(self, x: jax.Array) -> jax.Array:
    spec = P("data", *([None] * (x.ndim - 1)))
    return jax.lax.with_sharding_constraint(x, NamedSharding(self.mesh, spec))


@dataclasses.dataclass(frozen=True)
class StageRecord:
  """Where a stage's saved state came from, kept in its checkpoints: training seconds over all
  invocations (None once a checkpoint older than this record was resumed) and the commit(s)
  that trained it, so a reused or resumed stage reports its real cost and code."""
  train_seconds: float | None
  commit: str

  @classmethod
  def from_checkpoint(cls, saved: dict[str, Any] | None) -> "StageRecord":
    return cls(**saved) if saved else cls(None, "unknown")

  def continued(self, seconds: float, commit: str) -> "StageRecord":
    total = None if self.train_seconds is None else self.train_seconds + seconds
    return StageRecord(total, join_commits(self.commit, commit))


class CollapseWatch:
  """Reports a discriminator pinned near accuracy 1.0 (D wins: the encoder's gradient
  vanishes) or near 0.5 (D learns nothing) for `window` consecutive logging intervals."""

  def __init__(self, log: Log, stage: str = "adapt", window: int = 4, tolerance: float = 0.01):
    self.log, self.stage, self.window, self.tolerance = log, stage, window, tolerance
    self.events: list[dict[str, Any]] = []
    self._state, self._run = None, 0

  def __call__(self, step: int, metrics: dict[str, float]) -> None:
    accuracy = float(metrics["disc_accuracy"])
    state = ("won" if accuracy >= 1.0 - self.tolerance else
             "at chance" if abs(accuracy - 0.5) <= 2 * self.tolerance else None)
    self._run = self._run + 1 if state is not None and state == self._state else int(
        state is not None)
    self._state = state
    if self._run == self.window:
      self.events.append({"step": step, "kind": state, "disc_accuracy": accuracy})
      self.log(f"[{self.stage}] warning: discriminator collapse: accuracy {state} ({accuracy:.3f}) "
               f"for {self.window} logging intervals up to step {step}")


@dataclasses.dataclass
class Member:
  """One run trained by a call: a lone run, or one seed of a stacked (vmapped) program.

  `measure(state)` adds metrics at each progress line (outside the timed training);
  `after_save(state, step)` runs after each of its checkpoints; `label` names it in messages
  ("" for a lone run, "seed 3" in a stack)."""
  label: str
  config: dict[str, Any]  # The run's config, saved with each of its checkpoints.
  checkpoints: StageCheckpoints
  record: StageRecord
  on_log: Callable[[int, dict], None]
  measure: Callable[[Any], dict[str, float]] | None = None
  after_save: Callable[[Any, int], None] | None = None
  history: list[dict[str, float]] = dataclasses.field(default_factory=list)
  stopped: str | None = None  # Why it stopped early (a non-finite loss), when it did.
  # --select: the checkpoints kept by a label-free validator, saved at each progress line.
  selection: StageCheckpoints | None = None
  select: str = ""


class Stack(NamedTuple):
  """How a call's state holds its members: `split(tree)` -> one tree per member, in order;
  `keep(tree, indices)` -> the tree of those members only."""
  split: Callable[[Any], list[Any]]
  keep: Callable[[Any, list[int]], Any]


LONE = Stack(split=lambda tree: [tree], keep=lambda tree, indices: tree)


def run_steps(stage: str, state: Any, members: list[Member], commit: str,
              run_chunk: Callable[[Any, int], tuple[Any, Any]], total: int, cfg: Config,
              log: Log, stack: Stack = LONE) -> list[Any]:
  """Runs `run_chunk` up to `total` steps, stopping at every log and checkpoint boundary;
  returns each member's final state (None for a member stopped early). Each member's record
  is continued by this invocation's training time and `commit`, if it trained.

  Metrics are read back only at those boundaries. A non-finite loss stops its member before
  the bad state can be saved, so the newest checkpoint is always the last good one: a lone
  run stops with a UserError; in a stack, that member is dropped (and says so) and the others
  go on.
  """
  step = int(np.ravel(jax.device_get(state["step"]))[0])  # One counter, or one per member.
  wall = 0.0
  live = list(members)
  window_start, window_steps = time.perf_counter(), 0
  while step < total:
    nxt = min(total, (step // cfg.log_every + 1) * cfg.log_every,
              (step // cfg.checkpoint_every + 1) * cfg.checkpoint_every)
    t = time.perf_counter()
    with _out_of_memory_as_user_error(f"{stage} stage", cfg.batch_size):
      state, metrics = run_chunk(state, nxt - step)
      metrics = jax.device_get(metrics)
    wall += time.perf_counter() - t
    window_steps += nxt - step
    step = nxt
    per_member = stack.split(metrics)
    bad = [_non_finite(stage, member, m, step) for member, m in zip(live, per_member)]
    if any(bad):
      if len(live) == 1:
        raise UserError(bad[0])
      for member, message in zip(live, bad):
        if message:
          member.stopped = message
          log(f"[{stage}] {member.label}: {message}; the other seeds go on")
      keep = [i for i, message in enumerate(bad) if not message]
      if not keep:
        raise UserError(f"{stage} stage: every seed stopped on a non-finite loss by step "
                        f"{step} (lower the learning rate and rerun with --fresh)")
      live = [live[i] for i in keep]
      state = stack.keep(state, keep)
      per_member = [per_member[i] for i in keep]
    states = stack.split(state)
    if step % cfg.log_every == 0 or step == total:
      rate = window_steps / (time.perf_counter() - window_start)
      logged = []
      for member, member_state, raw in zip(live, states, per_member):
        values = {k: float(v) for k, v in raw.items()}
        if member.measure is not None:
          values.update(member.measure(member_state))
        member.history.append({"step": step, **values})
        member.on_log(step, values)
        logged.append(values)
        if member.selection is not None:
          member.selection.save(step, member_state, member.config, dataclasses.asdict(
              member.record.continued(wall, commit)),
              metrics={member.select: float(ranked(member.select,
                                                   values[f"val_{member.select}"]))})
      log(f"[{stage}] step {step:>6}/{total}  {_shown(logged)}  ({rate:.1f} steps/s)")
      window_start, window_steps = time.perf_counter(), 0
    if step % cfg.checkpoint_every == 0 or step == total:
      for member, member_state in zip(live, states):
        member.checkpoints.save(step, member_state, member.config,
                                dataclasses.asdict(member.record.continued(wall, commit)))
        if member.after_save is not None:
          member.after_save(member_state, step)
  finals = {id(member): member_state for member, member_state in zip(live, stack.split(state))}
  for member in members:
    if wall and member.stopped is None:
      member.record = member.record.continued(wall, commit)
  return [finals.get(id(member)) for member in members]


def _shown(logged: list[dict[str, float]]) -> str:
  """A progress line's metrics: the values of a lone run; over a stack of seeds, each
  metric's mean and range (each seed's own values go to its metrics file and summary)."""
  if len(logged) == 1:
    return "  ".join(f"{k} {v:.4f}" for k, v in logged[0].items())
  columns = {k: [values[k] for values in logged] for k in logged[0]}
  return f"{len(logged)} seeds  " + "  ".join(
      f"{k} {np.mean(v):.4f} [{min(v):.4f}, {max(v):.4f}]" for k, v in columns.items())


def _non_finite(stage: str, member: Member, metrics: dict[str, Any], step: int) -> str:
  """The one-line reason to stop `member`, or "" when its metrics are finite."""
  bad = {k: float(v) for k, v in metrics.items() if not math.isfinite(float(v))}
  if not bad:
    return ""
  name, value = next(iter(bad.items()))
  last = member.checkpoints.latest_step()
  kept = (f"the last good checkpoint (step {last}) is kept in {member.checkpoints.directory}"
          if last is not None else "no checkpoint had been saved yet")
  return (f"{stage} stage: {name} became {value} by step {step}; stopped, {kept} (lower the "
          f"learning rate and rerun with --fresh)")


@contextlib.contextmanager
def _out_of_memory_as_user_error(what: str, batch_size: int):
  """XLA reports an allocation it cannot make as RESOURCE_EXHAUSTED: one line, not a trace."""
  try:
    yield
  except jax.errors.JaxRuntimeError as e:
    if "RESOURCE_EXHAUSTED" not in str(e) and "Out of memory" not in str(e):
      raise
    raise UserError(f"{what} ran out of device memory at --batch-size {batch_size}; lower "
                    f"--batch-size (the paper's is 128)") from None


def eval_batch_size(count: int) -> int:
  """The fewest batches of at most EVAL_BATCH images, of equal size: one compiled shape per
  image set, and fewer padded images than batches (USPS's 2,007 test images are 3 x 669, not
  3 x 1,000 with 993 of padding; a small set is one batch of its own size)."""
  batches = max(1, -(-count // EVAL_BATCH))
  return max(1, -(-count // batches))


def predictions(predict, encoder: Any, classifier: Any, images: np.ndarray) -> np.ndarray:
  """Predicted classes in batches of `eval_batch_size` (the last one padded)."""
  size = eval_batch_size(len(images))
  out = []
  for start in range(0, len(images), size):
    batch = images[start:start + size]
    real = len(batch)
    if real < size:
      batch = np.concatenate([batch, np.zeros((size - real, *batch.shape[1:]), batch.dtype)])
    out.append(np.asarray(predict(encoder, classifier, batch))[:real])
  return np.concatenate(out) if out else np.zeros(0, np.int32)


def share_correct(predicted: np.ndarray, labels: np.ndarray) -> float:
  """Top-1 accuracy of predicted classes."""
  return int((predicted == labels).sum()) / len(labels)


def accuracy(predict, encoder: Any, classifier: Any, images: np.ndarray,
             labels: np.ndarray) -> float:
  """Top-1 accuracy."""
  return share_correct(predictions(predict, encoder, classifier, images), labels)


@dataclasses.dataclass
class StageRunner:
  """Trains and restores the stages of one run in `workdir`."""
  cfg: Config
  workdir: str
  placement: Placement
  commit: str  # The code training now, recorded in each stage's checkpoints.
  steps_per_call: int = dataclasses.field(default_factory=steps.default_steps_per_call)

  def checkpoints(self, stage: Stage) -> StageCheckpoints:
    return StageCheckpoints(os.path.join(self.workdir, stage.name), self.cfg.keep_checkpoints)

  def initial_state(self, stage: Stage, index: int, earlier: Mapping[str, Any]) -> Any:
    return stage.init(stage_keys(self.cfg.seed, index)[0], earlier)

  def restore_target(self, stage: Stage, index: int, earlier: Mapping[str, Any]) -> Any:
    """The layout a checkpoint of `stage` restores into: its initial state's, traced."""
    return abstract_of(lambda: self.initial_state(stage, index, earlier))

  def restore_final(self, stage: Stage, index: int, earlier: Mapping[str, Any]
                    ) -> tuple[Any, StageRecord]:
    """The finished stage's state and record; a UserError if the stage has not finished or
    was trained with other settings."""
    checkpoints = self.checkpoints(stage)
    if checkpoints.latest_step() != stage.num_steps:
      raise UserError(f"{stage.name} stage in {self.workdir} has not finished (checkpoint at "
                      f"step {checkpoints.latest_step()}, need {stage.num_steps}); run "
                      f"experiments/run.py first")
    check_stage_config(self.cfg, stage, checkpoints, stage.num_steps)
    state, _, saved = checkpoints.restore(stage.num_steps,
                                          self.restore_target(stage, index, earlier))
    return state, StageRecord.from_checkpoint(saved)

  def start(self, stage: Stage, index: int, earlier: Mapping[str, Any], log: Log
            ) -> tuple[Any, StageRecord]:
    """The stage's state to train from (its newest checkpoint, or `init`) and its record."""
    checkpoints = self.checkpoints(stage)
    latest = checkpoints.latest_step()
    if latest is None:
      return self.initial_state(stage, index, earlier), StageRecord(0.0, "")
    state, _, saved = checkpoints.restore(latest, self.restore_target(stage, index, earlier))
    log(f"[{stage.name}] resuming from the checkpoint at step {latest}")
    return state, StageRecord.from_checkpoint(saved)

  def selection(self, stage: Stage) -> StageCheckpoints:
    """--select: the one checkpoint of `stage` its validator prefers so far, kept by orbax's
    best-checkpoint support in WORKDIR/<stage>_selected/."""
    return StageCheckpoints(os.path.join(self.workdir, stage.name + SELECTED_SUFFIX), 1,
                            best=(self.cfg.select, PREFERS[self.cfg.select]))

  def member(self, stage: Stage, record: StageRecord, frozen: Any, label: str,
             measure: Measure | None, on_log: Callable[[int, dict], None] | None,
             select: bool = False) -> Member:
    """This run as a member of a training call (`frozen`: its own frozen inputs); `select`:
    keep the checkpoint the config's validator prefers (the final stage of a --select run)."""
    chosen = select and bool(self.cfg.select) and measure is not None
    return Member(
        selection=self.selection(stage) if chosen else None, select=self.cfg.select,
        label=label, config=self.cfg.to_json(), checkpoints=self.checkpoints(stage),
        record=record, on_log=on_log or (lambda step, metrics: None),
        measure=None if measure is None else (lambda state: measure(state, frozen)),
        after_save=None if stage.after_checkpoint is None or not hosts.is_primary() else (
            lambda state, step: stage.after_checkpoint(state, frozen, step, self.workdir)))

  def train(self, stage: Stage, index: int, earlier: Mapping[str, Any],
            datasets: Mapping[str, steps.DeviceData], log: Log,
            measure: Measure | None = None, on_log: Callable[[int, dict], None] | None = None,
            progress: Progress | None = None, select: bool = False
            ) -> tuple[Any, Any, StageRecord, list[dict[str, float]]]:
    """Trains `stage` to its last step (resuming its newest checkpoint); returns its state,
    its frozen inputs, its record and the logged metrics. `progress` draws a live bar;
    `select` keeps the checkpoint the config's validator prefers."""
    progress = progress or Progress(enabled=False)
    state, record = self.start(stage, index, earlier, log)
    state = self.placement.replicate(state)
    frozen = self.placement.replicate(stage.frozen(earlier))
    call = steps.make_stage_call(stage.step, {name: DATA[name] for name in stage.data},
                                 self.cfg.batch_size, self.placement.shard_batch)
    inputs = stage.inputs(frozen, datasets)
    key = stage_keys(self.cfg.seed, index)[1]
    run_chunk = lambda state, n: steps.run_calls(
        lambda s, m: call(s, frozen, inputs, key, num_steps=m), state, n, self.steps_per_call,
        progress.advance)
    member = self.member(stage, record, frozen, "", measure, on_log, select)
    with progress.stage(stage.name, stage.num_steps, int(state["step"])):
      [state] = run_steps(stage.name, state, [member], self.commit, run_chunk,
                          stage.num_steps, self.cfg, log)
    return state, frozen, member.record, member.history


def check_stage_config(cfg: Config, stage: Stage, checkpoints: StageCheckpoints,
                       step: int) -> None:
  """Refuses a checkpoint trained with other settings than `cfg` (each checkpoint carries
  the config it was trained with), so a run never resumes, or reports, another run's model."""
  saved = Config.from_json(checkpoints.saved_config(step))
  diff = [k for k in stage.fields if getattr(saved, k) != getattr(cfg, k)]
  if diff:
    shown = ", ".join(f"{k}={getattr(saved, k)!r}" for k in diff[:3])
    raise UserError(f"checkpoint {checkpoints.directory}/{step} was trained with other settings "
                    f"({shown}); rerun with those settings, use another --workdir, or --fresh "
                    f"to delete that run")


