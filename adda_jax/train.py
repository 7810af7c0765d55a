"""A run end to end: each stage of the configured method trained in turn, each stage's model
measured on the target, and a summary saved; and a finished run measured again.

`run` is what `experiments/run.py` calls; tests call it on generated data. It is resumable:
each stage restores its newest checkpoint and only trains the steps that are left, so running
the same command again after a finished (or killed) run redoes nothing that was saved.
Nothing here names a method: `--method` picks one from `adda_jax.methods.REGISTRY`.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any, Callable

import jax

from adda_jax import report, steps, storage
from adda_jax.config import Config
from adda_jax.data import domains
from adda_jax.data.loading import DataSource
from adda_jax.data.pairs import PairData, load_pair
from adda_jax.errors import UserError
from adda_jax.methods import REGISTRY, stages_for
from adda_jax.methods.base import Stage
from adda_jax.metrics import MetricsWriter
from adda_jax.models import make_networks
from adda_jax.progress import Progress
from adda_jax.results import device_name, git_commit
from adda_jax.runner import CollapseWatch, Placement, StageRunner, accuracy
from adda_jax.workdir import (CONFIG_FILE, LOCK_FILE, SUMMARY_FILE, check_workdir,
                              claim_workdir, finished_pretraining, read_config,
                              reuse_pretraining)

Log = Callable[[str], None]

def _print(message: str) -> None:
  print(message, flush=True)


def _networks(cfg: Config):
  return make_networks(cfg.image_size, cfg.channels, cfg.disc_input, cfg.disc_hidden,
                       cfg.conv_relu, len(cfg.class_names))


def _predict(cfg: Config):
  return steps.make_predict(_networks(cfg))


def _stage_names(cfg: Config) -> set[str]:
  """Every method's stage folders and their other outputs, for --fresh to delete whatever
  run the workdir held."""
  return {folder for name in REGISTRY for stage in stages_for(cfg.replace(method=name))
          for folder in (stage.name, *stage.outputs)}


def run(cfg: Config, workdir: str, data: DataSource, *, fresh: bool = False,
        pretrained_from: str | None = None, log: Log = _print, pictures: bool = False,
        progress: Progress | None = None) -> dict[str, Any]:
  """Trains the method's stages (reusing the stage 1 of the run in `pretrained_from`),
  measures each stage's model on the target; returns (and saves) the summary, and writes
  report.md (with its pictures if `pictures`). `progress` draws live bars on a terminal.

  The run holds `workdir`'s lock throughout: a second run into the same folder is refused in
  one line naming the holder. A folder this call created is removed again if the run fails
  before it wrote its config (bad data, say), so a refused run leaves the disk as it was.
  """
  cfg = cfg.validate()
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
      return _run_locked(cfg, workdir, data, fresh, pretrained_from, log, pictures,
                         progress or Progress(enabled=False))
    except BaseException:
      if created and not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
        shutil.rmtree(workdir, ignore_errors=True)
      raise


def _run_locked(cfg: Config, workdir: str, data: DataSource, fresh: bool,
                pretrained_from: str | None, log: Log, pictures: bool,
                progress: Progress) -> dict[str, Any]:
  log = progress.wrap(log)
  commit = git_commit()
  stages = stages_for(cfg)
  runner = StageRunner(cfg, workdir, Placement.over_all_devices(cfg.batch_size), commit)
  check_workdir(cfg, workdir, stages, fresh)
  pretrained_checkpoint = (finished_pretraining(cfg, stages, pretrained_from)
                           if pretrained_from is not None else None)
  kinds = {domains.kind(cfg.source), domains.kind(cfg.target)}
  via = f" ({data.source})" if "digits" in kinds else ""
  log(f"[data] {cfg.source} -> {cfg.target}{via}; devices: {jax.devices()}")
  t = time.perf_counter()
  pair = load_pair(cfg, data)  # Before touching the workdir: bad data leaves it as it was.
  _check_batch_size(cfg, pair, {name for stage in stages for name in stage.data})
  claim_workdir(cfg, workdir, fresh, _stage_names(cfg))
  if pretrained_checkpoint is not None:
    reuse_pretraining(pretrained_checkpoint, workdir, log)
  log(f"[data] source train {len(pair.source_train[0])}, target train "
      f"{len(pair.target_train[0])}, target {cfg.eval_split} {len(pair.target_eval[0])} "
      f"images of {pair.source_train[0].shape[1:]} ({time.perf_counter() - t:.1f} s)")
  predict = _predict(cfg)
  summary = _new_summary(cfg, commit, device_name())

  def monitor(stage: Stage):
    """Target accuracy at each progress line: it reads target labels, so it is for watching
    a run only; the model a run keeps is always its last step's."""
    if not cfg.monitor_target:
      return None
    return lambda state, frozen: {"target_accuracy": accuracy(
        predict, *stage.predictor(state, frozen), *pair.target_eval)}

  # Training sets go to the device once and serve every stage.
  datasets = _device_datasets(pair, runner.placement, {n for s in stages for n in s.data})
  earlier: dict[str, Any] = {}
  finished: list[report.FinishedStage] = []
  writer = MetricsWriter(workdir, log)
  for index, stage in enumerate(stages):
    watch = CollapseWatch(log, stage.name) if stage.watch_discriminator else None

    def on_log(step: int, metrics: dict[str, float], stage=stage, watch=watch) -> None:
      writer.write(stage.name, step, metrics)
      progress.show(metrics)
      if watch is not None:
        watch(step, metrics)
      for message in (stage.alarms(metrics) if stage.alarms else []):
        log(f"[{stage.name}] warning: {message} at step {step}")
        summary.setdefault("alarms", []).append({"stage": stage.name, "step": step,
                                                 "message": message})

    state, frozen, record, summary[f"{stage.name}_history"] = runner.train(
        stage, index, earlier, datasets, log, monitor(stage), on_log, progress)
    earlier[stage.name] = state
    finished.append(report.FinishedStage(stage, state, frozen))
    summary[f"{stage.name}_seconds"], summary[f"{stage.name}_commit"] = (record.train_seconds,
                                                                        record.commit)
    if watch is not None:
      summary["discriminator_collapse"] = watch.events
    _measure(summary, stage, predict, state, frozen, pair, cfg.eval_split, log)
  log("[time] training " + ", ".join(
      f"{stage.name} {_seconds(summary[stage.name + '_seconds'])} (commit "
      f"{summary[stage.name + '_commit']})" for stage in stages))
  if summary.get("discriminator_collapse"):
    log(f"[summary] discriminator collapse reported: {summary['discriminator_collapse']}")
  if summary.get("alarms"):
    log(f"[summary] {len(summary['alarms'])} warnings raised during training (summary.json "
        f"'alarms'), the first: {summary['alarms'][0]['message']}")
  storage.write_json_atomic(os.path.join(workdir, SUMMARY_FILE), summary, "the summary")
  writer.close()
  report.write(workdir, cfg, summary, _networks(cfg), pair, finished, pictures, log)
  return summary


def _new_summary(cfg: Config, commit: str, device: str) -> dict[str, Any]:
  return {"pair": cfg.pair, "seed": cfg.seed, "eval_split": cfg.eval_split, "commit": commit,
          "device": device, "config": cfg.to_json()}


def _check_batch_size(cfg: Config, pair: PairData, names: set[str]) -> None:
  """A batch larger than a training set it is drawn from is a typo, not a protocol: refused
  before anything is compiled (a compile at batch 100,000 alone takes minutes and memory)."""
  sizes = {"source": len(pair.source_train[0]), "target": len(pair.target_train[0]),
           "target_labelled": len(pair.target_train[0])}
  smallest = min(sizes[name] for name in names)
  if cfg.batch_size > smallest:
    raise UserError(f"--batch-size {cfg.batch_size} is larger than a training set of this run "
                    f"({smallest} images); use at most {smallest}")


def _device_datasets(pair: PairData, placement: Placement, names: set[str]
                     ) -> dict[str, steps.DeviceData]:
  """The training sets the stages sample from, on the device. "target" and
  "target_labelled" are the same arrays; the stage call hands a "target" batch's images only."""
  arrays = {"source": pair.source_train, "target": pair.target_train,
            "target_labelled": pair.target_train}
  return {name: placement.replicate(steps.DeviceData(*arrays[name])) for name in names}


def _measure(summary: dict[str, Any], stage: Stage, predict, state, frozen, pair: PairData,
             eval_split: str, log: Log) -> None:
  """The stage's model's accuracy on the target eval split, into the summary and the log."""
  value = accuracy(predict, *stage.predictor(state, frozen), *pair.target_eval)
  summary[f"{stage.label}_accuracy"] = value
  log(f"[eval] {stage.label}: {100 * value:.2f}% on target {eval_split}")


def _training_device(workdir: str) -> str:
  """The device the run trained on (its summary's), which the training times belong to; this
  machine's when the summary is missing or unreadable."""
  try:
    return str(_saved_summary(workdir)["device"])
  except (KeyError, TypeError):
    return device_name()


def _seconds(value: float | None) -> str:
  return "unknown time" if value is None else f"{value:.1f} s"


def evaluate_workdir(workdir: str, data: DataSource, eval_split: str | None = None,
                     log: Log = _print, write_report: bool = False) -> dict[str, Any]:
  """Restores a finished run's checkpoints and measures each stage's model on the target eval
  split (the run's own, or `eval_split` to compare the test/train protocols on the same
  models).

  Returns a summary like `run`'s (without the progress history): the accuracies measured now
  and each stage's training time and commit from its checkpoint, so results rows can be
  written also when summary.json is missing (a run killed after its last checkpoint).
  `write_report` redraws report.md and its pictures from the checkpoints (a run made with
  --no-pictures, or by an older version).
  """
  if not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    raise UserError(f"{workdir} holds no run ({CONFIG_FILE} missing); pass the --workdir "
                    f"of a run made by experiments/run.py")
  cfg = read_config(workdir)
  if eval_split is not None:
    cfg = cfg.replace(eval_split=eval_split).validate()
  stages = stages_for(cfg)
  runner = StageRunner(cfg, workdir, Placement.over_all_devices(cfg.batch_size), git_commit())
  pair = load_pair(cfg, data)
  predict = _predict(cfg)
  summary = _new_summary(cfg, runner.commit, _training_device(workdir))
  earlier: dict[str, Any] = {}
  finished: list[report.FinishedStage] = []
  for index, stage in enumerate(stages):
    state, record = runner.restore_final(stage, index, earlier)
    frozen = stage.frozen(earlier)
    earlier[stage.name] = state
    finished.append(report.FinishedStage(stage, state, frozen))
    summary[f"{stage.name}_seconds"], summary[f"{stage.name}_commit"] = (record.train_seconds,
                                                                        record.commit)
    _measure(summary, stage, predict, state, frozen, pair, cfg.eval_split, log)
  if write_report:  # The run's own summary where it has one: its times and collapse notes.
    report.write(workdir, cfg, _saved_summary(workdir) or summary, _networks(cfg), pair,
                 finished, True, log)
  return summary


def _saved_summary(workdir: str) -> dict[str, Any] | None:
  try:
    with open(os.path.join(workdir, SUMMARY_FILE)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None
