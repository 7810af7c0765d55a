"""Ctrl-C's one line reaches the terminal wherever stderr points at that moment."""
import os
import subprocess
import sys

from adda_jax import interrupts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_line_reaches_the_original_stderr_while_fd_2_points_elsewhere():
  # As while a checkpoint is written: checkpoint.py points fd 2 at a buffer of its own.
  script = ("import os, signal, time\nfrom adda_jax import interrupts\n"
            "interrupts.exit_on_sigint()\n"
            "os.dup2(os.open(os.devnull, os.O_WRONLY), 2)\n"
            "os.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)\n")
  done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                        timeout=60)
  assert done.returncode == interrupts.EXIT_STATUS
  assert done.stderr == interrupts.MESSAGE
