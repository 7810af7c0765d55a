"""Loads a domain's splits as numpy arrays, through TFDS or straight from the raw files.

`source="tfds"` (the default) goes through TFDS: the catalog's `mnist` / `svhn_cropped` when
online, our `adda_digits/<domain>` builders for USPS and MNIST-M, and `adda_digits/<domain>` for
every domain when `raw_dir` is given (offline: prepared once into `data_dir`, read from there
afterwards). `source="raw"` skips TFDS and reads the raw files directly: for machines without
TensorFlow, such as an accelerator host with only JAX.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from adda_jax.data import raw
from adda_jax.errors import UserError

DOMAINS = ("mnist", "usps", "svhn", "mnist_m")
CATALOG = {"mnist": "mnist", "svhn": "svhn_cropped"}
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


def _load_tfds(domain: str, raw_dir: str | None, data_dir: str | None) -> dict[str, Split]:
  try:
    import tensorflow_datasets as tfds
    from adda_jax.data import tfds_builders
  except ImportError as e:
    raise UserError(f"TFDS is not usable here ({e}); install requirements.txt, or use "
                    f"--data-source raw --raw-dir DIR to read the raw files directly")
  tfds.display_progress_bar(False)
  if raw_dir is None and domain in CATALOG:
    builder = tfds.builder(CATALOG[domain], data_dir=data_dir)
    download_config = None
  else:
    if raw_dir is not None and not os.path.isdir(raw_dir):
      raise UserError(f"raw data folder {raw_dir} does not exist; pass --raw-dir (or set "
                      f"{RAW_DIR_ENV}) to the folder holding {raw.EXPECTED_FILES[domain]}")
    builder = tfds_builders.AddaDigits(config=domain, raw_dir=raw_dir, data_dir=data_dir)
    download_config = tfds.download.DownloadConfig(try_download_gcs=False)
  builder.download_and_prepare(download_config=download_config)
  out = {}
  for split in ("train", "test"):
    # Read in chunks, not `batch_size=-1`: that needs the split size from the dataset info,
    # which a builder's metadata may lack (TFDS's own mocks do).
    chunks = list(tfds.as_numpy(builder.as_dataset(split=split, batch_size=_READ_CHUNK)))
    batch = {key: np.concatenate([chunk[key] for chunk in chunks]) for key in chunks[0]}
    order = np.argsort(batch["index"]) if "index" in batch else slice(None)
    out[split] = (batch["image"][order], batch["label"][order].astype(np.int64))
  return out
