"""metrics.jsonl and the TensorBoard writer."""
import glob
import os

from adda_jax import metrics


def test_lines_and_events_and_the_last_line_of_a_step_wins(tmp_path):
  notes = []
  writer = metrics.MetricsWriter(str(tmp_path), notes.append)
  writer.write("pretrain", 2, {"loss": 1.0})
  writer.write("pretrain", 4, {"loss": 0.5})
  writer.write("pretrain", 4, {"loss": 0.25})  # A resumed stage logs step 4 again.
  writer.write("adapt", 2, {"disc_accuracy": 0.75})
  writer.close()
  assert notes == []  # CLU and TensorFlow are installed here.
  history = metrics.read(str(tmp_path))
  assert history == {"pretrain": [{"step": 2, "loss": 1.0}, {"step": 4, "loss": 0.25}],
                     "adapt": [{"step": 2, "disc_accuracy": 0.75}]}
  assert list(history) == ["pretrain", "adapt"]  # Training order, not alphabetical.
  assert glob.glob(os.path.join(tmp_path, "tensorboard", "events.out.tfevents.*"))
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
  from tensorboard.util import tensor_util
  events = EventAccumulator(os.path.join(tmp_path, "tensorboard"))
  events.Reload()
  assert sorted(events.Tags()["tensors"]) == ["adapt/disc_accuracy", "pretrain/loss"]
  losses = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
            for e in events.Tensors("pretrain/loss")]
  assert losses == [(2, 1.0), (4, 0.5), (4, 0.25)]


def test_no_file_reads_as_nothing(tmp_path):
  assert metrics.read(str(tmp_path)) == {}
