"""A run's domains, whatever they are: a built-in digits domain (mnist, usps, svhn, mnist_m),
a folder in ImageFolder layout (`adda_jax/data/folders.py`), or any TFDS dataset with "image"
and "label" features and train/test splits.

Classes are matched by name: the source's class order is the run's (`Config.class_names`),
and the target's labels are renumbered into it, so a target folder may list its classes in
another order, but both domains must hold the same classes.
"""
from __future__ import annotations

import os

import numpy as np

from adda_jax.data import folders, loading
from adda_jax.data.loading import DOMAINS, DataSource, Split
from adda_jax.errors import UserError

DIGITS = tuple(str(digit) for digit in range(10))


def kind(spec: str) -> str:
  if spec in DOMAINS:
    return "digits"
  return "folder" if folders.is_image_folder(spec) else "tfds"


def short_name(spec: str) -> str:
  """A name for run folders and results rows: a folder's base name, a TFDS name's base."""
  if kind(spec) == "folder":
    return os.path.basename(os.path.normpath(spec))
  return spec.split(":")[0].split("/")[0]


def class_names(spec: str, data: DataSource) -> tuple[str, ...]:
  """The domain's classes in its own label order, read without loading its images."""
  if kind(spec) == "digits":
    return DIGITS
  if kind(spec) == "folder":
    return folders.class_names(spec)
  return loading.tfds_class_names(spec, data.data_dir)


def matched_classes(source: str, target: str, data: DataSource) -> tuple[str, ...]:
  """The run's classes: the source's, once the target is known to hold the same ones."""
  ours, theirs = class_names(source, data), class_names(target, data)
  if set(ours) != set(theirs):
    only_source = sorted(set(ours) - set(theirs))
    only_target = sorted(set(theirs) - set(ours))
    raise UserError(f"source {source} and target {target} hold different classes (only in "
                    f"source: {_shown(only_source)}; only in target: {_shown(only_target)}); "
                    f"both domains need the same class names")
  return ours


def load(spec: str, data: DataSource, classes: tuple[str, ...], image_size: int,
         channels: int) -> dict[str, Split]:
  """Both splits, uint8 images and int64 labels numbered in `classes`' order."""
  if kind(spec) == "digits":
    splits = loading.load_domain(spec, data)
  elif kind(spec) == "folder":
    splits = folders.read_image_folder(spec, image_size, channels)
  else:
    splits = loading.load_tfds_dataset(spec, data.data_dir)
  own = class_names(spec, data)
  if set(own) != set(classes):
    raise UserError(f"{spec} now holds classes {_shown(own)}, not the run's {_shown(classes)}; "
                    f"use another --workdir (or --fresh) for this data")
  renumber = np.asarray([classes.index(name) for name in own], np.int64)
  return {split: (images, renumber[labels]) for split, (images, labels) in splits.items()}


def _shown(names) -> str:
  names = list(names)
  return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "") \
      if names else "none"
