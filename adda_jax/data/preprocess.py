"""The ADDA digits preprocessing, made explicit: size, colour and the MNIST<->USPS subsets.

Images become float32 in [0, pixel_scale] (1 by default; the released code used 255), resized
to `image_size` and converted to `channels` (1: gray by ITU-R 601 luma, as
`tf.image.rgb_to_grayscale`; 3: gray images repeated to RGB). The paper's 28x28 gray protocol
resizes USPS 16->28 and SVHN / MNIST-M 32->28 bilinearly (antialiased). Gray images are
resized before they are repeated to RGB: the three channels are then equal by construction
(resizing three copies can round differently per channel on some CPUs), at a third of the work.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

LUMA = np.array([0.2989, 0.5870, 0.1140], np.float32)
_CHUNK = 8192  # Images resized per call: bounds peak memory on the 73k-image SVHN train split.


def preprocess(images: np.ndarray, image_size: int, channels: int,
               pixel_scale: float = 1.0) -> np.ndarray:
  """uint8 [N, H, W, C] -> float32 [N, image_size, image_size, channels] in [0, pixel_scale]."""
  x = images.astype(np.float32) / 255.0
  if x.shape[-1] == 3 and channels == 1:
    x = (x @ LUMA)[..., None]
  if x.shape[1:3] != (image_size, image_size):
    x = np.concatenate([_resize(x[i:i + _CHUNK], image_size)
                        for i in range(0, len(x), _CHUNK)])
  if x.shape[-1] == 1 and channels == 3:
    x = np.repeat(x, 3, axis=-1)
  return np.clip(x, 0.0, 1.0) * np.float32(pixel_scale)


def _resize(x: np.ndarray, size: int) -> np.ndarray:
  shape = (x.shape[0], size, size, x.shape[-1])
  return np.asarray(jax.image.resize(jnp.asarray(x), shape, "bilinear", antialias=True))


def subsample(images: np.ndarray, labels: np.ndarray, count: int | None,
              seed: int) -> tuple[np.ndarray, np.ndarray]:
  """A fixed random subset of `count` examples (the paper's 2,000 MNIST / 1,800 USPS).

  The subset depends only on `seed` (config `subset_seed`), not on the run's seed, so every
  seed of a sweep trains on the same images, as in the CoGAN/ADDA protocol.
  """
  if count is None or count >= len(images):
    return images, labels
  index = np.sort(np.random.default_rng(seed).permutation(len(images))[:count])
  return images[index], labels[index]
