"""Files that concurrent runs share or that a crash must not leave half-written.

- `exclusive_lock`: an advisory `fcntl.flock` lock on a file. The kernel releases it when the
  holder's process ends, however it ends (SIGKILL included), so a lock left by a killed run
  never blocks the next one; the file records who holds it, for the refusal message.
- `write_json_atomic`: write to a temporary file in the same folder, then rename over the
  target, so readers see the old file or the new one, never a partial one.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from typing import Any, Callable, Iterator

from adda_jax.errors import UserError


def _holder_line() -> str:
  started = time.strftime("%Y-%m-%d %H:%M:%S")
  return (f"pid {os.getpid()} on {socket.gethostname()}, since {started}: "
          f"{' '.join(sys.argv) or 'python'}")


def _read_holder(fd: int) -> str:
  """The holder's line; a holder that has just taken the lock may not have written it yet."""
  for _ in range(20):
    holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
    if holder:
      return holder
    time.sleep(0.05)
  return "another process"


@contextlib.contextmanager
def exclusive_lock(path: str, busy: Callable[[str], str]) -> Iterator[None]:
  """Holds the lock on `path` (created if missing) for the `with` block.

  If another process holds it, raises UserError(busy(who holds it)) at once. The lock file
  itself stays in place, since deleting a lock file races with its next taker.
  """
  try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    raise UserError(f"cannot create the lock file {path} ({e.strerror}); choose a writable "
                    f"folder")
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise UserError(busy(_read_holder(fd)))
    os.ftruncate(fd, 0)
    os.pwrite(fd, (_holder_line() + "\n").encode(), 0)
    yield
  finally:
    os.close(fd)  # Closing releases the lock.


@contextlib.contextmanager
def waiting_lock(path: str) -> Iterator[None]:
  """Holds the lock on `path` for the `with` block, waiting for any other holder first: for
  short critical sections (appending a row, preparing a dataset once)."""
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)


def write_json_atomic(path: str, data: Any, what: str) -> None:
  """Writes `data` as JSON to `path` through a temporary file and a rename; a UserError naming
  `what` if the disk refuses (the previous file, if any, is left as it was)."""
  partial = f"{path}.{os.getpid()}.tmp"
  try:
    with open(partial, "w") as f:
      json.dump(data, f, indent=2)
      f.flush()
      os.fsync(f.fileno())
    os.replace(partial, path)
  except OSError as e:
    with contextlib.suppress(OSError):
      os.remove(partial)
    raise UserError(f"could not write {what} {path} ({e.strerror or e}); free disk space and "
                    f"rerun the same command: training resumes from the last checkpoint")
