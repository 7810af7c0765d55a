"""Ctrl-C ends a run at once, with one line, from the first instant of the process.

Python turns SIGINT into KeyboardInterrupt wherever the main thread happens to be: inside an
import of TensorFlow or jaxlib it can be swallowed or turned into a C++ abort, and elsewhere
it unwinds through library code that prints tracebacks. The scripts call `exit_on_sigint()`
before importing anything heavy, so SIGINT always ends the process the same way: one line,
exit status 130. That is as safe as a kill at the same moment, which the run is built for:
checkpoints, the config and the summary are written to temporary names and renamed when
complete, and rerunning the same command resumes from the last complete checkpoint.

The line goes to the stderr the process started with, kept as a file descriptor of its own:
while a checkpoint is read or written, fd 2 points at a buffer (`checkpoint.py` holds back
what orbax's threads print there), and a line written to fd 2 then would be lost.
"""
from __future__ import annotations

import os
import signal

MESSAGE = b"interrupted: rerun the same command to resume from the last checkpoint\n"
EXIT_STATUS = 130  # 128 + SIGINT, as shells report it.
_stderr = 2


def _exit_now(signum, frame) -> None:
  os.write(_stderr, MESSAGE)
  os._exit(EXIT_STATUS)


def exit_on_sigint() -> None:
  global _stderr
  try:
    _stderr = os.dup(2)
  except OSError:  # Started with stderr closed: there is no terminal to tell.
    pass
  signal.signal(signal.SIGINT, _exit_now)
