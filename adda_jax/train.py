"""The three ADDA stages end to end: pretrain (M_s, C), adapt (M_t vs D), evaluate C(M_t(x_t)).

`run` is what `experiments/run.py` calls; tests call it on generated data. It is resumable:
each stage restores its newest checkpoint and only trains the steps that are left, so running
the same command again after a finished (or killed) run redoes nothing that was saved.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from adda_jax import steps, storage
from adda_jax.checkpoint import StageCheckpoints, abstract_like
from adda_jax.config import Config
from adda_jax.data.loading import DataSource
from adda_jax.data.pairs import load_pair
from adda_jax.errors import UserError
from adda_jax.models import Networks, make_networks
from adda_jax.results import device_name, git_commit, join_commits

Log = Callable[[str], None]
Measure = Callable[[Any], dict[str, float]]
CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
STAGES = ("pretrain", "adapt")
EVAL_BATCH = 1000


def _print(message: str) -> None:
  print(message, flush=True)


# ----------------------------------------------------------------------------- devices


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


# ----------------------------------------------------------------------------- stages


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
  """Reports a discriminator pinned near accuracy 1.0 (D wins: M_t's gradient vanishes) or
  near 0.5 (D learns nothing) for `window` consecutive logging intervals."""

  def __init__(self, log: Log, window: int = 4, tolerance: float = 0.01):
    self.log, self.window, self.tolerance = log, window, tolerance
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
      self.log(f"[adapt] warning: discriminator collapse: accuracy {state} ({accuracy:.3f}) "
               f"for {self.window} logging intervals up to step {step}")


def _run_steps(stage: str, state: Any, record: StageRecord, commit: str,
               run_chunk: Callable[[Any, int], tuple[Any, Any]], total: int, cfg: Config,
               checkpoints: StageCheckpoints, log: Log,
               on_log: Callable[[int, dict], None] = lambda step, metrics: None,
               measure: Measure | None = None
               ) -> tuple[Any, StageRecord, list[dict[str, float]]]:
  """Runs `run_chunk` up to `total` steps, stopping at every log and checkpoint boundary.

  Metrics are read back only at those boundaries. A non-finite loss stops the stage before
  the bad state can be saved, so the newest checkpoint is always the last good one.
  `measure(state)` adds metrics at each progress line (outside the timed training).
  Returns the final state, its record (`record` continued by this invocation's training time
  and `commit`, if it trained) and the logged metrics.
  """
  step = int(state["step"])
  wall = 0.0
  history: list[dict[str, float]] = []
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
    bad = {k: float(v) for k, v in metrics.items() if not math.isfinite(float(v))}
    if bad:
      name, value = next(iter(bad.items()))
      last = checkpoints.latest_step()
      kept = (f"the last good checkpoint (step {last}) is kept in {checkpoints.directory}"
              if last is not None else "no checkpoint had been saved yet")
      raise UserError(f"{stage} stage: {name} became {value} by step {step}; stopped, {kept} "
                      f"(lower the learning rate and rerun with --fresh)")
    if step % cfg.log_every == 0 or step == total:
      rate = window_steps / (time.perf_counter() - window_start)
      metrics = {k: float(v) for k, v in metrics.items()}
      if measure is not None:
        metrics.update(measure(state))
      shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
      log(f"[{stage}] step {step:>6}/{total}  {shown}  ({rate:.1f} steps/s)")
      history.append({"step": step, **metrics})
      on_log(step, metrics)
      window_start, window_steps = time.perf_counter(), 0
    if step % cfg.checkpoint_every == 0 or step == total:
      checkpoints.save(step, state, cfg.to_json(),
                       dataclasses.asdict(record.continued(wall, commit)))
  return state, (record.continued(wall, commit) if wall else record), history


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


def _restore_or(init_state: Any, checkpoints: StageCheckpoints, log: Log,
                stage: str) -> tuple[Any, StageRecord]:
  latest = checkpoints.latest_step()
  if latest is None:
    return init_state, StageRecord(0.0, "")
  state, _, saved = checkpoints.restore(latest, abstract_like(init_state))
  log(f"[{stage}] resuming from the checkpoint at step {latest}")
  return state, StageRecord.from_checkpoint(saved)


def accuracy(predict, encoder: Any, classifier: Any, images: np.ndarray,
             labels: np.ndarray) -> float:
  """Top-1 accuracy in fixed-size batches (the last one padded), so one compiled shape."""
  correct = 0
  for start in range(0, len(images), EVAL_BATCH):
    batch = images[start:start + EVAL_BATCH]
    size = len(batch)
    if size < EVAL_BATCH:
      batch = np.concatenate([batch, np.zeros((EVAL_BATCH - size, *batch.shape[1:]),
                                              batch.dtype)])
    predicted = np.asarray(predict(encoder, classifier, batch))[:size]
    correct += int((predicted == labels[start:start + size]).sum())
  return correct / len(images)


@dataclasses.dataclass
class Stages:
  """The networks, optimisers and checkpoint folders of one run."""
  cfg: Config
  workdir: str
  nets: Networks
  placement: Placement
  steps_per_call: int
  commit: str  # The code training now, recorded in each stage's checkpoints.

  @classmethod
  def create(cls, cfg: Config, workdir: str, steps_per_call: int | None = None,
             commit: str = "unknown") -> "Stages":
    nets = make_networks(cfg.image_size, cfg.channels, cfg.disc_input, cfg.disc_hidden,
                         cfg.conv_relu)
    return cls(cfg, workdir, nets, Placement.over_all_devices(cfg.batch_size),
               steps_per_call or steps.default_steps_per_call(), commit)

  @property
  def keys(self) -> dict[str, jax.Array]:
    root = jax.random.key(self.cfg.seed)
    names = ("pretrain_init", "pretrain_data", "adapt_init", "adapt_data")
    return dict(zip(names, jax.random.split(root, len(names))))

  def checkpoints(self, stage: str) -> StageCheckpoints:
    return StageCheckpoints(os.path.join(self.workdir, stage), self.cfg.keep_checkpoints)

  def pretrain_tx(self):
    c = self.cfg
    if c.pretrain_solver == "caffe_lenet":
      return steps.caffe_lenet_solver()
    return steps.pretrain_optimizer(c.pretrain_lr, c.pretrain_b1, c.pretrain_weight_decay)

  def adapt_txs(self):
    return (steps.adapt_optimizer(self.cfg.adapt_lr, self.cfg.adapt_b1),
            steps.adapt_optimizer(self.cfg.adapt_lr, self.cfg.adapt_b1))

  def initial_pretrain_state(self) -> Any:
    return steps.init_pretrain(self.nets, self.pretrain_tx(), self.keys["pretrain_init"])

  def initial_adapt_state(self, source_encoder: Any) -> Any:
    tx_target, tx_disc = self.adapt_txs()
    return steps.init_adapt(self.nets, tx_target, tx_disc, source_encoder,
                            self.keys["adapt_init"])

  def restore_final(self, stage: str, init_state: Any) -> tuple[Any, StageRecord]:
    """The finished stage's state and record; a UserError if the stage has not finished or
    was trained with other settings."""
    total = self.cfg.pretrain_steps if stage == "pretrain" else self.cfg.adapt_steps
    checkpoints = self.checkpoints(stage)
    if checkpoints.latest_step() != total:
      raise UserError(f"{stage} stage in {self.workdir} has not finished (checkpoint at step "
                      f"{checkpoints.latest_step()}, need {total}); run experiments/run.py first")
    check_stage_config(self.cfg, stage, checkpoints, total)
    state, _, saved = checkpoints.restore(total, abstract_like(init_state))
    return state, StageRecord.from_checkpoint(saved)

  def pretrain(self, source: steps.DeviceData, log: Log, measure: Measure | None = None
               ) -> tuple[Any, StageRecord, list[dict[str, float]]]:
    cfg, tx = self.cfg, self.pretrain_tx()
    checkpoints = self.checkpoints("pretrain")
    state, record = _restore_or(self.initial_pretrain_state(), checkpoints, log, "pretrain")
    state = self.placement.replicate(state)
    call = steps.make_pretrain_call(self.nets, tx, cfg.batch_size, self.placement.shard_batch)
    key = self.keys["pretrain_data"]
    run_chunk = self._chain(lambda s, n: call(s, source, key, num_steps=n))
    return _run_steps("pretrain", state, record, self.commit, run_chunk, cfg.pretrain_steps,
                      cfg, checkpoints, log, measure=measure)

  def adapt(self, source: steps.DeviceData, target: steps.DeviceData, pretrained: Any, log: Log,
            watch: CollapseWatch, measure: Measure | None = None
            ) -> tuple[Any, StageRecord, list[dict[str, float]]]:
    cfg = self.cfg
    tx_target, tx_disc = self.adapt_txs()
    checkpoints = self.checkpoints("adapt")
    state, record = _restore_or(self.initial_adapt_state(pretrained["encoder"]), checkpoints,
                                log, "adapt")
    state = self.placement.replicate(state)
    frozen = self.placement.replicate({"source_encoder": pretrained["encoder"],
                                       "classifier": pretrained["classifier"]})
    call = steps.make_adapt_call(self.nets, tx_target, tx_disc, cfg.adversarial_loss,
                                 cfg.disc_input, cfg.batch_size, self.placement.shard_batch,
                                 simultaneous=cfg.adapt_update == "simultaneous")
    key = self.keys["adapt_data"]
    run_chunk = self._chain(lambda s, n: call(s, frozen, source, target, key, num_steps=n))
    return _run_steps("adapt", state, record, self.commit, run_chunk, cfg.adapt_steps, cfg,
                      checkpoints, log, on_log=watch, measure=measure)

  def _chain(self, call):
    """A `run_chunk(state, n)` that advances n steps in calls of `steps_per_call`."""
    return lambda state, n: steps.run_calls(call, state, n, self.steps_per_call)


# ----------------------------------------------------------------------------- workdir


def stage_fields(cfg: Config, stage: str) -> dict[str, Any]:
  """The config fields that decide what `stage` trains (not which split it is measured on)."""
  if stage == "pretrain":
    return cfg.pretrain_fields()
  return {k: v for k, v in cfg.result_fields().items() if k != "eval_split"}


def check_stage_config(cfg: Config, stage: str, checkpoints: StageCheckpoints,
                       step: int) -> None:
  """Refuses a checkpoint trained with other settings than `cfg` (each checkpoint carries
  the config it was trained with), so a run never resumes, or reports, another run's model."""
  saved = Config.from_json(checkpoints.saved_config(step))
  ours, theirs = stage_fields(cfg, stage), stage_fields(saved, stage)
  diff = sorted(k for k in ours if theirs.get(k) != ours[k])
  if diff:
    shown = ", ".join(f"{k}={theirs.get(k)!r}" for k in diff[:3])
    raise UserError(f"checkpoint {checkpoints.directory}/{step} was trained with other settings "
                    f"({shown}); rerun with those settings, use another --workdir, or --fresh "
                    f"to delete that run")


def check_workdir(cfg: Config, workdir: str, fresh: bool) -> None:
  """Refuses a `workdir` holding a run with a different config, in its config.json or in any
  stage's newest checkpoint (unless `fresh`); writes nothing."""
  if fresh or not os.path.isdir(workdir):
    return
  if os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    existing = _read_config(workdir).result_fields()
    diff = sorted(k for k, v in cfg.result_fields().items() if existing.get(k) != v)
    if diff:
      raise UserError(f"{workdir} holds a run with a different config ({', '.join(diff)}); "
                      f"use another --workdir, or --fresh to delete that run")
  for stage in STAGES:
    if os.path.isdir(os.path.join(workdir, stage)):
      checkpoints = StageCheckpoints(os.path.join(workdir, stage), cfg.keep_checkpoints)
      if checkpoints.latest_step() is not None:
        check_stage_config(cfg, stage, checkpoints, checkpoints.latest_step())


def claim_workdir(cfg: Config, workdir: str, fresh: bool) -> None:
  """Writes `cfg` into `workdir`, first deleting the run there if `fresh`."""
  try:
    os.makedirs(workdir, exist_ok=True)
    if fresh:
      for stage in STAGES:
        shutil.rmtree(os.path.join(workdir, stage), ignore_errors=True)
      for name in (CONFIG_FILE, SUMMARY_FILE):
        if os.path.exists(os.path.join(workdir, name)):
          os.remove(os.path.join(workdir, name))
  except OSError as e:
    raise UserError(f"cannot write to --workdir {workdir} ({e.strerror}); choose a writable "
                    f"folder")
  storage.write_json_atomic(os.path.join(workdir, CONFIG_FILE), cfg.to_json(), "the config")


def finished_pretraining(cfg: Config, other: str) -> str:
  """The final stage-1 checkpoint of the run in `other`, which must have pretrained with the
  same settings as `cfg` (`Config.pretrain_fields`); a UserError otherwise."""
  if not os.path.exists(os.path.join(other, CONFIG_FILE)):
    raise UserError(f"--pretrained-from {other} holds no run ({CONFIG_FILE} missing); pass "
                    f"the --workdir of a run made by experiments/run.py")
  theirs = _read_config(other).pretrain_fields()
  diff = sorted(k for k, v in cfg.pretrain_fields().items() if theirs.get(k) != v)
  if diff:
    raise UserError(f"--pretrained-from {other} pretrained with other settings "
                    f"({', '.join(diff)}); pass a run with the same pair, seed and stage-1 "
                    f"settings")
  checkpoint = os.path.join(other, "pretrain", str(cfg.pretrain_steps))
  if not os.path.isdir(checkpoint):
    raise UserError(f"--pretrained-from {other} has no finished stage 1 (no checkpoint at step "
                    f"{cfg.pretrain_steps}); finish that run first")
  check_stage_config(cfg, "pretrain", StageCheckpoints(os.path.dirname(checkpoint),
                                                       cfg.keep_checkpoints),
                     cfg.pretrain_steps)
  return checkpoint


def reuse_pretraining(checkpoint: str, workdir: str, log: Log) -> None:
  """Copies a finished stage-1 checkpoint into `workdir`, so a sweep over stage-2 settings
  trains the source model once; the copy keeps its recorded training time and commit. A no-op
  when `workdir` already has stage-1 checkpoints of its own."""
  target = os.path.join(workdir, "pretrain")
  if os.path.isdir(target) and any(name.isdigit() for name in os.listdir(target)):
    log(f"[pretrain] {workdir} has its own stage-1 checkpoints; --pretrained-from not used")
    return
  os.makedirs(target, exist_ok=True)
  step = os.path.basename(checkpoint)
  partial = os.path.join(target, f".{step}.copying")
  shutil.rmtree(partial, ignore_errors=True)
  shutil.copytree(checkpoint, partial)
  os.replace(partial, os.path.join(target, step))  # A killed copy leaves no checkpoint.
  log(f"[pretrain] reusing the finished stage 1 in {checkpoint}")


def _read_config(workdir: str) -> Config:
  path = os.path.join(workdir, CONFIG_FILE)
  try:
    with open(path) as f:
      return Config.from_json(json.load(f)).validate()
  except (OSError, ValueError, TypeError, KeyError, UserError) as e:
    raise UserError(f"{path} is unreadable or not an adda_jax config ({e}); use another "
                    f"--workdir, or --fresh to start over")


# ----------------------------------------------------------------------------- entry points


def run(cfg: Config, workdir: str, data: DataSource, *, fresh: bool = False,
        pretrained_from: str | None = None, log: Log = _print) -> dict[str, Any]:
  """Pretrain (or reuse the stage 1 of the run in `pretrained_from`), evaluate source only,
  adapt, evaluate ADDA; returns (and saves) the summary.

  The run holds `workdir`'s lock throughout: a second run into the same folder is refused in
  one line naming the holder. A folder this call created is removed again if the run fails
  before it wrote its config (bad data, say), so a refused run leaves the disk as it was.
  """
  cfg.validate()
  try:
    os.makedirs(os.path.dirname(os.path.abspath(workdir)), exist_ok=True)
    os.mkdir(workdir)
    created = True
  except FileExistsError:
    created = False
  except OSError as e:
    raise UserError(f"cannot write to --workdir {workdir} ({e.strerror}); choose a writable "
                    f"folder")
  with storage.exclusive_lock(
      os.path.join(workdir, LOCK_FILE),
      lambda holder: f"{workdir} is in use by another run ({holder}); wait for it to finish, "
                     f"or pass another --workdir"):
    try:
      return _run_locked(cfg, workdir, data, fresh, pretrained_from, log)
    except BaseException:
      if created and not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
        shutil.rmtree(workdir, ignore_errors=True)
      raise


def _run_locked(cfg: Config, workdir: str, data: DataSource, fresh: bool,
                pretrained_from: str | None, log: Log) -> dict[str, Any]:
  commit = git_commit()
  stages = Stages.create(cfg, workdir, commit=commit)
  check_workdir(cfg, workdir, fresh)
  pretrained_checkpoint = (finished_pretraining(cfg, pretrained_from)
                           if pretrained_from is not None else None)
  log(f"[data] {cfg.source} -> {cfg.target} ({data.source}); devices: {jax.devices()}")
  t = time.perf_counter()
  pair = load_pair(cfg, data)  # Before touching the workdir: bad data leaves it as it was.
  claim_workdir(cfg, workdir, fresh)
  if pretrained_checkpoint is not None:
    reuse_pretraining(pretrained_checkpoint, workdir, log)
  log(f"[data] source train {len(pair.source_train[0])}, target train "
      f"{len(pair.target_train[0])}, target {cfg.eval_split} {len(pair.target_eval[0])} "
      f"images of {pair.source_train[0].shape[1:]} ({time.perf_counter() - t:.1f} s)")
  predict = steps.make_predict(stages.nets)
  summary: dict[str, Any] = {"pair": cfg.pair, "seed": cfg.seed, "eval_split": cfg.eval_split,
                             "commit": commit, "device": device_name(),
                             "config": cfg.to_json()}

  def monitor(encoder_key: str, classifier: Callable[[Any], Any]) -> Measure | None:
    """Target accuracy at each progress line: it reads target labels, so it is for watching
    a run only; the model a run keeps is always its last step's."""
    if not cfg.monitor_target:
      return None
    return lambda state: {"target_accuracy": accuracy(
        predict, state[encoder_key], classifier(state), *pair.target_eval)}

  # Training sets go to the device once and serve both stages.
  source = stages.placement.replicate(steps.DeviceData(*pair.source_train))
  pretrained, record, summary["pretrain_history"] = stages.pretrain(
      source, log, monitor("encoder", lambda state: state["classifier"]))
  summary["pretrain_seconds"], summary["pretrain_commit"] = record.train_seconds, record.commit
  summary["source_only_accuracy"] = accuracy(predict, pretrained["encoder"],
                                             pretrained["classifier"], *pair.target_eval)
  log(f"[eval] source only: {100 * summary['source_only_accuracy']:.2f}% on target "
      f"{cfg.eval_split}")
  if cfg.method == "adda":
    watch = CollapseWatch(log)
    target = stages.placement.replicate(steps.DeviceData(*pair.target_train))
    adapted, record, summary["adapt_history"] = stages.adapt(
        source, target, pretrained, log, watch,
        monitor("target_encoder", lambda state: pretrained["classifier"]))
    summary["adapt_seconds"], summary["adapt_commit"] = record.train_seconds, record.commit
    summary["discriminator_collapse"] = watch.events
    summary["adda_accuracy"] = accuracy(predict, adapted["target_encoder"],
                                        pretrained["classifier"], *pair.target_eval)
    log(f"[eval] ADDA: {100 * summary['adda_accuracy']:.2f}% on target {cfg.eval_split} "
        f"(source only {100 * summary['source_only_accuracy']:.2f}%)")
  log("[time] training " + ", ".join(
      f"{stage} {_seconds(summary[stage + '_seconds'])} (commit {summary[stage + '_commit']})"
      for stage in ("pretrain", "adapt") if stage + "_seconds" in summary))
  if summary.get("discriminator_collapse"):
    log(f"[summary] discriminator collapse reported: {summary['discriminator_collapse']}")
  storage.write_json_atomic(os.path.join(workdir, SUMMARY_FILE), summary, "the summary")
  return summary


def _training_device(workdir: str) -> str:
  """The device the run trained on (its summary's), which the training times belong to; this
  machine's when the summary is missing or unreadable."""
  try:
    with open(os.path.join(workdir, SUMMARY_FILE)) as f:
      return str(json.load(f)["device"])
  except (OSError, ValueError, KeyError, TypeError):
    return device_name()


def _seconds(value: float | None) -> str:
  return "unknown time" if value is None else f"{value:.1f} s"


def evaluate_workdir(workdir: str, data: DataSource, eval_split: str | None = None,
                     log: Log = _print) -> dict[str, Any]:
  """Restores a finished run's checkpoints and measures both models on the target eval split
  (the run's own, or `eval_split` to compare the test/train protocols on the same models).

  Returns a summary like `run`'s (without the progress history): the accuracies measured now
  and each stage's training time and commit from its checkpoint, so results rows can be
  written also when summary.json is missing (a run killed after its last checkpoint).
  """
  if not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    raise UserError(f"{workdir} holds no run ({CONFIG_FILE} missing); pass the --workdir "
                    f"of a run made by experiments/run.py")
  cfg = _read_config(workdir)
  if eval_split is not None:
    cfg = cfg.replace(eval_split=eval_split).validate()
  stages = Stages.create(cfg, workdir)
  pair = load_pair(cfg, data)
  predict = steps.make_predict(stages.nets)
  summary: dict[str, Any] = {"pair": cfg.pair, "seed": cfg.seed, "eval_split": cfg.eval_split,
                             "commit": git_commit(), "device": _training_device(workdir),
                             "config": cfg.to_json()}
  pretrained, record = stages.restore_final("pretrain", stages.initial_pretrain_state())
  summary.update(pretrain_seconds=record.train_seconds, pretrain_commit=record.commit,
                 source_only_accuracy=accuracy(predict, pretrained["encoder"],
                                               pretrained["classifier"], *pair.target_eval))
  log(f"[eval] source only: {100 * summary['source_only_accuracy']:.2f}% on target "
      f"{cfg.eval_split}")
  if cfg.method == "adda":
    adapted, record = stages.restore_final("adapt",
                                           stages.initial_adapt_state(pretrained["encoder"]))
    summary.update(adapt_seconds=record.train_seconds, adapt_commit=record.commit,
                   adda_accuracy=accuracy(predict, adapted["target_encoder"],
                                          pretrained["classifier"], *pair.target_eval))
    log(f"[eval] ADDA: {100 * summary['adda_accuracy']:.2f}% on target {cfg.eval_split}")
  return summary
