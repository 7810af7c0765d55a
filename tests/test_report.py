"""The report's class counts: confusion matrices counted right, one panel per stage, and the
label-free class shares."""
import numpy as np
from PIL import Image

from adda_jax import report
from tests.test_train import tiny


def test_confusion_counts_rows_are_true_classes_and_columns_predictions():
  labels = np.array([0, 0, 1, 2, 2, 2])
  predicted = np.array([0, 1, 1, 2, 0, 2])
  np.testing.assert_array_equal(report.confusion_counts(labels, predicted, 3),
                                [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_confusion_picture_has_one_panel_per_stage(tmp_path):
  names = [str(k) for k in range(10)]
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, 200)
  counts = report.confusion_counts(labels, labels, 10)
  sizes = {}
  for stages in (1, 3):
    path = str(tmp_path / f"{stages}.png")
    report._confusion(path, [(f"stage {i}", counts) for i in range(stages)], names, "test")
    with Image.open(path) as image:
      sizes[stages] = image.size
  assert sizes[3][1] == sizes[1][1]
  np.testing.assert_allclose(sizes[3][0], 3 * sizes[1][0], rtol=0.02)


def test_class_shares_count_every_class_even_absent_ones():
  np.testing.assert_allclose(report.class_shares(np.array([2, 2, 0, 2]), 4),
                             [0.25, 0.0, 0.75, 0.0])


def test_runs_trained_with_information_maximisation_are_flagged():
  plain = tiny(method="adda")
  assert not report.evens_shares(plain)
  assert report.evens_shares(plain.replace(target_im_weight=1.0))
  assert report.evens_shares(plain.replace(self_train_steps=10, self_train_im_weight=1.0))
  assert not report.evens_shares(plain.replace(self_train_steps=0, self_train_im_weight=1.0))
