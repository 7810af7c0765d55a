"""Every progress line's metrics, kept: WORKDIR/metrics.jsonl always (one JSON object per
line: stage, step, metrics), and TensorBoard scalars in WORKDIR/tensorboard/ where the
`tensorboard` package imports (tags "stage/metric", each stage counting its own steps). A host
without it (an accelerator host with JAX alone) still has the JSON lines. A resumed stage logs
its steps after the checkpoint again: readers keep the last line of each (stage, step).

The event file is written with TensorBoard's own protobufs and record framing, the scalars in
the form `tf.summary.scalar` gives them, without TensorFlow: importing TensorFlow (which
CLU's writer did) cost every run about 5 s of CPU at start-up (docs/speed.md).
"""
from __future__ import annotations

import json
import os
import socket
import time
from typing import Callable

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


class EventFile:
  """One TensorBoard event file of scalars: a new file per writer, as TensorFlow's writers
  make, so a resumed run's events sit beside the first run's."""

  def __init__(self, directory: str):
    try:
      from tensorboard.compat.proto import event_pb2
      from tensorboard.plugins.scalar import summary_v2
      from tensorboard.summary.writer.record_writer import RecordWriter
    except Exception as e:  # Not installed, or does not load (a protobuf it does not match).
      raise ImportError(f"{type(e).__name__}: {e}") from e
    self._event, self._scalar = event_pb2.Event, summary_v2.scalar_pb
    os.makedirs(directory, exist_ok=True)
    name = f"events.out.tfevents.{time.time():.0f}.{socket.gethostname()}.{os.getpid()}.v2"
    self._records = RecordWriter(open(os.path.join(directory, name), "wb"))
    self._write(self._event(wall_time=time.time(), file_version="brain.Event:2"))

  def _write(self, event) -> None:
    self._records.write(event.SerializeToString())

  def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
    for tag, value in scalars.items():
      self._write(self._event(wall_time=time.time(), step=step,
                              summary=self._scalar(tag, float(value))))
    self._records.flush()  # A killed run keeps every line it logged.

  def close(self) -> None:
    self._records.close()


class MetricsWriter:
  def __init__(self, workdir: str, log: Callable[[str], None]):
    self.path = os.path.join(workdir, METRICS_FILE)
    self._log = log
    try:
      self._tensorboard = EventFile(os.path.join(workdir, TENSORBOARD_DIR))
      self._missing = None
    except ImportError as e:  # No usable tensorboard package here: JSON lines only.
      self._tensorboard, self._missing = None, str(e)

  def write(self, stage: str, step: int, metrics: dict[str, float]) -> None:
    with open(self.path, "a") as f:
      f.write(json.dumps({"stage": stage, "step": step, **metrics}) + "\n")
    if self._tensorboard is not None:
      self._tensorboard.write_scalars(step, {f"{stage}/{k}": v for k, v in metrics.items()})

  def close(self) -> None:
    if self._tensorboard is None:
      self._log(f"[metrics] no TensorBoard events on this host ({self._missing}); "
                f"{self.path} has the metrics")
    else:
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
