"""The digits preprocessing: size, colour conversion, range and fixed subsets."""
import chex
import numpy as np

from adda_jax.data.preprocess import preprocess, subsample


def test_usps_16_to_28_gray():
  x = preprocess(np.full((3, 16, 16, 1), 255, np.uint8), 28, 1)
  chex.assert_shape(x, (3, 28, 28, 1))
  assert x.dtype == np.float32
  np.testing.assert_allclose(x, 1.0, atol=1e-5)


def test_rgb_to_gray_uses_luma_weights():
  pure_green = np.zeros((1, 28, 28, 3), np.uint8)
  pure_green[..., 1] = 255
  np.testing.assert_allclose(preprocess(pure_green, 28, 1), 0.587, atol=1e-6)


def test_gray_to_rgb32_repeats_channels():
  """Resized once, then repeated: the channels are equal by construction on every CPU."""
  gray = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1), np.uint8)
  x = preprocess(gray, 32, 3)
  chex.assert_shape(x, (2, 32, 32, 3))
  np.testing.assert_array_equal(x[..., 0], x[..., 2])
  np.testing.assert_array_equal(x[..., :1], preprocess(gray, 32, 1))
  assert 0.0 <= x.min() and x.max() <= 1.0


def test_pixel_scale_stretches_the_range_and_nothing_else():
  images = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 1), np.uint8)
  unit = preprocess(images, 32, 1)
  code = preprocess(images, 32, 1, pixel_scale=255.0)
  assert code.dtype == np.float32 and code.max() > 1.0
  np.testing.assert_allclose(code, 255.0 * unit, rtol=1e-6)
  np.testing.assert_allclose(preprocess(np.full((1, 28, 28, 1), 255, np.uint8), 28, 1, 255.0),
                             255.0)


def test_subsample_is_fixed_by_seed_and_sized():
  images, labels = np.arange(100)[:, None], np.arange(100)
  a = subsample(images, labels, 20, seed=0)
  b = subsample(images, labels, 20, seed=0)
  c = subsample(images, labels, 20, seed=1)
  np.testing.assert_array_equal(a[1], b[1])
  assert len(a[1]) == 20 and len(set(a[1])) == 20
  assert not np.array_equal(a[1], c[1])
  np.testing.assert_array_equal(a[0][:, 0], a[1])  # images and labels stay paired
  assert subsample(images, labels, None, 0)[1] is labels
