"""Your own domains: image folders (and TFDS names) through --source / --target, end to end."""
import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from adda_jax import cli
from adda_jax.data import domains, folders
from adda_jax.data.loading import DataSource
from adda_jax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ("bar", "blob", "cross")


def draw(kind: str, size: int, rng, invert: bool) -> np.ndarray:
  image = rng.integers(0, 50, (size, size)).astype(np.uint8)
  middle = size // 2
  if kind == "bar":
    image[middle - 1:middle + 1, 2:-2] = 240
  elif kind == "blob":
    image[middle - 4:middle + 4, middle - 4:middle + 4] = 240
  else:
    image[middle - 1:middle + 1, :] = image[:, middle - 1:middle + 1] = 240
  return 255 - image if invert else image


def make_domain(root, size, rgb, invert, classes=CLASSES, counts=(24, 9), seed=0):
  """ROOT/{train,test}/<class>/*.png: learnable shapes, gray or RGB, of one size."""
  rng = np.random.default_rng(seed)
  for split, count in zip(folders.SPLITS, counts):
    for name in classes:
      os.makedirs(os.path.join(root, split, name), exist_ok=True)
      for i in range(count):
        pixels = draw(name, size, rng, invert)
        image = Image.fromarray(np.stack([pixels] * 3, -1) if rgb else pixels)
        image.save(os.path.join(root, split, name, f"{i}.png"))
  return str(root)


@pytest.fixture
def two_domains(tmp_path):
  return (make_domain(tmp_path / "light", 20, rgb=False, invert=False),
          make_domain(tmp_path / "dark", 36, rgb=True, invert=True, seed=1))


def test_folder_reads_resizes_and_numbers_classes(two_domains):
  source, target = two_domains
  assert folders.class_names(source) == CLASSES
  data = folders.read_image_folder(target, 28, 1)
  images, labels = data["train"]
  assert images.shape == (72, 28, 28, 1) and images.dtype == np.uint8
  assert np.bincount(labels).tolist() == [24, 24, 24]
  assert data["test"][0].shape == (27, 28, 28, 1)
  # The run's class order may differ from the folder's: labels follow the run's.
  run_order = ("cross", "bar", "blob")
  renumbered = domains.load(target, DataSource(), run_order, 28, 3)
  assert renumbered["train"][0].shape == (72, 28, 28, 3)
  assert (renumbered["train"][1] == np.array([1, 2, 0])[labels]).all()


def test_cli_config_for_two_folders(two_domains):
  source, target = two_domains
  parser = cli.Parser()
  cli.add_run_flags(parser)
  cfg = cli.config_from_args(parser.parse_args(["--source", source, "--target", target]))
  assert (cfg.pair, cfg.class_names) == ("light_dark", CLASSES)
  assert (cfg.source_subset, cfg.target_subset) == (None, None)


@pytest.mark.parametrize("breakage,message", [
    ("no_test", "test is missing: a domain folder needs train/<class>/*.png"),
    ("empty_class", "holds no images"),
    ("unreadable", "cannot read image"),
    ("extra_target_class", "hold different classes (only in source: none; only in target: "
                           "zebra)"),
    ("split_mismatch", "train and test hold different classes"),
    ("missing", "does not exist"),
])
def test_bad_folders_are_one_line(tmp_path, two_domains, breakage, message):
  source, target = two_domains
  if breakage == "no_test":
    os.rename(os.path.join(target, "test"), os.path.join(target, "elsewhere"))
  elif breakage == "empty_class":
    for file in glob.glob(os.path.join(target, "test", "blob", "*.png")):
      os.remove(file)
  elif breakage == "unreadable":
    with open(os.path.join(target, "train", "bar", "broken.png"), "wb") as f:
      f.write(b"not a png at all")
  elif breakage == "extra_target_class":
    make_domain(target, 36, rgb=True, invert=True, classes=("zebra",))
  elif breakage == "split_mismatch":
    os.makedirs(os.path.join(target, "train", "zebra"))
  elif breakage == "missing":
    target = str(tmp_path / "nowhere" / "dark")
  run = subprocess.run([sys.executable, "experiments/run.py", "--source", source, "--target",
                        target, "--workdir", str(tmp_path / "run"), "--pretrain-steps", "2",
                        "--adapt-steps", "2", "--batch-size", "8"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
  lines = run.stderr.strip().splitlines()
  assert run.returncode == 2 and len(lines) == 1, run.stderr[-2000:]
  assert message in lines[0], lines[0]
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("args,message", [
    (["--pair", "mnist_usps", "--source", "mnist"], "exactly one of --pair PRESET"),
    (["--source", "mnist"], "--source and --target go together"),
    (["--source", "mnist", "--target", "no_such_dataset_xyz"],
     "domain 'no_such_dataset_xyz' is neither a built-in domain"),
])
def test_what_to_adapt_is_checked(args, message):
  parser = cli.Parser()
  cli.add_run_flags(parser)
  with pytest.raises(UserError, match=message.replace("(", r"\(")):
    cli.config_from_args(parser.parse_args(args))


def test_tfds_dataset_by_name(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=12):
    names = domains.class_names("fashion_mnist", DataSource(data_dir=str(tmp_path)))
    data = domains.load("fashion_mnist", DataSource(data_dir=str(tmp_path)), names, 28, 1)
  assert len(names) == 10 and "Sneaker" in names
  assert data["train"][0].shape == (12, 28, 28, 1) and data["test"][1].max() < 10


def test_folder_run_end_to_end_then_repeated_from_its_config(tmp_path, two_domains):
  source, target = two_domains
  workdir = str(tmp_path / "run")
  common = ["--pretrain-steps", "6", "--adapt-steps", "4", "--batch-size", "8",
            "--log-every", "2", "--checkpoint-every", "2"]
  run = subprocess.run([sys.executable, "experiments/run.py", "--source", source, "--target",
                        target, "--workdir", workdir, *common],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert run.returncode == 0, run.stderr[-2000:]
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  assert summary["config"]["class_names"] == list(CLASSES)
  # JSON lines: every progress line of both stages.
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    lines = [json.loads(line) for line in f]
  assert [(l["stage"], l["step"]) for l in lines] == [("pretrain", 2), ("pretrain", 4),
                                                        ("pretrain", 6), ("adapt", 2),
                                                        ("adapt", 4)]
  assert lines[-1]["disc_accuracy"] == pytest.approx(summary["adapt_history"][-1]["disc_accuracy"])
  assert glob.glob(os.path.join(workdir, "tensorboard", "events.out.tfevents.*"))
  for picture in ("tsne.png", "curves.png", "confusion.png"):
    with Image.open(os.path.join(workdir, picture)) as image:
      image.load()
      assert min(image.size) > 200
  with open(os.path.join(workdir, "report.md")) as f:
    report = f.read()
  for label in ("source_only", "adda"):
    assert f"| {label} | {100 * summary[label + '_accuracy']:.2f}% |" in report
  assert f"| pretrain | 6 | {summary['pretrain_seconds']:.1f} s |" in report
  assert "![t-SNE" in report
  assert "## Predicted classes on the target test split (no target label read)" in report
  assert re.search(r"\| source training labels \| \w+: \d+\.\d% \| \w+: \d+\.\d% \|", report)
  assert re.search(r"\| adda \| \w+: \d+\.\d% \|", report)
  # The saved config repeats the run; flags override it and reach the training code.
  again = str(tmp_path / "again")
  rerun = subprocess.run([sys.executable, "experiments/run.py", "--config",
                          os.path.join(workdir, "config.json"), "--seed", "1", "--adapt-steps",
                          "2", "--workdir", again, "--no-pictures"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert rerun.returncode == 0, rerun.stderr[-2000:]
  with open(os.path.join(again, "summary.json")) as f:
    varied = json.load(f)
  assert varied["config"]["seed"] == 1 and varied["config"]["source"] == source
  assert [h["step"] for h in varied["adapt_history"]] == [2]
  assert not os.path.exists(os.path.join(again, "tsne.png"))
  assert os.path.exists(os.path.join(again, "report.md"))


def test_export_folder_writes_a_built_in_domain_that_reads_back(raw_dir, tmp_path):
  out = tmp_path / "usps_png"
  command = [sys.executable, "experiments/export_folder.py", "--domain", "usps",
             "--data-source", "raw", "--raw-dir", raw_dir, "--out", str(out)]
  run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert run.returncode == 0, run.stderr[-2000:]
  assert os.listdir(tmp_path) == ["usps_png"]  # The temporary name is gone.
  original = domains.load("usps", DataSource("raw", raw_dir), domains.DIGITS, 16, 1)
  exported = folders.read_image_folder(str(out), 16, 1)
  for split in folders.SPLITS:
    assert sorted(exported[split][1].tolist()) == sorted(original[split][1].tolist())
  again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert again.returncode == 2 and "already exists" in again.stderr
