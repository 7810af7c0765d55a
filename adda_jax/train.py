"""A run end to end: each stage of the configured method trained in turn, each stage's model
measured on the target, and a summary saved; and a finished run measured again.

`run` is what `experiments/run.py` calls; tests call it on generated data. It is resumable:
each stage restores its newest checkpoint and only trains the steps that are left, so running
the same command again after a finished (or killed) run redoes nothing that was saved.
Nothing here names a method: `--method` picks one from `adda_jax.methods.REGISTRY`.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from adda_jax import hosts, losses, report, steps, storage, validators
from adda_jax.config import Config
from adda_jax.data import domains
from adda_jax.data.loading import DataSource
from adda_jax.data.pairs import PairData, load_pair
from adda_jax.errors import UserError
from adda_jax.methods import REGISTRY, networks_for, stages_for
from adda_jax.methods.base import Stage
from adda_jax.metrics import MetricsWriter
from adda_jax.progress import Progress
from adda_jax.results import device_name, git_commit
from adda_jax.checkpoint import abstract_like
from adda_jax.runner import (SELECTED_SUFFIX, CollapseWatch, Placement, StageRunner,
                             accuracy, predictions, share_correct)
from adda_jax.workdir import (CONFIG_FILE, LOCK_FILE, SUMMARY_FILE, check_workdir,
                              claim_workdir, finished_pretraining, read_config,
                              reuse_pretraining)

Log = Callable[[str], None]

def _print(message: str) -> None:
  print(message, flush=True)


def compiled_predict(cfg: Config):
  return steps.make_predict(networks_for(cfg))


def compiled_embed(cfg: Config):
  return steps.make_embed(networks_for(cfg))


def stage_names(cfg: Config) -> set[str]:
  """Every method's stage folders and their other outputs, for --fresh to delete whatever
  run the workdir held."""
  every = [cfg.replace(method=name, self_train_steps=1) for name in REGISTRY]
  return {folder for each in every for stage in stages_for(each)
          for folder in (stage.name, stage.name + SELECTED_SUFFIX, *stage.outputs)}


def run(cfg: Config, workdir: str, data: DataSource, *, fresh: bool = False,
        pretrained_from: str | None = None, log: Log = _print, pictures: bool = False,
        progress: Progress | None = None, pair: PairData | None = None) -> dict[str, Any]:
  """Trains the method's stages (reusing the stage 1 of the run in `pretrained_from`),
  measures each stage's model on the target; returns (and saves) the summary, and writes
  report.md (with its pictures if `pictures`). `progress` draws live bars on a terminal;
  `pair` is the data already loaded for `cfg` (several seeds share one load).

  The run holds `workdir`'s lock throughout: a second run into the same folder is refused in
  one line naming the holder. A folder this call created is removed again if the run fails
  before it wrote its config (bad data, say), so a refused run leaves the disk as it was.
  """
  cfg = cfg.validate()
  if not hosts.is_primary():  # Another process of a --distributed run: same training, no files.
    return _run_locked(cfg, workdir, data, fresh, pretrained_from, lambda _: None, False,
                       Progress(enabled=False), pair)
  with held_workdir(workdir):
    return _run_locked(cfg, workdir, data, fresh, pretrained_from, log, pictures,
                       progress or Progress(enabled=False), pair)


@contextlib.contextmanager
def held_workdir(workdir: str) -> Iterator[None]:
  """Creates `workdir` if needed and holds its lock for the block; a folder this created is
  removed again if the block fails before a config was written into it."""
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
      yield
    except BaseException:
      if created and not os.path.exists(os.path.join(workdir, CONFIG_FILE)):
        shutil.rmtree(workdir, ignore_errors=True)
      raise


def _run_locked(cfg: Config, workdir: str, data: DataSource, fresh: bool,
                pretrained_from: str | None, log: Log, pictures: bool,
                progress: Progress, pair: PairData | None) -> dict[str, Any]:
  log = progress.wrap(log)
  commit = git_commit()
  stages = stages_for(cfg)
  runner = StageRunner(cfg, workdir, Placement.over_all_devices(cfg.batch_size), commit)
  check_workdir(cfg, workdir, stages, fresh)
  pretrained_checkpoint = (finished_pretraining(cfg, stages, pretrained_from)
                           if pretrained_from is not None else None)
  if pair is None:  # Before touching the workdir: bad data leaves it as it was.
    pair = load_data(cfg, data, log)
  check_batch_size(cfg, pair, stages)
  if hosts.is_primary():
    claim_workdir(cfg, workdir, fresh, stage_names(cfg))
    if pretrained_checkpoint is not None:
      reuse_pretraining(pretrained_checkpoint, workdir, log)
  hosts.barrier("workdir claimed")  # Other processes read checkpoints only once it is ready.
  predict, embed = compiled_predict(cfg), compiled_embed(cfg)
  recorder = RunRecorder(cfg, workdir, commit, log, progress)
  # Training sets go to the device once and serve every stage.
  datasets = device_datasets(pair, runner.placement, stages)
  earlier: dict[str, Any] = {}
  for index, stage in enumerate(stages):
    final = index == len(stages) - 1
    state, frozen, record, history = runner.train(
        stage, index, earlier, datasets, log, monitor(cfg, predict, embed, pair, stage),
        recorder.on_log(stage), progress, select=final)
    earlier[stage.name] = state
    recorder.finish_stage(stage, state, frozen, record, history, predict, pair)
    if final and cfg.select:
      recorder.record_selection(stage, runner, state, frozen, predict, pair)
  return recorder.close(stages, pair, pictures)


def monitor(cfg: Config, predict, embed, pair: PairData, stage: Stage):
  """What each progress line measures besides the step's own metrics: the label-free
  validators (`val_entropy`, `val_im`, `val_bnm`, `val_snd`; adda_jax/validators.py) on a
  fixed draw of unlabelled target training images, the accuracy on held-out source images
  (`val_source_accuracy`, with --source-val-size) and their deep embedded validation risk
  (`val_dev`), and, unless --no-target-monitor, the
  target accuracy, which reads target labels and so is for watching a run only: the model a
  run keeps is always its last step's."""
  unlabelled = jnp.asarray(validators.subset(pair.target_train[0]))  # Sent to the device once.
  if pair.source_val is not None:  # DEV's: source training images, and the held-out ones.
    source_draw = jnp.asarray(validators.subset(pair.source_train[0]))
    held_out, held_out_labels = map(jnp.asarray, pair.source_val)

  def measure(state, frozen) -> dict[str, float]:
    encoder, classifier = stage.predictor(state, frozen)
    target_features, target_logits = embed(encoder, classifier, unlabelled)
    scores = validators.scores(target_logits)
    measured = {f"val_{name}": float(value) for name, value in scores.items()}
    if pair.source_val is not None:
      held_features, held_logits = embed(encoder, classifier, held_out)
      measured["val_source_accuracy"] = float(losses.accuracy(held_logits, held_out_labels))
      weights = validators.domain_weights(embed(encoder, classifier, source_draw)[0],
                                          target_features, held_features)
      measured["val_dev"] = float(validators.deep_embedded_validation(
          weights, losses.per_example_classification_loss(held_logits, held_out_labels)))
    if cfg.monitor_target:
      measured["target_accuracy"] = accuracy(predict, encoder, classifier, *pair.target_eval)
    return measured
  return measure


class RunRecorder:
  """One run's bookkeeping while its stages train: the summary, the metrics file, the
  discriminator watch and alarms, each stage's accuracy; at the end summary.json and the
  report. One per seed when several seeds train together (adda_jax/seeds.py)."""

  def __init__(self, cfg: Config, workdir: str, commit: str, log: Log, progress: Progress):
    self.cfg, self.workdir, self.log, self.progress = cfg, workdir, log, progress
    self.summary = _new_summary(cfg, commit, device_name())
    self.writes = hosts.is_primary()  # One process of a --distributed run writes the files.
    self.writer = MetricsWriter(workdir, log) if self.writes else None
    self.finished: list[report.FinishedStage] = []
    self._watches: dict[str, CollapseWatch] = {}

  def on_log(self, stage: Stage) -> Callable[[int, dict[str, float]], None]:
    """What happens at each progress line of `stage`: metrics written, bar updated,
    collapse and alarms checked (both logged and kept in the summary)."""
    watch = CollapseWatch(self.log, stage.name) if stage.watch_discriminator else None
    if watch is not None:
      self._watches[stage.name] = watch

    def on_log(step: int, metrics: dict[str, float]) -> None:
      if self.writer is not None:
        self.writer.write(stage.name, step, metrics)
      self.progress.show(metrics)
      if watch is not None:
        watch(step, metrics)
      for message in (stage.alarms(metrics) if stage.alarms else []):
        self.log(f"[{stage.name}] warning: {message} at step {step}")
        self.summary.setdefault("alarms", []).append({"stage": stage.name, "step": step,
                                                      "message": message})
    return on_log

  def finish_stage(self, stage: Stage, state, frozen, record, history, predict,
                   pair: PairData) -> None:
    """Records a trained stage (its history, time, commit, collapse notes) and measures its
    model on the target eval split."""
    summary = self.summary
    summary[f"{stage.name}_history"] = history
    summary[f"{stage.name}_seconds"], summary[f"{stage.name}_commit"] = (record.train_seconds,
                                                                        record.commit)
    if stage.name in self._watches:
      summary["discriminator_collapse"] = self._watches[stage.name].events
    predicted = _measure(summary, stage, predict, state, frozen, pair, self.cfg.eval_split,
                         self.log)
    self.finished.append(report.FinishedStage(stage, state, frozen, predicted))

  def record_selection(self, stage: Stage, runner: StageRunner, state, frozen, predict,
                       pair: PairData) -> None:
    """--select: the accuracy of the checkpoint the validator preferred, beside the last
    step's; and the oracle choice (the progress line of best target accuracy: it reads
    target labels, so it is reported as such and never used)."""
    summary, label, name = self.summary, stage.label, self.cfg.select
    selection = runner.selection(stage)
    step = selection.best_step()
    if step is None:
      return
    chosen, _, _ = selection.restore(step, abstract_like(state))
    value = accuracy(predict, *stage.predictor(chosen, frozen), *pair.target_eval)
    summary.update({f"{label}_selected_accuracy": value, f"{label}_selected_step": step,
                    "selected_by": name})
    message = (f"[select] {label}: {100 * value:.2f}% at step {step}, the line {name} prefers "
               f"(label-free); last step {100 * summary[f'{label}_accuracy']:.2f}%")
    history = summary[f"{stage.name}_history"]
    if history and "target_accuracy" in history[0]:
      best = max(history, key=lambda line: line["target_accuracy"])
      summary.update({f"{label}_oracle_accuracy": best["target_accuracy"],
                      f"{label}_oracle_step": best["step"]})
      message += (f"; oracle (reads target labels): {100 * best['target_accuracy']:.2f}% at "
                  f"step {best['step']}")
    self.log(message)

  def close(self, stages: list[Stage], pair: PairData, pictures: bool) -> dict[str, Any]:
    """Logs the times and warnings, saves summary.json, writes the report; the summary."""
    summary, log = self.summary, self.log
    log("[time] training " + ", ".join(
        f"{stage.name} {_seconds(summary[stage.name + '_seconds'])} (commit "
        f"{summary[stage.name + '_commit']})" for stage in stages))
    if summary.get("discriminator_collapse"):
      log(f"[summary] discriminator collapse reported: {summary['discriminator_collapse']}")
    if summary.get("alarms"):
      log(f"[summary] {len(summary['alarms'])} warnings raised during training (summary.json "
          f"'alarms'), the first: {summary['alarms'][0]['message']}")
    if not self.writes:
      return summary
    storage.write_json_atomic(os.path.join(self.workdir, SUMMARY_FILE), summary, "the summary")
    self.writer.close()
    report.write(self.workdir, self.cfg, summary, networks_for(self.cfg), pair, self.finished,
                 pictures, log)
    return summary


def load_data(cfg: Config, data: DataSource, log: Log) -> PairData:
  """The run's datasets, with a line saying what was read and how long it took."""
  kinds = {domains.kind(cfg.source), domains.kind(cfg.target)}
  via = f" ({data.source})" if "digits" in kinds else ""
  log(f"[data] {cfg.source} -> {cfg.target}{via}; devices: {jax.devices()}")
  t = time.perf_counter()
  pair = load_pair(cfg, data)
  log(f"[data] source train {len(pair.source_train[0])}, target train "
      f"{len(pair.target_train[0])}, target {cfg.eval_split} {len(pair.target_eval[0])} "
      f"images of {pair.source_train[0].shape[1:]} ({time.perf_counter() - t:.1f} s)")
  return pair


def _new_summary(cfg: Config, commit: str, device: str) -> dict[str, Any]:
  return {"pair": cfg.pair, "seed": cfg.seed, "eval_split": cfg.eval_split, "commit": commit,
          "device": device, "config": cfg.to_json()}


def check_batch_size(cfg: Config, pair: PairData, stages: list[Stage]) -> None:
  """A batch larger than a training set it is drawn from is a typo, not a protocol: refused
  before anything is compiled (a compile at batch 100,000 alone takes minutes and memory)."""
  sizes = {"source": len(pair.source_train[0]), "target": len(pair.target_train[0]),
           "target_labelled": len(pair.target_train[0])}
  smallest = min(sizes[name] for stage in stages for name in stage.data)
  if cfg.batch_size > smallest:
    raise UserError(f"--batch-size {cfg.batch_size} is larger than a training set of this run "
                    f"({smallest} images); use at most {smallest}")


def device_datasets(pair: PairData, placement: Placement, stages: list[Stage]
                    ) -> dict[str, steps.DeviceData]:
  """The training sets the stages sample from, on the device. "target" and
  "target_labelled" are the same arrays; the stage call hands a "target" batch's images only."""
  arrays = {"source": pair.source_train, "target": pair.target_train,
            "target_labelled": pair.target_train}
  # In a fixed order: in a --distributed run every process must place them alike.
  names = sorted({name for stage in stages for name in stage.data})
  return {name: placement.replicate(steps.DeviceData(*arrays[name])) for name in names}


def _measure(summary: dict[str, Any], stage: Stage, predict, state, frozen, pair: PairData,
             eval_split: str, log: Log) -> np.ndarray:
  """The stage's model's accuracy on the target eval split, into the summary and the log;
  returns its predictions there, for the report."""
  images, labels = pair.target_eval
  predicted = predictions(predict, *stage.predictor(state, frozen), images)
  value = share_correct(predicted, labels)
  summary[f"{stage.label}_accuracy"] = value
  log(f"[eval] {stage.label}: {100 * value:.2f}% on target {eval_split}")
  return predicted


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
  predict = compiled_predict(cfg)
  summary = _new_summary(cfg, runner.commit, _training_device(workdir))
  earlier: dict[str, Any] = {}
  finished: list[report.FinishedStage] = []
  for index, stage in enumerate(stages):
    state, record = runner.restore_final(stage, index, earlier)
    frozen = stage.frozen(earlier)
    earlier[stage.name] = state
    summary[f"{stage.name}_seconds"], summary[f"{stage.name}_commit"] = (record.train_seconds,
                                                                        record.commit)
    predicted = _measure(summary, stage, predict, state, frozen, pair, cfg.eval_split, log)
    finished.append(report.FinishedStage(stage, state, frozen, predicted))
  if write_report:  # The run's own summary where it has one: its times and collapse notes.
    report.write(workdir, cfg, _saved_summary(workdir) or summary, networks_for(cfg), pair,
                 finished, True, log)
  return summary


def _saved_summary(workdir: str) -> dict[str, Any] | None:
  try:
    with open(os.path.join(workdir, SUMMARY_FILE)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None
