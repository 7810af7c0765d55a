"""TFDS builders for the digit domains the TFDS catalog lacks, and for offline preparation.

`adda_digits/<domain>` prepares a domain into TFDS format from its standard raw files (read by
`adda_jax.data.raw`), so a machine without internet gets the same TFDS pipeline as one with it:

- `adda_digits/usps` (ESL/Kaggle USPS, 7,291 train / 2,007 test, 16x16 gray) downloads the ESL
  `zip.train.gz`/`zip.test.gz` when no raw folder is given.
- `adda_digits/svhn` (73,257 / 26,032, 32x32 RGB) downloads `train_32x32.mat` and
  `test_32x32.mat` from the SVHN site when no raw folder is given. The catalog's `svhn_cropped`
  would also fetch the 531,131-image `extra` split (about 1.3 GB) that no pair uses.
- `adda_digits/mnist_m` (59,001 / 9,001, 32x32 RGB) has no stable public URL: it is prepared from
  `mnist_m.tar.gz` or the extracted original layout (manual download).
- `adda_digits/mnist` is the offline twin of the catalog's `mnist`, with the same images and
  labels; online runs use the catalog entry.

Raw files are validated by content (magic numbers, shapes, label ranges), not by TFDS's
registered checksums: re-compressed copies of MNIST have different `.gz` bytes but equal data.
"""
from __future__ import annotations

import dataclasses

import numpy as np

import tensorflow_datasets as tfds

from adda_jax.data import raw
from adda_jax.errors import UserError

USPS_URL = "https://hastie.su.domains/ElemStatLearn/datasets/"
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
# Domains TFDS downloads without a raw folder: where from, and the reader of one split's file.
DOWNLOADS = {
    "usps": (USPS_URL, raw.USPS_ESL, raw.read_usps_esl),
    "svhn": (SVHN_URL, raw.SVHN_FILES, raw.read_svhn_mat),
}


@dataclasses.dataclass
class DigitsConfig(tfds.core.BuilderConfig):
  """One domain and its native image shape."""
  image_shape: tuple[int, int, int] = (28, 28, 1)


class AddaDigits(tfds.core.GeneratorBasedBuilder):
  """Digit domains for domain adaptation, prepared from raw files or (USPS) downloaded."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {
      "1.0.0": "MNIST, USPS (ESL), SVHN (cropped) and MNIST-M from raw files.",
      "1.1.0": "Images stored as raw uint8 bytes instead of PNG: same arrays, preparation about "
               "5x faster (PNG encoding was most of it).",
  }
  BUILDER_CONFIGS = [
      DigitsConfig(name="mnist", image_shape=(28, 28, 1), description="MNIST, from IDX files."),
      DigitsConfig(name="usps", image_shape=(16, 16, 1),
                   description="USPS as distributed with ESL (zip.train/zip.test)."),
      DigitsConfig(name="svhn", image_shape=(32, 32, 3),
                   description="SVHN cropped digits, train and test splits."),
      DigitsConfig(name="mnist_m", image_shape=(32, 32, 3), description="MNIST-M (Ganin 2015)."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = "\n".join(
      f"{domain}: {files}" for domain, files in raw.EXPECTED_FILES.items())

  def __init__(self, *, raw_dir: str | None = None, **kwargs):
    self._raw_dir = raw_dir
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            # Raw bytes, not `tfds.features.Image`: PNG-encoding every image was most of a first
            # run's preparation (MNIST: 16-17 s against 3-4 s on this project's 2-core CPU).
            # PNG took less than half the disk (MNIST and USPS: 26 against 61 MB); the time
            # mattered more. Reads give the same uint8 arrays.
            "image": tfds.features.Tensor(shape=self.builder_config.image_shape, dtype=np.uint8,
                                          encoding=tfds.features.Encoding.BYTES),
            "label": tfds.features.ClassLabel(num_classes=10),
            # Position in the raw files: loading restores this order, so subsets drawn from a
            # TFDS-prepared split equal those drawn from the raw files directly.
            "index": tfds.features.Scalar(dtype=np.int64),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    domain = self.builder_config.name
    if self._raw_dir is not None:
      splits = raw.read_domain(self._raw_dir, domain)
    elif domain in DOWNLOADS:
      site, files, read = DOWNLOADS[domain]
      paths = dl_manager.download({split: site + name for split, name in files.items()})
      splits = {split: read(str(path)) for split, path in paths.items()}
    else:
      raise UserError(f"{domain} cannot be downloaded by TFDS; pass --raw-dir (or set "
                      f"ADDA_RAW_DIR) to a folder holding {raw.EXPECTED_FILES[domain]}")
    return {split: self._generate_examples(*arrays) for split, arrays in splits.items()}

  def _generate_examples(self, images, labels):
    for index, (image, label) in enumerate(zip(images, labels)):
      yield index, {"image": image, "label": int(label), "index": index}
