"""metrics.jsonl and the TensorBoard writer."""
import glob
import os
import subprocess
import sys

from adda_jax import metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_lines_and_events_and_the_last_line_of_a_step_wins(tmp_path):
  notes = []
  writer = metrics.MetricsWriter(str(tmp_path), notes.append)
  writer.write("pretrain", 2, {"loss": 1.0})
  writer.write("pretrain", 4, {"loss": 0.5})
  writer.write("pretrain", 4, {"loss": 0.25})  # A resumed stage logs step 4 again.
  writer.write("adapt", 2, {"disc_accuracy": 0.75})
  writer.close()
  assert notes == []  # The tensorboard package is installed here.
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


def _in_a_fresh_process(tmp_path, before: str) -> list[str]:
  """Writes one line with a MetricsWriter in a new interpreter; its notes, then whether
  TensorFlow was imported."""
  script = (f"import sys\n{before}\nfrom adda_jax import metrics\n"
            "notes = []\nwriter = metrics.MetricsWriter(sys.argv[1], notes.append)\n"
            "writer.write('adapt', 2, {'disc_accuracy': 0.75})\nwriter.close()\n"
            "print(*notes, 'tensorflow' in sys.modules, sep='\\n')\n")
  done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  assert done.returncode == 0, done.stderr[-2000:]
  return done.stdout.splitlines()


def test_events_are_written_without_importing_tensorflow(tmp_path):
  assert _in_a_fresh_process(tmp_path, "") == ["False"]
  assert glob.glob(os.path.join(tmp_path, "tensorboard", "events.out.tfevents.*"))


def test_without_tensorboard_the_json_lines_remain_and_the_log_says_so(tmp_path):
  notes = _in_a_fresh_process(tmp_path, "sys.modules['tensorboard'] = None")
  assert notes[0].startswith("[metrics] no TensorBoard events on this host (ModuleNotFound")
  assert notes[0].endswith("metrics.jsonl has the metrics") and notes[1] == "False"
  assert metrics.read(str(tmp_path)) == {"adapt": [{"step": 2, "disc_accuracy": 0.75}]}
  assert not os.path.exists(os.path.join(tmp_path, "tensorboard"))
