"""Every progress line's metrics, kept: WORKDIR/metrics.jsonl always (one JSON object per
line: stage, step, metrics), and TensorBoard scalars in WORKDIR/tensorboard/ through CLU's
`metric_writers` where CLU and TensorFlow import (tags "stage/metric", each stage counting
its own steps). A host without them (an accelerator host with JAX alone) still has the
JSON lines. A resumed stage logs its steps after the checkpoint again: readers keep the last
line of each (stage, step).
"""
from __future__ import annotations

import json
import os
from typing import Callable

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


class MetricsWriter:
  def __init__(self, workdir: str, log: Callable[[str], None]):
    self.path = os.path.join(workdir, METRICS_FILE)
    self._tensorboard = None
    try:
      # TensorFlow only writes event files here: its oneDNN rewrites do nothing for that,
      # and their start-up note (with the C++ logger's own) would only clutter the terminal.
      os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
      os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
      from clu import metric_writers
      self._tensorboard = metric_writers.SummaryWriter(os.path.join(workdir, TENSORBOARD_DIR))
    except ImportError as e:
      log(f"[metrics] no TensorBoard events on this host ({e}); {self.path} has the metrics")

  def write(self, stage: str, step: int, metrics: dict[str, float]) -> None:
    with open(self.path, "a") as f:
      f.write(json.dumps({"stage": stage, "step": step, **metrics}) + "\n")
    if self._tensorboard is not None:
      self._tensorboard.write_scalars(step, {f"{stage}/{k}": v for k, v in metrics.items()})
      self._tensorboard.flush()

  def close(self) -> None:
    if self._tensorboard is not None:
      self._tensorboard.close()


def read(workdir: str) -> dict[str, list[dict[str, float]]]:
  """{stage: [metrics by step, ascending]}, the last line of each (stage, step) winning."""
  rows: dict[tuple[str, int], dict] = {}
  path = os.path.join(workdir, METRICS_FILE)
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        if line.strip():
          row = json.loads(line)
          rows[(row["stage"], row["step"])] = row
  out: dict[str, list[dict[str, float]]] = {}
  for (stage, _), row in sorted(rows.items(), key=lambda item: (item[0][0], item[0][1])):
    out.setdefault(stage, []).append({k: v for k, v in row.items() if k != "stage"})
  return out
