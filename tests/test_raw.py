"""Raw-format readers on generated IDX / h5 / ESL / mat / tar.gz files, and their errors."""
import gzip

import chex
import numpy as np
import pytest

from adda_jax.data import raw
from adda_jax.errors import UserError
from tests import conftest


@pytest.mark.parametrize("domain,shape", [("mnist", (28, 28, 1)), ("usps", (16, 16, 1)),
                                          ("svhn", (32, 32, 3)), ("mnist_m", (32, 32, 3))])
def test_reads_every_domain(raw_dir, domain, shape):
  splits = raw.read_domain(raw_dir, domain)
  for split, (images, labels) in splits.items():
    chex.assert_shape(images, (conftest.SIZES[split], *shape))
    assert images.dtype == np.uint8 and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() <= 9


def test_mnist_pixels_and_labels_roundtrip(raw_dir):
  images, labels = raw.read_domain(raw_dir, "mnist")["train"]
  expected_labels = conftest.labels_for("train", 1)
  np.testing.assert_array_equal(labels, expected_labels)
  np.testing.assert_array_equal(images[..., 0],
                                conftest.digit_images(expected_labels, 28, 1, 3)[..., 0])


def test_svhn_label_10_becomes_0(raw_dir):
  _, labels = raw.read_domain(raw_dir, "svhn")["train"]
  np.testing.assert_array_equal(labels, conftest.labels_for("train", 7))


def test_usps_esl_matches_h5(tmp_path, raw_dir):
  conftest.write_usps_esl(str(tmp_path))
  esl = raw.read_usps(str(tmp_path))
  h5 = raw.read_domain(raw_dir, "usps")
  for split in ("train", "test"):
    np.testing.assert_array_equal(esl[split][1], h5[split][1])
    assert np.abs(esl[split][0].astype(int) - h5[split][0].astype(int)).max() <= 1


def test_missing_files_name_what_is_expected(tmp_path):
  with pytest.raises(UserError, match="train-images-idx3-ubyte.gz"):
    raw.read_domain(str(tmp_path), "mnist")
  with pytest.raises(UserError, match="does not exist"):
    raw.read_domain(str(tmp_path / "nowhere"), "usps")


def test_wrong_idx_magic_is_rejected(tmp_path):
  conftest.write_mnist(str(tmp_path))
  path = tmp_path / "train-labels-idx1-ubyte.gz"
  data = gzip.open(path).read()
  with gzip.open(path, "wb") as f:
    f.write(b"\x00\x00\x09\x01" + data[4:])
  with pytest.raises(UserError, match="wrong IDX magic number"):
    raw.read_mnist(str(tmp_path))


def test_truncated_idx_is_rejected(tmp_path):
  conftest.write_mnist(str(tmp_path))
  path = tmp_path / "t10k-images-idx3-ubyte.gz"
  data = gzip.open(path).read()
  with gzip.open(path, "wb") as f:
    f.write(data[:-100])
  with pytest.raises(UserError, match="truncated"):
    raw.read_mnist(str(tmp_path))


def test_labels_outside_0_9_are_rejected(tmp_path):
  conftest.write_mnist(str(tmp_path))
  labels = conftest.labels_for("test", 2)
  labels[3] = 12
  conftest.write_idx(str(tmp_path / "t10k-labels-idx1-ubyte.gz"), labels)
  with pytest.raises(UserError, match="labels outside 0-9"):
    raw.read_mnist(str(tmp_path))


def test_h5_with_wrong_shape_is_rejected(tmp_path):
  import h5py
  with h5py.File(tmp_path / "usps.h5", "w") as f:
    for split in ("train", "test"):
      f.create_dataset(f"{split}/data", data=np.zeros((4, 100), np.float32))
      f.create_dataset(f"{split}/target", data=np.zeros(4, np.int32))
  with pytest.raises(UserError, match=r"expected \[N, 256\]"):
    raw.read_usps(str(tmp_path))


def test_corrupt_tar_is_rejected(tmp_path):
  (tmp_path / "mnist_m.tar.gz").write_bytes(b"\x1f\x8b\x08 definitely not a tarball")
  with pytest.raises(UserError, match="mnist_m.tar.gz"):
    raw.read_mnist_m(str(tmp_path))


def test_mat_with_wrong_shape_is_rejected(tmp_path):
  import scipy.io
  for split in ("train", "test"):
    scipy.io.savemat(tmp_path / f"{split}_32x32.mat",
                     {"X": np.zeros((28, 28, 1, 5), np.uint8), "y": np.ones((5, 1))})
  with pytest.raises(UserError, match=r"expected \[32, 32, 3, N\]"):
    raw.read_svhn(str(tmp_path))


def _rewrite_usps_h5(directory, **changes):
  """The generated usps.h5 with the test split's arrays replaced by `changes`."""
  import h5py
  conftest.write_usps_h5(str(directory))
  with h5py.File(directory / "usps.h5", "r+") as f:
    for name, value in changes.items():
      del f[f"test/{name}"]
      f.create_dataset(f"test/{name}", data=value)


@pytest.mark.parametrize("changes,message", [
    ({"target": conftest.labels_for("test", 5).reshape(-1, 1)}, r"labels have shape \[48, 1\]"),
    ({"data": np.full((48, 256), np.nan, np.float32)}, "NaN or Inf"),
    ({"data": np.full((48, 256), 255.0, np.float32)}, r"span 255..255, expected 0..1"),
    ({"target": np.full(48, 2.5)}, "not whole numbers"),
])
def test_usps_h5_that_would_train_on_garbage_is_refused(tmp_path, changes, message):
  _rewrite_usps_h5(tmp_path, **changes)
  with pytest.raises(UserError, match=message) as error:
    raw.read_usps(str(tmp_path))
  assert "usps.h5:test" in str(error.value)


def test_esl_values_outside_minus_one_one_are_refused(tmp_path):
  conftest.write_usps_esl(str(tmp_path))
  path = tmp_path / "zip.test.gz"
  lines = gzip.open(path, "rt").read().splitlines()
  lines[0] = lines[0].split()[0] + " 7.0" * 256
  with gzip.open(path, "wt") as f:
    f.write("\n".join(lines) + "\n")
  with pytest.raises(UserError, match=r"zip.test.gz: pixel values span .*expected -1..1"):
    raw.read_usps(str(tmp_path))


@pytest.mark.parametrize("cut", [2, 6, 10])
def test_idx_header_cut_short_is_rejected(tmp_path, cut):
  conftest.write_mnist(str(tmp_path))
  path = tmp_path / "train-images-idx3-ubyte.gz"
  data = gzip.open(path).read()
  with gzip.open(path, "wb") as f:
    f.write(data[:cut])
  with pytest.raises(UserError, match="too short|header is cut short"):
    raw.read_mnist(str(tmp_path))


@pytest.mark.parametrize("images,labels", [
    (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8)),  # no items
    (np.zeros((48, 0, 0), np.uint8), conftest.labels_for("test", 2)),  # 0x0 images
])
def test_idx_without_images_is_rejected(tmp_path, images, labels):
  conftest.write_mnist(str(tmp_path))
  conftest.write_idx(str(tmp_path / "t10k-images-idx3-ubyte.gz"), images)
  conftest.write_idx(str(tmp_path / "t10k-labels-idx1-ubyte.gz"), labels)
  with pytest.raises(UserError, match="holds no images"):
    raw.read_mnist(str(tmp_path))


def test_mnist_m_labels_not_ascii_are_rejected(tmp_path):
  root = tmp_path / "mnist_m"
  (root / "mnist_m_train").mkdir(parents=True)
  (root / "mnist_m_test").mkdir()
  for split in ("train", "test"):
    (root / f"mnist_m_{split}_labels.txt").write_bytes("00000000.png 3\nbild\xe4.png 1\n"
                                                       .encode("latin-1"))
  with pytest.raises(UserError, match="not ASCII text"):
    raw.read_mnist_m(str(tmp_path))
