"""The TFDS path (offline preparation from raw files) against direct raw reading."""
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


def test_online_catalog_domains_come_from_the_tfds_catalog(monkeypatch, tmp_path):
  """No raw folder: MNIST and SVHN are the catalog's `mnist` / `svhn_cropped` (download mocked)."""
  import tensorflow_datasets as tfds
  monkeypatch.delenv(loading.RAW_DIR_ENV, raising=False)
  requested = []
  real_builder = tfds.builder
  monkeypatch.setattr(tfds, "builder",
                      lambda name, **kw: requested.append(name) or real_builder(name, **kw))
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    svhn = loading.load_domain("svhn", loading.DataSource("tfds", None, str(tmp_path)))
    mnist = loading.load_domain("mnist", loading.DataSource("tfds", None, str(tmp_path)))
  assert requested == ["svhn_cropped", "mnist"]
  for arrays, shape in ((svhn, (32, 32, 3)), (mnist, (28, 28, 1))):
    for split in ("train", "test"):
      images, labels = arrays[split]
      assert images.shape == (12, *shape) and images.dtype == np.uint8
      assert labels.dtype == np.int64 and labels.min() >= 0 and labels.max() < 10


def test_online_usps_downloads_the_esl_files(monkeypatch, tmp_path):
  """No raw folder: USPS is fetched from the ESL site by TFDS's download manager (mocked)."""
  import tensorflow_datasets as tfds
  from adda_jax.data import raw, tfds_builders
  from tests.conftest import write_usps_esl
  monkeypatch.delenv(loading.RAW_DIR_ENV, raising=False)
  served = tmp_path / "served"
  write_usps_esl(str(served))
  fetched = []

  def download(self, urls):
    fetched.extend(urls.values())
    return {split: served / url.rsplit("/", 1)[1] for split, url in urls.items()}

  monkeypatch.setattr(tfds.download.DownloadManager, "download", download)
  online = loading.load_domain("usps", loading.DataSource("tfds", None, str(tmp_path / "tfds")))
  assert sorted(fetched) == [tfds_builders.USPS_URL + name for name in ("zip.test.gz",
                                                                          "zip.train.gz")]
  direct = raw.read_domain(str(served), "usps")
  for split in ("train", "test"):
    np.testing.assert_array_equal(online[split][0], direct[split][0])
    np.testing.assert_array_equal(online[split][1], direct[split][1])
