"""The TFDS path (offline preparation from raw files) against direct raw reading."""
import tempfile

import numpy as np
import pytest

from adda_jax.data import loading
from adda_jax.errors import UserError


@pytest.mark.parametrize("domain", ["usps", "mnist_m"])
def test_tfds_prepared_equals_raw(raw_dir, tmp_path, domain):
  via_tfds = loading.load_domain(domain, loading.DataSource("tfds", raw_dir, str(tmp_path)))
  direct = loading.load_domain(domain, loading.DataSource("raw", raw_dir))
  for split in ("train", "test"):
    np.testing.assert_array_equal(via_tfds[split][0], direct[split][0])
    np.testing.assert_array_equal(via_tfds[split][1], direct[split][1])
  # Prepared once: a second load reads the TFDS files even with the raw folder gone.
  again = loading.load_domain(domain, loading.DataSource("tfds", raw_dir, str(tmp_path)))
  np.testing.assert_array_equal(again["test"][1], direct["test"][1])


def test_preparation_leaves_no_temporary_folders(raw_dir, tmp_path, monkeypatch):
  temp = tmp_path / "temp"
  temp.mkdir()
  monkeypatch.setattr(tempfile, "tempdir", str(temp))
  loading.load_domain("usps", loading.DataSource("tfds", raw_dir, str(tmp_path / "tfds")))
  assert tempfile.tempdir == str(temp)
  assert list(temp.iterdir()) == []


def test_raw_source_needs_a_raw_dir(monkeypatch):
  monkeypatch.delenv(loading.RAW_DIR_ENV, raising=False)
  with pytest.raises(UserError, match="needs --raw-dir"):
    loading.load_domain("mnist", loading.DataSource("raw"))


def test_raw_dir_from_environment(raw_dir, monkeypatch):
  monkeypatch.setenv(loading.RAW_DIR_ENV, raw_dir)
  images, _ = loading.load_domain("svhn", loading.DataSource("raw"))["test"]
  assert images.shape[1:] == (32, 32, 3)


def test_unknown_domain():
  with pytest.raises(UserError, match="unknown domain 'emnist'"):
    loading.load_domain("emnist", loading.DataSource("raw", "/tmp"))


def reachable(monkeypatch):
  """Pretend every download site answers (the tests never touch the network)."""
  import socket

  class Connection:
    def close(self):
      pass

  monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: Connection())


def test_online_mnist_comes_from_the_tfds_catalog(monkeypatch, tmp_path):
  """No raw folder: MNIST is the catalog's `mnist` (download mocked)."""
  import tensorflow_datasets as tfds
  monkeypatch.delenv(loading.RAW_DIR_ENV, raising=False)
  reachable(monkeypatch)
  requested = []
  real_builder = tfds.builder
  monkeypatch.setattr(tfds, "builder",
                      lambda name, **kw: requested.append(name) or real_builder(name, **kw))
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    mnist = loading.load_domain("mnist", loading.DataSource("tfds", None, str(tmp_path)))
  assert set(requested) == {"mnist"}
  for split in ("train", "test"):
    images, labels = mnist[split]
    assert images.shape == (12, 28, 28, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < 10


@pytest.mark.parametrize("domain,write,names", [
    ("usps", "write_usps_esl", ("zip.test.gz", "zip.train.gz")),
    ("svhn", "write_svhn", ("test_32x32.mat", "train_32x32.mat")),
])
def test_online_downloads_fetch_only_the_splits_used(monkeypatch, tmp_path, domain, write, names):
  """No raw folder: USPS (ESL site) and SVHN (train and test, not the 1.3 GB `extra` split)
  are fetched by TFDS's download manager (mocked) and equal the raw reader's arrays."""
  import tensorflow_datasets as tfds
  from adda_jax.data import raw, tfds_builders
  from tests import conftest
  monkeypatch.delenv(loading.RAW_DIR_ENV, raising=False)
  reachable(monkeypatch)
  served = tmp_path / "served"
  getattr(conftest, write)(str(served))
  fetched = []

  def download(self, urls):
    fetched.extend(urls.values())
    return {split: served / url.rsplit("/", 1)[1] for split, url in urls.items()}

  monkeypatch.setattr(tfds.download.DownloadManager, "download", download)
  online = loading.load_domain(domain, loading.DataSource("tfds", None, str(tmp_path / "tfds")))
  assert sorted(fetched) == [tfds_builders.DOWNLOADS[domain][0] + name for name in names]
  direct = raw.read_domain(str(served), domain)
  for split in ("train", "test"):
    np.testing.assert_array_equal(online[split][0], direct[split][0])
    np.testing.assert_array_equal(online[split][1], direct[split][1])


def test_offline_download_fails_at_once_in_one_line(monkeypatch, tmp_path):
  import socket
  monkeypatch.delenv(loading.RAW_DIR_ENV, raising=False)

  def no_network(*args, **kwargs):
    raise socket.gaierror(-2, "Name or service not known")

  monkeypatch.setattr(socket, "create_connection", no_network)
  with pytest.raises(UserError, match=r"cannot download svhn: ufldl.stanford.edu is "
                                      r"unreachable .*pass --raw-dir DIR .*train_32x32.mat"):
    loading.load_domain("svhn", loading.DataSource("tfds", None, str(tmp_path)))


def test_concurrent_preparation_into_one_data_dir(raw_dir, tmp_path):
  """Two processes preparing the same dataset at once: one prepares under the lock, the other
  waits and reads the result; both get the raw files' arrays."""
  import os
  import subprocess
  import sys
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  script = ("import sys, numpy as np\n"
            "from adda_jax.data import loading\n"
            "d = loading.load_domain('usps', loading.DataSource('tfds', sys.argv[1], sys.argv[2]))\n"
            "print(int(d['train'][0].sum()), int(d['test'][1].sum()))\n")
  procs = [subprocess.Popen([sys.executable, "-c", script, raw_dir, str(tmp_path / "tfds")],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for _ in range(2)]
  outputs = [p.communicate(timeout=300) for p in procs]
  assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
  direct = loading.load_domain("usps", loading.DataSource("raw", raw_dir))
  expected = f"{int(direct['train'][0].sum())} {int(direct['test'][1].sum())}"
  assert [out.splitlines()[-1] for out, _ in outputs] == [expected, expected]
  assert sum("Downloading and preparing" in out for out, _ in outputs) == 1  # prepared once
