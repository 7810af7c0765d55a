"""The live progress bar: drawn only when enabled, counting finished steps, lines above it."""
import io

import jax.numpy as jnp

from adda_jax.progress import Progress


def test_bar_counts_steps_shows_metrics_and_keeps_log_lines():
  stream, lines = io.StringIO(), []
  progress = Progress(enabled=True, stream=stream)
  log = progress.wrap(lines.append)
  with progress.stage("adapt", total=10, done=4):
    progress.advance({"step": jnp.int32(5)}, 3)
    progress.show({"disc_accuracy": 0.625, "mapping_loss": 0.75, "step_time": 9.0})
    log("[adapt] step 7/10")
  text = stream.getvalue()
  assert "[adapt]" in text and "7/10" in text
  assert "disc_acc=0.625" in text and "mapping_loss=0.750" in text
  assert "step_time" not in text  # Only the losses and accuracies worth watching.
  assert lines == ["[adapt] step 7/10"]


def test_disabled_or_finished_stage_draws_nothing():
  stream = io.StringIO()
  off = Progress(enabled=False, stream=stream)
  with off.stage("pretrain", total=10, done=0):
    off.advance({}, 5)
  done = Progress(enabled=True, stream=stream)
  with done.stage("pretrain", total=10, done=10):
    done.advance({}, 1)
  assert stream.getvalue() == ""
  assert Progress(stream=io.StringIO()).enabled is False  # Not a terminal: plain lines only.
