"""Assembles an adaptation pair's arrays under the config's data protocol."""
from __future__ import annotations

import dataclasses

import numpy as np

from adda_jax.config import Config
from adda_jax.data import domains
from adda_jax.data.loading import DataSource
from adda_jax.data.preprocess import preprocess, subsample
from adda_jax.errors import UserError

Arrays = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class PairData:
  """Preprocessed float images and int labels for each role in a run."""
  source_train: Arrays
  target_train: Arrays  # Labels kept for evaluation only; adaptation never reads them.
  target_eval: Arrays
  source_val: Arrays | None = None  # Held out of source_train (config `source_val_size`).


def load_pair(cfg: Config, data: DataSource) -> PairData:
  source = domains.load(cfg.source, data, cfg.class_names, cfg.image_size, cfg.channels)
  target = domains.load(cfg.target, data, cfg.class_names, cfg.image_size, cfg.channels)
  source_train = subsample(*source["train"], cfg.source_subset, cfg.subset_seed)
  source_train, source_val = hold_out(*source_train, cfg.source_val_size, cfg.subset_seed)
  target_train = subsample(*target["train"], cfg.target_subset, cfg.subset_seed)
  # The released code evaluated on the (subsampled) target training images.
  target_eval = target_train if cfg.eval_split == "train" else target["test"]

  def prep(arrays: Arrays) -> Arrays:
    images, labels = arrays
    images = preprocess(images, cfg.image_size, cfg.channels, cfg.pixel_scale)
    return images, labels.astype(np.int32)

  return PairData(prep(source_train), prep(target_train), prep(target_eval),
                  None if source_val is None else prep(source_val))


def hold_out(images: np.ndarray, labels: np.ndarray, count: int, seed: int
             ) -> tuple[Arrays, Arrays | None]:
  """(the rest, `count` held-out examples): a fixed random draw that depends only on `seed`,
  so every seed of a sweep holds out the same images and none of them ever trains."""
  if not count:
    return (images, labels), None
  if count >= len(images):
    raise UserError(f"--source-val-size {count} leaves no source image to train on (the "
                    f"source training set has {len(images)}); use fewer")
  held = np.zeros(len(images), bool)
  held[np.random.default_rng([seed, 1]).permutation(len(images))[:count]] = True
  return (images[~held], labels[~held]), (images[held], labels[held])
