"""Live progress on a terminal: one tqdm bar per stage (steps, steps/s, ETA, and the losses,
D accuracy and target monitor of the latest progress line); nothing extra otherwise, since
the plain progress lines already say the same in a log file.

Steps are counted when the device has finished them (the bar waits on each call's result),
not when they were queued, so steps/s and the ETA are real.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Iterator

import jax

Log = Callable[[str], None]
SHOWN = ("source_loss", "mapping_loss", "disc_loss", "disc_accuracy", "mmd2", "gen_loss",
         "target_accuracy", "accuracy", "loss")


class Progress:
  def __init__(self, enabled: bool | None = None, stream: Any = None):
    self.stream = stream or sys.stderr
    self.enabled = (self.stream.isatty() if enabled is None else enabled)
    self._bar = None

  @contextlib.contextmanager
  def stage(self, name: str, total: int, done: int) -> Iterator["Progress"]:
    if not self.enabled or done >= total:
      yield self
      return
    from tqdm import tqdm
    self._bar = tqdm(total=total, initial=done, desc=f"[{name}]", unit="step",
                     file=self.stream, dynamic_ncols=True, smoothing=0.05)
    try:
      yield self
    finally:
      self._bar.close()
      self._bar = None

  def advance(self, state: Any, steps: int) -> None:
    if self._bar is not None:
      jax.block_until_ready(state)
      self._bar.update(steps)

  def show(self, metrics: dict[str, float]) -> None:
    if self._bar is not None:
      shown = {k.replace("_accuracy", "_acc"): f"{v:.3f}" for k, v in metrics.items()
               if k in SHOWN}
      self._bar.set_postfix(shown, refresh=True)

  def wrap(self, log: Log) -> Log:
    """`log` that prints above the bar instead of through it."""
    def write(message: str) -> None:
      if self._bar is None:
        log(message)
      else:
        with self._bar.external_write_mode():
          log(message)
    return write
