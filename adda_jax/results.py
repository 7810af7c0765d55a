"""The results table: one CSV row per (run, method), appended by `run.py --results FILE`."""
from __future__ import annotations

import csv
import fcntl
import io
import os
import subprocess
from typing import Any

import jax

from adda_jax import xla_options
from adda_jax.config import Config
from adda_jax.methods import stages_for
from adda_jax.errors import UserError

# Config fields that change a result; a row leaves blank those its model's stages never read.
CONFIG_COLUMNS = ("pair", "seed", "eval_split", "pretrain_steps", "adapt_steps", "batch_size",
                  "source_subset", "target_subset", "disc_input", "adversarial_loss",
                  "adapt_update", "sharing", "domain_weight", "mmd_kernel", "mmd_weight",
                  "image_size", "channels", "pixel_scale", "conv_relu", "pretrain_solver")
COLUMNS = ("pair", "method", "seed", "target_accuracy", "eval_split", "pretrain_steps",
           "adapt_steps", "batch_size", "source_subset", "target_subset", "disc_input",
           "adversarial_loss", "adapt_update", "sharing", "domain_weight", "mmd_kernel",
           "mmd_weight", "image_size", "channels", "pixel_scale", "conv_relu",
           "pretrain_solver", "wall_seconds", "device", "commit", "command")


def git_commit(root: str | None = None) -> str:
  """The checked-out commit (recorded when a run starts: the code that produced its rows),
  with "-dirty" when the package or the experiment scripts differ from it.

  $ADDA_COMMIT overrides it, for copies of the tree whose .git is absent or stale.
  """
  if os.environ.get("ADDA_COMMIT"):
    return os.environ["ADDA_COMMIT"]
  root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=True, cwd=root).stdout.strip()
    changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "adda_jax", "experiments"],
                             capture_output=True, cwd=root).returncode != 0
  except (OSError, subprocess.CalledProcessError):
    return "unknown"
  return commit + ("-dirty" if changed else "")


def device_name() -> str:
  """What ran the job, for reading wall times: e.g. "cpu", "NVIDIA H100 80GB HBM3 x8", and
  on GPU the kernel policy when it is not the default (it changes the last bits)."""
  count = jax.device_count()
  name = jax.devices()[0].device_kind + (f" x{count}" if count > 1 else "")
  policy = xla_options.gpu_kernels()
  return name + (f", {policy} kernels" if policy not in (None, "deterministic") else "")


def rows_for(summary: dict[str, Any], command: str) -> list[dict[str, Any]]:
  """One row per stage of the run's method: the model that stage ends with (source only after
  stage 1, the method after stage 2), with the settings it depends on, the training time and
  the commits of every stage up to it (also when a stage was reused or resumed)."""
  # Through Config: summaries written before a field existed get its default.
  cfg = Config.from_json(summary["config"])
  rows, seconds, commits, read = [], [], [], {"eval_split"}
  for stage in stages_for(cfg):
    # Summaries from before per-stage records name the run's commit only.
    seconds.append(summary.get(f"{stage.name}_seconds"))
    commits.append(summary.get(f"{stage.name}_commit", summary["commit"]))
    read |= set(stage.fields)
    settings = {k: getattr(cfg, k) if k in read else "" for k in CONFIG_COLUMNS}
    if "adapt_steps" not in read:
      settings["adapt_steps"] = 0
    row = dict(settings, method=stage.label, target_accuracy=summary[f"{stage.label}_accuracy"],
               wall_seconds=_total(*seconds), device=summary.get("device", ""),
               commit=join_commits(*commits), command=command)
    rows.append(row)
    # --select: the validator's choice and the oracle's, each a row of its own, so no table
    # mistakes either for the last step's model.
    for key, method in ((f"{stage.label}_selected_accuracy",
                         f"{stage.label} [selected: {summary.get('selected_by')}]"),
                        (f"{stage.label}_oracle_accuracy",
                         f"{stage.label} [oracle-selected: reads target labels]")):
      if key in summary:
        rows.append(dict(row, method=method, target_accuracy=summary[key]))
  return rows


def join_commits(*commits: str) -> str:
  """Commits that together produced a model, in order, each once: "abc1234+def5678"."""
  joined: list[str] = []
  for commit in commits:
    joined += [c for c in commit.split("+") if c and c not in joined]
  return "+".join(joined)


def _total(*seconds: float | None) -> float | str:
  """Summed seconds, rounded; blank when a stage's time is unknown."""
  return "" if None in seconds else round(sum(seconds), 1)


def check_file(path: str) -> None:
  """Refuses a `path` that cannot take this version's rows, before any training: a folder, a
  file of other columns or not text, or a place where no file can be written."""
  if os.path.isdir(path):
    raise UserError(f"--results {path} is a folder; pass the path of a CSV file")
  if os.path.exists(path):
    if not os.access(path, os.W_OK):
      raise UserError(f"--results {path} is not writable; pass a CSV file you can write")
    with open(path, "rb") as f:
      _check_header(f.readline(), path)
    return
  folder = os.path.dirname(os.path.abspath(path))
  existing = folder
  while not os.path.isdir(existing):
    existing = os.path.dirname(existing)
  if not os.access(existing, os.W_OK):
    raise UserError(f"--results {path}: cannot create a file in {existing}; pass a writable "
                    f"path")
  if existing == folder:  # Try a create beside it: some folders (/proc, say) refuse new files.
    probe = f"{path}.{os.getpid()}.probe"  # Not `path` itself: a concurrent run may create it.
    try:
      os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
      os.remove(probe)
    except OSError as e:
      raise UserError(f"--results {path}: cannot create the file ({e.strerror}); pass a "
                      f"writable path")


def _check_header(first_line: bytes, path: str) -> bool:
  """True if the file is empty (needs a header); a UserError unless it starts with ours."""
  if not first_line:
    return True
  try:
    header = next(csv.reader([first_line.decode("utf-8")]), None)
  except (UnicodeDecodeError, csv.Error):
    header = None
  if header is None or tuple(header) != COLUMNS:
    raise UserError(f"--results {path} is not a results CSV of this version (its first line "
                    f"is not the header {','.join(COLUMNS[:3])},...); pass a new file")
  return False


def append_run(path: str, summary: dict[str, Any], command: str) -> None:
  """Appends the run's rows under an exclusive lock on the file, so concurrent runs neither
  interleave rows nor write the header twice."""
  rows = rows_for(summary, command)
  try:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a+b") as f:
      fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # Released when the file closes.
      f.seek(0)
      new = _check_header(f.readline(), path)
      text = io.StringIO(newline="")
      writer = csv.DictWriter(text, fieldnames=COLUMNS)
      if new:
        writer.writeheader()
      writer.writerows(rows)
      f.seek(0, os.SEEK_END)
      f.write(text.getvalue().encode())
      f.flush()
      os.fsync(f.fileno())
  except OSError as e:
    raise UserError(f"could not append to --results {path} ({e.strerror or e}); the run's "
                    f"numbers are kept in its summary.json: append them later with "
                    f"experiments/evaluate.py --workdir WORKDIR --results {path}")
