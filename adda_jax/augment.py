"""Image augmentation inside the jitted step, per example, from the step's key.

Digits move a few pixels between datasets (USPS fills its frame, MNIST has a 4-pixel border),
so a random translation is the augmentation that keeps a digit's label and most resembles
the shift between domains; additive noise makes the student's view harder than the teacher's
(mean teacher needs two different views of one image).
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


def augment(key: jax.Array, images: jax.Array, max_shift: int, noise: float = 0.0,
            pixel_scale: float = 1.0) -> jax.Array:
  """A random translation, then Gaussian noise of standard deviation `noise` times the pixel
  range, clipped back into [0, pixel_scale]."""
  shift_key, noise_key = jax.random.split(key)
  images = translate(shift_key, images, max_shift)
  if noise:
    images = images + noise * pixel_scale * jax.random.normal(noise_key, images.shape)
    images = jnp.clip(images, 0.0, pixel_scale)
  return images
