"""Image augmentation inside the jitted step, per example, from the step's key.

Digits move a few pixels between datasets (USPS fills its frame, MNIST has a 4-pixel border),
so a random translation is the augmentation that keeps a digit's label and most resembles
the shift between domains. They differ in size too (MNIST's digits fit a 20-pixel box in their
28-pixel frame, USPS's fill theirs), which a random zoom covers. Additive noise makes the
student's view harder than the teacher's (mean teacher needs two different views of one image).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def translate(key: jax.Array, images: jax.Array, max_shift: int) -> jax.Array:
  """Each image [N, S, S, C] moved by its own whole-pixel offset in [-max_shift, max_shift]
  along each axis, the uncovered border filled with zeros (the digits' background)."""
  if max_shift == 0:
    return images
  size = images.shape[1]
  padded = jnp.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
  offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * max_shift + 1)

  def crop(image, offset):
    return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0),
                                 (size, size, image.shape[-1]))

  return jax.vmap(crop)(padded, offsets)


def zoom(key: jax.Array, images: jax.Array, max_scale: float) -> jax.Array:
  """Each image [N, S, S, C] scaled about its centre by its own factor, drawn log-uniformly
  from [1 / max_scale, max_scale] (as likely to shrink as to grow by a given ratio), bilinear,
  the uncovered border filled with zeros."""
  if max_scale == 1:
    return images
  size = images.shape[1]
  log_max = jnp.log(max_scale)
  scales = jnp.exp(jax.random.uniform(key, (images.shape[0],), minval=-log_max,
                                      maxval=log_max))

  def scale_one(image, scale):
    factors = jnp.stack([scale, scale])
    # scale_and_translate maps input coordinate x to x * scale + translation; this keeps the
    # centre (size / 2) where it is.
    return jax.image.scale_and_translate(image, image.shape, (0, 1), factors,
                                         size / 2 * (1 - factors), "linear")

  return jax.vmap(scale_one)(images, scales).astype(images.dtype)


def augment(key: jax.Array, images: jax.Array, max_shift: int, noise: float = 0.0,
            pixel_scale: float = 1.0, max_scale: float = 1.0) -> jax.Array:
  """A random zoom by up to `max_scale` either way, a random translation, then Gaussian noise
  of standard deviation `noise` times the pixel range, clipped back into [0, pixel_scale]."""
  shift_key, noise_key = jax.random.split(key)
  # The zoom's key is folded in, not split off, so runs without a zoom draw the very shifts
  # and noise they drew before the zoom existed.
  images = zoom(jax.random.fold_in(key, 2), images, max_scale)
  images = translate(shift_key, images, max_shift)
  if noise:
    images = images + noise * pixel_scale * jax.random.normal(noise_key, images.shape)
    images = jnp.clip(images, 0.0, pixel_scale)
  return images
