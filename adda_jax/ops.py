"""Layer primitives written for speed on the backends we run on.

`max_pool_2x2` is a reshape + max rather than `lax.reduce_window` (flax `nn.max_pool`): the
same values and gradients (up to ties), but XLA differentiates it with a cheap
compare-and-select instead of `select_and_scatter`, which is several times slower on CPU.

`conv2d` is XLA's convolution, except for its input gradient on CPU. XLA:CPU computes a VALID
convolution's input gradient as a full convolution over the output gradient padded by the
kernel size, which for LeNet's conv2 costs three times its forward pass and was a step's
slowest piece: 7.7 ms, against 2.3 ms for the forward pass and 3.6 ms for the weight gradient
(batch 128, timed alone on this project's 2-core CPU). `_conv_input_grad_by_matmul` instead
multiplies the output gradient by the kernel once (a plain matmul, the forward pass's cost)
and adds the kernel-sized blocks back into place: 3.2 ms. Matmul forms of the forward pass and
the weight gradient were measured too and were several times slower than XLA's, so those stay
XLA's. Accelerators keep XLA's gradients throughout (cuDNN's are good).

A stride-2 convolution (the DTN encoder's) keeps XLA's forward pass and weight gradient, but
XLA:CPU computes its input gradient as a convolution over the output gradient dilated by 2,
off its fast path: at DTN's conv3 (batch 128) that took 434 ms against 19 ms for the forward
pass. The same convolution on 2x2 pixel blocks is a VALID stride-1 one (`conv2d`, with the
matmul input gradient above), whose input gradient took 47 ms; a DTN + C gradient step went
from 579 to 189 ms. (The whole convolution on blocks does 1.44x the multiplications of a 5x5
kernel and measured slower than XLA's forward pass and weight gradient, so those stay XLA's.)

`conv2d_max_pool_2x2` is a convolution + bias followed by the 2x2 pool. On an image (one to
three channels: LeNet's conv1) XLA:CPU's convolution is slow for its work: a 25-long,
one-channel dot product per output. The same convolution on 2x2 blocks of pixels ("space to
depth": 4x the input channels, a 3x3 kernel, 4x the output channels, one per position in an
output block) does 1.4x the multiplications at shapes XLA handles well, and the pool becomes a
max over each output block's four channel groups. Timed alone at batch 128 with the training
calls' options: conv1 + pool forward 3.0 -> 1.3 ms, forward + weight gradient 6.0 -> 3.4 ms
(RGB 32x32: 12.6 -> 7.2 ms); for conv2 (20 input channels) it was slower (forward 2.5 ->
3.2 ms), so conv2 keeps the plain form. It is used where the op is differentiated (training);
evaluated alone, the plain form runs, which the evaluation calls' default XLA:CPU options run
faster (6.2 against 10.8 ms per evaluation batch of 128).

`conv_transpose` (CoGAN's generators) keeps XLA's forward pass and input gradient, but on CPU
takes its kernel gradient as one matmul: XLA:CPU computes it as a convolution over the input
dilated by the stride, far off its fast path. At CoGAN's widths (batch 64, timed alone) the
three stride-2 layers' kernel gradients took 3.1, 7.3 and 12.1 s, against 0.10, 0.09 and
0.13 s as the matmul.

`matmul_convolutions()` is for stacks of seeds trained as one vmapped program: vmapped over
per-seed kernels, a convolution becomes a grouped convolution, which backends run far below
their speed on one large convolution. Inside the block, VALID stride-1 convolutions are
written as the kernel-sized shifted slices of their input side by side times the kernel as a
matrix (`matmul_conv2d`), which vmapping turns into one batched matrix product; stride-2 ones
take the pixel-block form, and so the same.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


_MATMUL_CONVOLUTIONS = contextvars.ContextVar("matmul_convolutions", default=False)


@contextlib.contextmanager
def matmul_convolutions() -> Iterator[None]:
  """Functions traced inside this block write their VALID stride-1 convolutions (with their
  pools) as `matmul_conv2d` (module docstring); read at trace time, so a jitted function
  keeps the form it was traced with."""
  token = _MATMUL_CONVOLUTIONS.set(True)
  try:
    yield
  finally:
    _MATMUL_CONVOLUTIONS.reset(token)


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1,
           padding: str = "VALID") -> jax.Array:
  """2-D convolution, x [N, H, W, Cin], kernel [kh, kw, Cin, Cout], with XLA's values.

  On CPU a VALID stride-1 convolution's input gradient is the matmul form and a stride-2
  one's is taken on pixel blocks; inside `matmul_convolutions()` the whole convolution is a
  matmul (module docstring)."""
  if stride == 1 and padding == "VALID":
    if _MATMUL_CONVOLUTIONS.get():
      return matmul_conv2d(x, kernel)
    if jax.default_backend() == "cpu":
      return _conv_valid(x, kernel)
  if stride == 2 and padding in ("SAME", "VALID"):
    if _MATMUL_CONVOLUTIONS.get():
      return _stride2_conv_on_blocks(x, kernel, padding)
    if jax.default_backend() == "cpu":
      return _stride2_conv(x, kernel, padding)
  return xla_conv2d(x, kernel, stride, padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _stride2_conv(x: jax.Array, kernel: jax.Array, padding: str) -> jax.Array:
  return xla_conv2d(x, kernel, 2, padding)


def _stride2_conv_forward(x, kernel, padding):
  return xla_conv2d(x, kernel, 2, padding), (x, kernel)


def _stride2_conv_backward(padding, residuals, grad):
  x, kernel = residuals
  _, kernel_vjp = jax.vjp(lambda k: xla_conv2d(x, k, 2, padding), kernel)
  _, input_vjp = jax.vjp(lambda x: _stride2_conv_on_blocks(x, kernel, padding), x)
  return input_vjp(grad)[0], kernel_vjp(grad)[0]


_stride2_conv.defvjp(_stride2_conv_forward, _stride2_conv_backward)


def _stride2_conv_on_blocks(x: jax.Array, kernel: jax.Array, padding: str) -> jax.Array:
  """A stride-2 convolution as a VALID stride-1 one (`conv2d`) on 2x2 pixel blocks.

  Output pixel o reads padded input pixel 2o + i with tap i, which is position p of block
  o + u where 2u + p = i: so on blocks (4x the channels) the kernel has ceil(k / 2) taps a
  side, tap 2u + p at block offset u and position p (zero past the kernel's end). The padding
  is XLA's ("SAME": the output side is ceil(side / 2), the extra row below), plus zeros up to
  whole blocks, which only ever meet zero taps or add zeros."""
  n, h, w, c = x.shape
  kh, kw, _, cout = kernel.shape
  pads, blocks = [], []
  for side, k in ((h, kh), (w, kw)):
    out = -(-side // 2) if padding == "SAME" else (side - k) // 2 + 1
    before = max(2 * (out - 1) + k - side, 0) // 2 if padding == "SAME" else 0
    count = out + (k + 1) // 2 - 1  # blocks the outputs read
    pads.append((before, max(2 * count - side - before, 0)))
    blocks.append(count)
  x = jnp.pad(x, ((0, 0), *pads, (0, 0)))[:, :2 * blocks[0], :2 * blocks[1]]
  x = x.reshape(n, blocks[0], 2, blocks[1], 2, c).transpose(0, 1, 3, 2, 4, 5)
  mh, mw = (kh + 1) // 2, (kw + 1) // 2
  taps = jnp.pad(kernel, ((0, 2 * mh - kh), (0, 2 * mw - kw), (0, 0), (0, 0)))
  taps = taps.reshape(mh, 2, mw, 2, c, cout).transpose(0, 2, 1, 3, 4, 5)
  return conv2d(x.reshape(n, *blocks, 4 * c), taps.reshape(mh, mw, 4 * c, cout))


def matmul_conv2d(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """A VALID stride-1 convolution as the kh * kw shifted slices of x side by side (channels
  last) times the kernel as a [kh * kw * Cin, Cout] matrix; autodiff gives matmuls and the
  slices' transposes (pads and adds), so nothing in it is a convolution."""
  kh, kw, cin, cout = kernel.shape
  ho, wo = x.shape[1] - kh + 1, x.shape[2] - kw + 1
  patches = jnp.concatenate([x[:, i:i + ho, j:j + wo, :] for i in range(kh)
                             for j in range(kw)], axis=-1)
  return patches @ kernel.reshape(kh * kw * cin, cout)


def xla_conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1,
               padding: str = "VALID") -> jax.Array:
  """XLA's convolution and XLA's gradients (NHWC activations, HWIO kernel)."""
  return lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


@jax.custom_vjp
def _conv_valid(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return xla_conv2d(x, kernel)


def _conv_valid_forward(x, kernel):
  return xla_conv2d(x, kernel), (x, kernel)


def _conv_valid_backward(residuals, grad):
  x, kernel = residuals
  _, kernel_vjp = jax.vjp(lambda k: xla_conv2d(x, k), kernel)
  # Unused input gradients (conv1's, whose input is the images) are dropped by XLA.
  return _conv_input_grad_by_matmul(grad, kernel), kernel_vjp(grad)[0]


_conv_valid.defvjp(_conv_valid_forward, _conv_valid_backward)


def _conv_input_grad_by_matmul(grad: jax.Array, kernel: jax.Array) -> jax.Array:
  """d(VALID stride-1 conv)/d(input) applied to grad [N, Ho, Wo, Cout]: [N, H, W, Cin].

  Input pixel (h + i, w + j) received kernel[i, j] times output (h, w), so its gradient is
  the sum over (i, j) of grad[h, w] @ kernel[i, j].T: one matmul gives every (i, j) term,
  and padding each back to its offset adds them up (a row at a time, which measured faster
  than all kh * kw blocks at once)."""
  kh, kw = kernel.shape[:2]
  blocks = jnp.einsum("nhwo,ijco->nhwijc", grad, kernel)
  total = 0
  for i in range(kh):
    row = sum(jnp.pad(blocks[:, :, :, i, j], ((0, 0), (0, 0), (j, kw - 1 - j), (0, 0)))
              for j in range(kw))
    total = total + jnp.pad(row, ((0, 0), (i, kh - 1 - i), (0, 0), (0, 0)))
  return total


def conv_transpose(x: jax.Array, kernel: jax.Array, stride: int,
                   padding: tuple[tuple[int, int], tuple[int, int]]) -> jax.Array:
  """`lax.conv_transpose(x, kernel, (stride, stride), padding)` (NHWC, HWIO, the kernel not
  flipped: flax's `ConvTranspose`), with its kernel gradient as a matmul on CPU (module
  docstring)."""
  if jax.default_backend() == "cpu":
    return _conv_transpose_matmul_kernel_grad(x, kernel, stride, padding)
  return xla_conv_transpose(x, kernel, stride, padding)


def xla_conv_transpose(x: jax.Array, kernel: jax.Array, stride: int,
                       padding: tuple[tuple[int, int], tuple[int, int]]) -> jax.Array:
  return lax.conv_transpose(x, kernel, (stride, stride), padding,
                            dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_transpose_matmul_kernel_grad(x, kernel, stride, padding):
  return xla_conv_transpose(x, kernel, stride, padding)


def _conv_transpose_forward(x, kernel, stride, padding):
  return xla_conv_transpose(x, kernel, stride, padding), (x, kernel)


def _conv_transpose_backward(stride, padding, residuals, grad):
  x, kernel = residuals
  _, input_vjp = jax.vjp(lambda x: xla_conv_transpose(x, kernel, stride, padding), x)
  return input_vjp(grad)[0], _conv_transpose_kernel_grad(x, grad, kernel.shape, stride,
                                                         padding)


_conv_transpose_matmul_kernel_grad.defvjp(_conv_transpose_forward, _conv_transpose_backward)


def _conv_transpose_kernel_grad(x: jax.Array, grad: jax.Array, kernel_shape, stride: int,
                                padding) -> jax.Array:
  """d(conv_transpose)/d(kernel) applied to grad [N, Ho, Wo, Cout]: [kh, kw, Cin, Cout].

  The transposed convolution reads input pixel q at position before + stride * q of its
  dilated, padded input, so output pixel o met it through tap i where o = before +
  stride * q - i. Tap i's gradient is therefore x against the output gradient sampled at
  those o (a strided slice, zero outside the output): every tap's slice side by side, one
  matmul over the batch and pixels gives all taps at once."""
  kh, kw, cin, cout = kernel_shape
  n, h, w, _ = x.shape
  pads, starts = [], []
  for (before, _), side, out, k in zip(padding, (h, w), grad.shape[1:3], (kh, kw)):
    low = max(0, k - 1 - before)
    pads.append((low, max(0, before + stride * (side - 1) - (out - 1))))
    starts.append(before + low)
  padded = jnp.pad(grad, ((0, 0), *pads, (0, 0)))
  rows, cols = stride * (h - 1) + 1, stride * (w - 1) + 1
  taps = jnp.stack([padded[:, starts[0] - i:starts[0] - i + rows:stride,
                           starts[1] - j:starts[1] - j + cols:stride]
                    for i in range(kh) for j in range(kw)], axis=3)
  return jnp.einsum("nhwc,nhwtd->tcd", x, taps).reshape(kh, kw, cin, cout)


# Inputs with at most this many channels (images) take the space-to-depth form on CPU.
SPACE_TO_DEPTH_CHANNELS = 3


def conv2d_max_pool_2x2(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
  """max_pool_2x2(conv2d(x, kernel) + bias) for a VALID stride-1 convolution: same values; on
  CPU, where it is differentiated, an image with even sides through an odd-sized kernel takes
  the space-to-depth form (not inside `matmul_convolutions()`, where conv2d's form is)."""
  _, h, w, channels = x.shape
  kh, kw = kernel.shape[:2]
  if (jax.default_backend() == "cpu" and not _MATMUL_CONVOLUTIONS.get()
      and channels <= SPACE_TO_DEPTH_CHANNELS
      and h % 2 == 0 and w % 2 == 0 and kh % 2 == 1 and kw % 2 == 1):
    return _conv_max_pool_trained_on_blocks(x, kernel, bias)
  return plain_conv2d_max_pool_2x2(x, kernel, bias)


def plain_conv2d_max_pool_2x2(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
  """The same, as the convolution, the bias and the pool one after another."""
  return max_pool_2x2(conv2d(x, kernel) + bias)


@jax.custom_vjp
def _conv_max_pool_trained_on_blocks(x: jax.Array, kernel: jax.Array,
                                     bias: jax.Array) -> jax.Array:
  # Not differentiated (evaluation, features computed once): the plain form (module
  # docstring); differentiated, the rule below runs the form on pixel blocks.
  return plain_conv2d_max_pool_2x2(x, kernel, bias)


def _conv_max_pool_on_blocks(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
  """The convolution on 2x2 pixel blocks (`_block_kernel`), then the max over each output
  block's four positions, then the bias (max(y + b) = max(y) + b): x [N, H, W, C] ->
  [N, (H - kh + 1) / 2, (W - kw + 1) / 2, Cout]."""
  n, h, w, c = x.shape
  blocks = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  y = xla_conv2d(blocks.reshape(n, h // 2, w // 2, 4 * c), _block_kernel(kernel))
  return y.reshape(*y.shape[:3], 4, kernel.shape[3]).max(axis=3) + bias


_conv_max_pool_trained_on_blocks.defvjp(
    lambda x, kernel, bias: jax.vjp(_conv_max_pool_on_blocks, x, kernel, bias),
    lambda vjp, grad: vjp(grad))


def _block_taps(size: int) -> np.ndarray:
  """[size // 2 + 1, 2, 2] indices into the kernel (padded by one in front): block offset u,
  input position p, output position a. Output pixel 2I + a reads input pixel 2I + a + i with
  kernel tap i, which lies in block I + u at position p where 2u + p = a + i; so block offset
  u at position p carries tap 2u + p - a, and index 0 (tap -1) or one past the kernel is zero."""
  u, p, a = np.ogrid[:size // 2 + 1, :2, :2]
  return 2 * u + p - a + 1


def _block_kernel(kernel: jax.Array) -> jax.Array:
  """kernel [kh, kw, C, Cout] (odd sides) as the kernel of the same convolution on 2x2
  blocks: [kh // 2 + 1, kw // 2 + 1, 4 C, 4 Cout], input channel (p, q, c) for pixel (p, q)
  of an input block, output channel (a, b, o) for pixel (a, b) of an output block."""
  kh, kw, c, cout = kernel.shape
  rows = _block_taps(kh)[:, None, :, None, :, None]  # [u, 1, p, 1, a, 1]
  cols = _block_taps(kw)[None, :, None, :, None, :]  # [1, v, 1, q, 1, b]
  padded = jnp.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))
  taps = padded[rows, cols]  # [u, v, p, q, a, b, C, Cout]
  return taps.transpose(0, 1, 2, 3, 6, 4, 5, 7).reshape(*taps.shape[:2], 4 * c, 4 * cout)


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max-pool, stride 2, on NHWC with even H and W."""
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
