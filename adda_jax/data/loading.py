"""Loads a domain's splits as numpy arrays, through TFDS or straight from the raw files.

`source="tfds"` (the default) goes through TFDS: the catalog's `mnist` when online, our
`adda_digits/<domain>` builders for USPS, SVHN (train and test only) and MNIST-M, and
`adda_digits/<domain>` for every domain when `raw_dir` is given (offline: prepared once into
`data_dir`, read from there afterwards). Preparation holds a lock in `data_dir`, so concurrent
runs prepare a dataset once and never write into each other's files. A download that cannot
reach its site fails at once, in one line that says how to run from raw files instead. `source="raw"` skips TFDS and reads the raw files directly: for machines without
TensorFlow, such as an accelerator host with only JAX.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import tempfile
import urllib.parse
from typing import Iterator

import numpy as np

from adda_jax import storage
from adda_jax.data import raw
from adda_jax.errors import UserError

DOMAINS = ("mnist", "usps", "svhn", "mnist_m")
CATALOG = {"mnist": "mnist"}
CATALOG_SITES = {"mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/"}
DEFAULT_DATA_DIR = os.path.join("~", "tensorflow_datasets")
PREPARE_LOCK = ".adda_jax_prepare.lock"
RAW_DIR_ENV = "ADDA_RAW_DIR"
_READ_CHUNK = 10_000  # Examples per batch when reading a prepared TFDS split into memory.


@dataclasses.dataclass(frozen=True)
class DataSource:
  """Where data comes from. `raw_dir` falls back to $ADDA_RAW_DIR."""
  source: str = "tfds"
  raw_dir: str | None = None
  data_dir: str | None = None

  def resolved_raw_dir(self) -> str | None:
    return self.raw_dir or os.environ.get(RAW_DIR_ENV) or None


Split = tuple[np.ndarray, np.ndarray]


def load_domain(domain: str, data: DataSource) -> dict[str, Split]:
  """Both splits of `domain` as uint8 images [N, H, W, C] and int64 labels."""
  if domain not in DOMAINS:
    raise UserError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}")
  raw_dir = data.resolved_raw_dir()
  if data.source == "raw":
    if raw_dir is None:
      raise UserError(f"--data-source raw needs --raw-dir (or ${RAW_DIR_ENV}) naming the folder "
                      f"with the {domain} files: {raw.EXPECTED_FILES[domain]}")
    return raw.read_domain(raw_dir, domain)
  if data.source != "tfds":
    raise UserError(f"unknown data source {data.source!r}; choose tfds or raw")
  return _load_tfds(domain, raw_dir, data.data_dir)


def _download_and_prepare(builder, download_config, domain: str, site: str) -> None:
  """Checks that `site` answers before TFDS tries (offline, TFDS retries each file for
  minutes and fails in pages of tracebacks), then downloads; any failure is one line."""
  offline = (f"offline, pass --raw-dir DIR (or set {RAW_DIR_ENV}) to a folder holding "
             f"{raw.EXPECTED_FILES[domain]}")
  url = urllib.parse.urlsplit(site)
  try:
    socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                             timeout=10).close()
  except OSError as e:
    raise UserError(f"cannot download {domain}: {url.hostname} is unreachable ({e}); {offline}")
  try:
    builder.download_and_prepare(download_config=download_config)
  except UserError:
    raise
  except Exception as e:  # Network, checksum or file errors from TFDS's download manager.
    reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    raise UserError(f"downloading {domain} through TFDS failed ({type(e).__name__}: {reason}); "
                    f"{offline}")


@contextlib.contextmanager
def _tidy_tfds() -> Iterator[None]:
  """Runs TFDS calls without their litter.

  - Logs: TFDS and TensorFlow log notes at every preparation and first read (a missing
    dataset_info.json in a folder being prepared; oneDNN being on) that say nothing about the
    run: keep them off the terminal. TensorFlow only decodes images here, so its oneDNN graph
    rewrites (the note's subject) do nothing for us; a user's own setting wins.
  - Temporary folders: each builder made for a dataset not yet prepared creates an empty
    temporary folder and never removes it (`DatasetInfo.initialize_from_bucket`, TFDS 4.9),
    so every first run left two in /tmp. Python's temporary folder points at one of ours
    meanwhile, removed afterwards; data is only ever prepared into the data folder.
  """
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  absl_logger = logging.getLogger("absl")
  level, saved_tempdir = absl_logger.level, tempfile.tempdir
  absl_logger.setLevel(logging.ERROR)
  try:
    with tempfile.TemporaryDirectory(prefix="adda_jax_tfds_") as scratch:
      tempfile.tempdir = scratch
      yield
  finally:
    tempfile.tempdir = saved_tempdir
    absl_logger.setLevel(level)


def _load_tfds(domain: str, raw_dir: str | None, data_dir: str | None) -> dict[str, Split]:
  with _tidy_tfds():
    return _read_tfds(domain, raw_dir, data_dir)


def _read_tfds(domain: str, raw_dir: str | None, data_dir: str | None) -> dict[str, Split]:
  try:
    import tensorflow_datasets as tfds
    from adda_jax.data import tfds_builders
  except ImportError as e:
    raise UserError(f"TFDS is not usable here ({e}); install requirements.txt, or use "
                    f"--data-source raw --raw-dir DIR to read the raw files directly")
  tfds.display_progress_bar(False)
  if raw_dir is not None and not os.path.isdir(raw_dir):
    raise UserError(f"raw data folder {raw_dir} does not exist; pass --raw-dir (or set "
                    f"{RAW_DIR_ENV}) to the folder holding {raw.EXPECTED_FILES[domain]}")
  if raw_dir is None and domain in CATALOG:
    make_builder = lambda: tfds.builder(CATALOG[domain], data_dir=data_dir)
    download_config, site = None, CATALOG_SITES[domain]
  else:
    make_builder = lambda: tfds_builders.AddaDigits(config=domain, raw_dir=raw_dir,
                                                    data_dir=data_dir)
    download_config = tfds.download.DownloadConfig(try_download_gcs=False)
    site = None if raw_dir is not None else tfds_builders.DOWNLOADS.get(domain, (None,))[0]
  def prepare(builder) -> None:
    if site is None:
      builder.download_and_prepare(download_config=download_config)
    else:
      _download_and_prepare(builder, download_config, domain, site)

  builder = _prepared_once(make_builder(), make_builder, data_dir, prepare)
  out = {}
  for split in ("train", "test"):
    batch = _read_split(tfds, builder, split)
    order = np.argsort(batch["index"]) if "index" in batch else slice(None)
    out[split] = (batch["image"][order], batch["label"][order].astype(np.int64))
  return out


def _prepared_once(builder, make_builder, data_dir: str | None, prepare):
  """`builder`, or a new `make_builder()` prepared by `prepare(builder)` if it was not. Preparation
  holds a lock in the data folder, so concurrent runs prepare a dataset once."""
  if builder.is_prepared():
    return builder
  root = os.path.expanduser(data_dir or DEFAULT_DATA_DIR)
  try:
    os.makedirs(root, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create the TFDS data folder {root} ({e.strerror}); pass a "
                    f"writable --data-dir")
  with storage.waiting_lock(os.path.join(root, PREPARE_LOCK)):
    builder = make_builder()  # Another process may have prepared it while this one waited.
    if not builder.is_prepared():
      prepare(builder)
  return builder


def _read_split(tfds, builder, split: str) -> dict[str, np.ndarray]:
  """One split's features as arrays. Read in chunks, not `batch_size=-1`: that needs the
  split size from the dataset info, which a builder's metadata may lack (TFDS's own mocks
  do)."""
  chunks = list(tfds.as_numpy(builder.as_dataset(split=split, batch_size=_READ_CHUNK)))
  return {key: np.concatenate([chunk[key] for chunk in chunks]) for key in chunks[0]}


def _tfds_builder(name: str, data_dir: str | None):
  """The TFDS catalog's builder for `name` ("cifar10", "fashion_mnist:3.0.1"), checked to
  have what a domain needs: "image" and "label" features and train/test splits."""
  try:
    import tensorflow_datasets as tfds
  except ImportError as e:
    raise UserError(f"TFDS is not usable here ({e}), so domain {name!r} cannot be read; "
                    f"install requirements.txt or give a folder (train/<class>/*.png)")
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # DatasetNotFoundError and kin: the name is the user's typo.
    raise UserError(f"domain {name!r} is neither a built-in domain ({', '.join(DOMAINS)}), a "
                    f"folder, nor a TFDS dataset ({type(e).__name__})")
  features = builder.info.features
  if "image" not in features or "label" not in features:
    raise UserError(f"TFDS dataset {name} has features {', '.join(features)}; a domain needs "
                    f"'image' and 'label'")
  if not hasattr(features["label"], "names"):
    raise UserError(f"TFDS dataset {name}'s 'label' is not a class label")
  return tfds, builder


def tfds_class_names(name: str, data_dir: str | None) -> tuple[str, ...]:
  with _tidy_tfds():
    _, builder = _tfds_builder(name, data_dir)
    return tuple(builder.info.features["label"].names)


def load_tfds_dataset(name: str, data_dir: str | None) -> dict[str, Split]:
  """A TFDS catalog dataset as a domain: downloaded and prepared once into `data_dir`."""
  def prepare(builder) -> None:
    try:
      builder.download_and_prepare()
    except Exception as e:  # Network, checksum or file errors from TFDS's download manager.
      reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
      raise UserError(f"preparing TFDS dataset {name} failed ({type(e).__name__}: "
                      f"{reason}); offline, export it as a folder (train/<class>/*.png)")

  with _tidy_tfds():
    tfds, builder = _tfds_builder(name, data_dir)
    builder = _prepared_once(builder, lambda: _tfds_builder(name, data_dir)[1], data_dir,
                             prepare)
    shape = builder.info.features["image"].shape
    if None in shape[:2]:
      raise UserError(f"TFDS dataset {name} has images of varying size {shape}; export it "
                      f"as a folder (train/<class>/*.png), which is resized image by image")
    out = {}
    for split in ("train", "test"):
      try:
        batch = _read_split(tfds, builder, split)
      except (ValueError, KeyError) as e:
        raise UserError(f"TFDS dataset {name} has no {split!r} split ({type(e).__name__}); "
                        f"a domain needs train and test splits")
      out[split] = (batch["image"], batch["label"].astype(np.int64))
    return out
