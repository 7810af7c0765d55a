"""Assembles an adaptation pair's arrays under the config's data protocol."""
from __future__ import annotations

import dataclasses

import numpy as np

from adda_jax.config import Config
from adda_jax.data import domains
from adda_jax.data.loading import DataSource
from adda_jax.data.preprocess import preprocess, subsample

Arrays = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class PairData:
  """Preprocessed float images and int labels for each role in a run."""
  source_train: Arrays
  target_train: Arrays  # Labels kept for evaluation only; adaptation never reads them.
  target_eval: Arrays


def load_pair(cfg: Config, data: DataSource) -> PairData:
  source = domains.load(cfg.source, data, cfg.class_names, cfg.image_size, cfg.channels)
  target = domains.load(cfg.target, data, cfg.class_names, cfg.image_size, cfg.channels)
  source_train = subsample(*source["train"], cfg.source_subset, cfg.subset_seed)
  target_train = subsample(*target["train"], cfg.target_subset, cfg.subset_seed)
  # The released code evaluated on the (subsampled) target training images.
  target_eval = target_train if cfg.eval_split == "train" else target["test"]

  def prep(arrays: Arrays) -> Arrays:
    images, labels = arrays
    images = preprocess(images, cfg.image_size, cfg.channels, cfg.pixel_scale)
    return images, labels.astype(np.int32)

  return PairData(prep(source_train), prep(target_train), prep(target_eval))
