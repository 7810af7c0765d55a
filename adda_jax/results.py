"""The results table: one CSV row per (run, method), appended by `run.py --results FILE`."""
from __future__ import annotations

import csv
import os
import subprocess
from typing import Any

COLUMNS = ("pair", "method", "seed", "target_accuracy", "eval_split", "pretrain_steps",
           "adapt_steps", "batch_size", "source_subset", "target_subset", "disc_input",
           "adversarial_loss", "image_size", "channels", "wall_seconds", "commit", "command")


def git_commit() -> str:
  """The checked-out commit (recorded when a run starts: the code that produced its rows)."""
  try:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True,
                          cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def rows_for(summary: dict[str, Any], command: str) -> list[dict[str, Any]]:
  cfg = summary["config"]
  common = {k: cfg[k] for k in ("pair", "seed", "eval_split", "pretrain_steps", "adapt_steps",
                                "batch_size", "source_subset", "target_subset", "disc_input",
                                "adversarial_loss", "image_size", "channels")}
  common.update(commit=summary["commit"], command=command)
  rows = [dict(common, method="source_only", target_accuracy=summary["source_only_accuracy"],
               wall_seconds=round(summary["pretrain_seconds"], 1), adapt_steps=0)]
  if "adda_accuracy" in summary:
    rows.append(dict(common, method=cfg["method"], target_accuracy=summary["adda_accuracy"],
                     wall_seconds=round(summary["pretrain_seconds"] + summary["adapt_seconds"],
                                        1)))
  return rows


def append_run(path: str, summary: dict[str, Any], command: str) -> None:
  new = not os.path.exists(path)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "a", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    if new:
      writer.writeheader()
    writer.writerows(rows_for(summary, command))
