"""Every progress line's metrics, kept: WORKDIR/metrics.jsonl always (one JSON object per
line: stage, step, metrics), and TensorBoard scalars in WORKDIR/tensorboard/ through CLU's
`metric_writers` where CLU and TensorFlow import (tags "stage/metric", each stage counting
its own steps). A host without them (an accelerator host with JAX alone) still has the
JSON lines. A resumed stage logs its steps after the checkpoint again: readers keep the last
line of each (stage, step).

TensorFlow takes seconds to import, so the TensorBoard writer is made on a background thread
while the run loads data and compiles; scalars logged before it is ready wait in a list.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Callable

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


class MetricsWriter:
  def __init__(self, workdir: str, log: Callable[[str], None]):
    self.path = os.path.join(workdir, METRICS_FILE)
    self._log = log
    self._tensorboard, self._missing = None, None
    self._waiting: list[tuple[int, dict[str, float]]] = []
    self._ready = threading.Thread(target=self._open_tensorboard, args=(workdir,), daemon=True)
    self._ready.start()

  def _open_tensorboard(self, workdir: str) -> None:
    try:
      # TensorFlow only writes event files here: its oneDNN rewrites do nothing for that,
      # and their start-up note (with the C++ logger's own) would only clutter the terminal.
      os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
      os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
      from clu import metric_writers
      self._tensorboard = metric_writers.SummaryWriter(os.path.join(workdir, TENSORBOARD_DIR))
    except Exception as e:  # No CLU or TensorFlow here, or one that does not load: JSON only.
      self._missing = f"{type(e).__name__}: {e}"

  def write(self, stage: str, step: int, metrics: dict[str, float]) -> None:
    with open(self.path, "a") as f:
      f.write(json.dumps({"stage": stage, "step": step, **metrics}) + "\n")
    self._waiting.append((step, {f"{stage}/{k}": v for k, v in metrics.items()}))
    if not self._ready.is_alive():
      self._flush()

  def _flush(self) -> None:
    if self._tensorboard is not None:
      for step, scalars in self._waiting:
        self._tensorboard.write_scalars(step, scalars)
      self._tensorboard.flush()
    self._waiting.clear()

  def close(self) -> None:
    self._ready.join()
    if self._tensorboard is None:
      self._log(f"[metrics] no TensorBoard events on this host ({self._missing}); "
                f"{self.path} has the metrics")
    self._flush()
    if self._tensorboard is not None:
      self._tensorboard.close()


def read(workdir: str) -> dict[str, list[dict[str, float]]]:
  """{stage: [metrics by step, ascending]} in training order, the last line of each
  (stage, step) winning."""
  rows: dict[tuple[str, int], dict] = {}
  path = os.path.join(workdir, METRICS_FILE)
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        if line.strip():
          row = json.loads(line)
          rows[(row["stage"], row["step"])] = row
  out: dict[str, list[dict[str, float]]] = {}  # Stages in the order they trained.
  for (stage, _), row in rows.items():
    out.setdefault(stage, []).append({k: v for k, v in row.items() if k != "stage"})
  return {stage: sorted(lines, key=lambda line: line["step"]) for stage, lines in out.items()}
