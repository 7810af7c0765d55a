"""A run's folder: whose run it holds, claiming it, and reusing another run's stage 1.

A workdir holds `config.json` (the run's config), one checkpoint folder per stage, `.lock`
(held by the run in progress) and, when the run finished, `summary.json`.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Callable

from adda_jax import storage
from adda_jax.checkpoint import StageCheckpoints
from adda_jax.config import Config
from adda_jax.errors import UserError
from adda_jax.methods.base import Stage
from adda_jax.metrics import METRICS_FILE, TENSORBOARD_DIR
from adda_jax.report import PICTURES, REPORT_FILE
from adda_jax.runner import check_stage_config

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
PRETRAIN_STAGE = "pretrain"
Log = Callable[[str], None]


def check_workdir(cfg: Config, workdir: str, stages: list[Stage], fresh: bool) -> None:
  """Refuses a `workdir` holding a run with a different config, in its config.json or in any
  stage's newest checkpoint (unless `fresh`); writes nothing."""
  if fresh or not os.path.isdir(workdir):
    return
  if os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    existing = read_config(workdir).result_fields()
    diff = sorted(k for k, v in cfg.result_fields().items() if existing.get(k) != v)
    if diff:
      raise UserError(f"{workdir} holds a run with a different config ({', '.join(diff)}); "
                      f"use another --workdir, or --fresh to delete that run")
  for stage in stages:
    if os.path.isdir(os.path.join(workdir, stage.name)):
      checkpoints = StageCheckpoints(os.path.join(workdir, stage.name), cfg.keep_checkpoints)
      if checkpoints.latest_step() is not None:
        check_stage_config(cfg, stage, checkpoints, checkpoints.latest_step())


def claim_workdir(cfg: Config, workdir: str, fresh: bool, stage_names: set[str]) -> None:
  """Writes `cfg` into `workdir`, first deleting the run there if `fresh` (its config, its
  summary, metrics, report and pictures, and the checkpoint folders of `stage_names`: any
  method's stages)."""
  try:
    os.makedirs(workdir, exist_ok=True)
    if fresh:
      for folder in (*stage_names, TENSORBOARD_DIR):
        shutil.rmtree(os.path.join(workdir, folder), ignore_errors=True)
      for name in (CONFIG_FILE, SUMMARY_FILE, METRICS_FILE, REPORT_FILE, *PICTURES):
        if os.path.exists(os.path.join(workdir, name)):
          os.remove(os.path.join(workdir, name))
  except OSError as e:
    raise UserError(f"cannot write to --workdir {workdir} ({e.strerror}); choose a writable "
                    f"folder")
  storage.write_json_atomic(os.path.join(workdir, CONFIG_FILE), cfg.to_json(), "the config")


def finished_pretraining(cfg: Config, stages: list[Stage], other: str) -> str:
  """The final stage-1 checkpoint of the run in `other`, which must have pretrained with the
  same settings as `cfg` (the pretraining stage's fields); a UserError otherwise."""
  pretraining = stages[0]
  if pretraining.name != PRETRAIN_STAGE:
    raise UserError(f"--pretrained-from: --method {cfg.method} has no source pretraining "
                    f"stage to reuse; drop the flag")
  if not os.path.exists(os.path.join(other, CONFIG_FILE)):
    raise UserError(f"--pretrained-from {other} holds no run ({CONFIG_FILE} missing); pass "
                    f"the --workdir of a run made by experiments/run.py")
  theirs = read_config(other)
  diff = sorted(k for k in pretraining.fields if getattr(theirs, k) != getattr(cfg, k))
  if diff:
    raise UserError(f"--pretrained-from {other} pretrained with other settings "
                    f"({', '.join(diff)}); pass a run with the same pair, seed and stage-1 "
                    f"settings")
  folder = os.path.join(other, PRETRAIN_STAGE)
  if not os.path.isdir(os.path.join(folder, str(pretraining.num_steps))):
    raise UserError(f"--pretrained-from {other} has no finished stage 1 (no checkpoint at step "
                    f"{pretraining.num_steps}); finish that run first")
  check_stage_config(cfg, pretraining, StageCheckpoints(folder, cfg.keep_checkpoints),
                     pretraining.num_steps)
  return os.path.join(folder, str(pretraining.num_steps))


def reuse_pretraining(checkpoint: str, workdir: str, log: Log) -> None:
  """Copies a finished stage-1 checkpoint into `workdir`, so a sweep over stage-2 settings
  trains the source model once; the copy keeps its recorded training time and commit. A no-op
  when `workdir` already has stage-1 checkpoints of its own."""
  target = os.path.join(workdir, PRETRAIN_STAGE)
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


def read_config(workdir: str) -> Config:
  path = os.path.join(workdir, CONFIG_FILE)
  try:
    with open(path) as f:
      return Config.from_json(json.load(f)).validate()
  except (OSError, ValueError, TypeError, KeyError, UserError) as e:
    raise UserError(f"{path} is unreadable or not an adda_jax config ({e}); fix that file, "
                    f"or start over in another --workdir (run.py --fresh deletes the run)")


