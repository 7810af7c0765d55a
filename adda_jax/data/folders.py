"""Your own domain as a folder of images, ImageFolder layout:

    DOMAIN/train/<class>/*.png|jpg|...     DOMAIN/test/<class>/*.png|jpg|...

Class names are the subfolder names; both splits must hold the same classes. Each image is
converted to gray or RGB and resized to the run's input side here (folders may mix sizes);
anything that cannot work (a split or class folder missing or empty, an unreadable image) is
one line naming the folder or file.
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from adda_jax.errors import UserError

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")


def is_image_folder(spec: str) -> bool:
  """A domain given as a path (anything with a separator, or an existing folder)."""
  return os.sep in spec or "/" in spec or os.path.isdir(spec)


def class_names(root: str) -> tuple[str, ...]:
  """The class subfolders of ROOT/train, sorted; checks the layout without reading images."""
  if not os.path.isdir(root):
    raise UserError(f"domain folder {root} does not exist; give a folder with train/<class>/ "
                    f"and test/<class>/ image folders, or a TFDS dataset name")
  names = {}
  for split in SPLITS:
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
      raise UserError(f"{folder} is missing: a domain folder needs train/<class>/*.png and "
                      f"test/<class>/*.png (ImageFolder layout)")
    names[split] = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    if not names[split]:
      raise UserError(f"{folder} has no class folders: put each class's images in "
                      f"{folder}/<class>/")
  if names["train"] != names["test"]:
    only_train = sorted(set(names["train"]) - set(names["test"]))
    only_test = sorted(set(names["test"]) - set(names["train"]))
    raise UserError(f"{root}: train and test hold different classes (only in train: "
                    f"{only_train or 'none'}; only in test: {only_test or 'none'})")
  return tuple(names["train"])


def read_image_folder(root: str, image_size: int, channels: int
                      ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Both splits as uint8 [N, image_size, image_size, channels] and int64 labels, the label
  being the class's index in `class_names(root)`."""
  classes = class_names(root)
  mode = "L" if channels == 1 else "RGB"
  out = {}
  for split in SPLITS:
    images, labels = [], []
    for label, name in enumerate(classes):
      folder = os.path.join(root, split, name)
      files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES))
      if not files:
        raise UserError(f"class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
      for file in files:
        images.append(_read(os.path.join(folder, file), mode, image_size))
        labels.append(label)
    array = np.stack(images)
    out[split] = (array if channels == 3 else array[..., None], np.asarray(labels, np.int64))
  return out


def _read(path: str, mode: str, size: int) -> np.ndarray:
  try:
    with Image.open(path) as image:
      image = image.convert(mode)
      if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)  # Antialiased.
      return np.asarray(image, np.uint8)
  except (OSError, UnidentifiedImageError, ValueError) as e:
    raise UserError(f"cannot read image {path} ({type(e).__name__}: {e}); remove or replace it")
