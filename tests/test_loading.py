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
