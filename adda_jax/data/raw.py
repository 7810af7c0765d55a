"""Readers for the standard raw distribution formats of the digit datasets.

Each reader returns `{split: (images, labels)}` with images as uint8 `[N, H, W, C]` and labels
as int64 `[N]` in 0..9, and validates what it reads: a truncated file, a wrong IDX magic number,
wrong array shapes or out-of-range labels raise `UserError` naming the file, never garbage.

These readers are used by the TFDS builders (offline preparation from `--raw-dir`) and directly
when TFDS is not installed (`--data-source raw`, e.g. on an accelerator host without TensorFlow).
"""
from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
from typing import Callable

import numpy as np

from adda_jax.errors import UserError

Split = tuple[np.ndarray, np.ndarray]

# The file names each domain's reader accepts, in order of preference, per split.
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
USPS_H5 = "usps.h5"
USPS_ESL = {"train": "zip.train.gz", "test": "zip.test.gz"}
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
MNIST_M_TAR = "mnist_m.tar.gz"
MNIST_M_DIR = "mnist_m"

EXPECTED_FILES = {
    "mnist": "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
             "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (or the same without .gz)",
    "usps": "usps.h5 (groups train/test with data [N,256] and target), "
            "or zip.train.gz and zip.test.gz (ESL format)",
    "svhn": "train_32x32.mat, test_32x32.mat",
    "mnist_m": "mnist_m.tar.gz, or the folder mnist_m/ holding mnist_m_train/, mnist_m_test/, "
               "mnist_m_train_labels.txt and mnist_m_test_labels.txt",
}


def domain_dir(raw_dir: str, domain: str) -> str:
  """Where a domain's raw files live: `RAW_DIR/<domain>/` if it exists, else `RAW_DIR` itself."""
  sub = os.path.join(raw_dir, domain)
  return sub if os.path.isdir(sub) else raw_dir


def _missing(domain: str, directory: str) -> UserError:
  return UserError(
      f"missing raw {domain} data in {directory}: expected {EXPECTED_FILES[domain]}; "
      f"pass --raw-dir (or set ADDA_RAW_DIR) to the folder holding them")


def _check(images: np.ndarray, labels: np.ndarray, source: str) -> Split:
  """Refuses arrays that would train silently on garbage: a label array that is not 1-D
  (e.g. [N, 1], which broadcasts against predictions), counts that differ, no images, empty
  images, or labels that are not whole numbers in 0-9."""
  if labels.ndim != 1:
    raise UserError(f"{source}: labels have shape {list(labels.shape)}, expected [N]; the file "
                    f"is malformed, replace it")
  if images.ndim != 4 or images.shape[0] != labels.shape[0]:
    raise UserError(f"{source}: {images.shape[0]} images of shape {images.shape[1:]} do not "
                    f"match {labels.shape[0]} labels; the file is malformed, replace it")
  if images.shape[0] == 0 or 0 in images.shape[1:]:
    raise UserError(f"{source}: holds no images (shape {list(images.shape)}); the file is "
                    f"empty or malformed, replace it")
  if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
    raise UserError(f"{source}: labels are not whole numbers; the file is malformed, replace it")
  if labels.min() < 0 or labels.max() > 9:
    raise UserError(f"{source}: labels outside 0-9 (found {labels.min()}..{labels.max()}); "
                    f"the file is malformed, replace it")
  return images, labels.astype(np.int64)


def _check_range(values: np.ndarray, low: float, high: float, source: str) -> None:
  """Pixel values must be finite and in the format's documented range: a file scaled
  differently (USPS in [0, 255], say) would otherwise be clipped into white images."""
  if not np.isfinite(values).all():
    raise UserError(f"{source}: pixel values include NaN or Inf; the file is corrupt, "
                    f"replace it")
  if values.size and (values.min() < low or values.max() > high):
    raise UserError(f"{source}: pixel values span {values.min():g}..{values.max():g}, "
                    f"expected {low:g}..{high:g}; replace the file with one in that range")


def _open_maybe_gz(path: str) -> bytes:
  try:
    if path.endswith(".gz"):
      with gzip.open(path, "rb") as f:
        return f.read()
    with open(path, "rb") as f:
      return f.read()
  except (OSError, EOFError, gzip.BadGzipFile) as e:
    raise UserError(f"cannot read {path} ({e}); the file is truncated or corrupt, replace it")


def read_idx(path: str) -> np.ndarray:
  """An IDX array (MNIST format): magic 0x0000080N with N dims of big-endian uint32 sizes."""
  data = _open_maybe_gz(path)
  if len(data) < 4:
    raise UserError(f"{path}: too short to be an IDX file; replace it")
  zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
  if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
    raise UserError(f"{path}: wrong IDX magic number 0x{data[:4].hex()} "
                    f"(expected 00000801 for labels or 00000803 for images); replace the file")
  header = 4 + 4 * ndim
  if len(data) < header:
    raise UserError(f"{path}: its IDX header is cut short ({len(data)} of {header} bytes); "
                    f"the file is truncated, replace it")
  shape = struct.unpack(f">{ndim}I", data[4:header])
  expected = int(np.prod(shape))
  if len(data) - header != expected:
    raise UserError(f"{path}: holds {len(data) - header} bytes of data where its header "
                    f"declares {expected} {shape}; the file is truncated, replace it")
  return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _first_existing(directory: str, names: tuple[str, ...]) -> str | None:
  for name in names:
    path = os.path.join(directory, name)
    if os.path.exists(path):
      return path
  return None


def read_mnist(directory: str) -> dict[str, Split]:
  out = {}
  for split, (img_name, lbl_name) in MNIST_FILES.items():
    img = _first_existing(directory, (img_name, img_name[:-3]))
    lbl = _first_existing(directory, (lbl_name, lbl_name[:-3]))
    if img is None or lbl is None:
      raise _missing("mnist", directory)
    images, labels = read_idx(img), read_idx(lbl)
    if images.ndim != 3 or labels.ndim != 1:
      raise UserError(f"{img} / {lbl}: images and labels swapped or malformed; replace them")
    out[split] = _check(images[..., None], labels, img)
  return out


def _read_usps_h5(path: str) -> dict[str, Split]:
  import h5py  # Only needed for this format.
  out = {}
  try:
    with h5py.File(path, "r") as f:
      for split in ("train", "test"):
        data = np.asarray(f[split]["data"], np.float32)
        target = np.asarray(f[split]["target"])
        if data.ndim != 2 or data.shape[1] != 256:
          raise UserError(f"{path}: {split}/data has shape {data.shape}, expected [N, 256]; "
                          f"replace the file")
        _check_range(data, 0.0, 1.0, f"{path}:{split}/data")
        out[split] = _check(_unit_to_uint8(data, 0.0, 1.0).reshape(-1, 16, 16, 1), target,
                            f"{path}:{split}")
  except (OSError, KeyError) as e:
    raise UserError(f"cannot read {path} ({e}); expected groups train/ and test/ each with "
                    f"'data' and 'target'; replace the file")
  return out


def read_usps_esl(path: str) -> Split:
  text = _open_maybe_gz(path).decode("ascii", errors="replace")
  try:
    rows = np.array([line.split() for line in text.splitlines() if line.strip()], np.float32)
  except ValueError:
    raise UserError(f"{path}: not an ESL zip file (each line: a label and 256 values); "
                    f"replace it")
  if rows.ndim != 2 or rows.shape[1] != 257:
    raise UserError(f"{path}: expected 257 values per line (a label and 16x16 pixels), "
                    f"found {rows.shape[1:] or 'ragged lines'}; replace it")
  _check_range(rows[:, 1:], -1.0, 1.0, path)
  images = _unit_to_uint8(rows[:, 1:], -1.0, 1.0).reshape(-1, 16, 16, 1)
  return _check(images, rows[:, 0], path)


def _unit_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
  """Maps [low, high] floats to uint8 0..255 (quantisation error at most 1/510)."""
  scaled = (values - low) / (high - low)
  return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def read_usps(directory: str) -> dict[str, Split]:
  h5 = os.path.join(directory, USPS_H5)
  if os.path.exists(h5):
    return _read_usps_h5(h5)
  paths = {split: _first_existing(directory, (name, name[:-3]))
           for split, name in USPS_ESL.items()}
  if None in paths.values():
    raise _missing("usps", directory)
  return {split: read_usps_esl(path) for split, path in paths.items()}


def read_svhn_mat(path: str) -> Split:
  """One SVHN split from its MATLAB file: X [32, 32, 3, N] uint8, y [N, 1] with 0 stored as 10."""
  import scipy.io  # Only needed for this format.
  try:
    mat = scipy.io.loadmat(path)
    x, y = mat["X"], np.asarray(mat["y"])
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise UserError(f"cannot read {path} ({e}); expected a MATLAB file with X [32,32,3,N] "
                    f"and y [N,1]; replace it")
  if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
    raise UserError(f"{path}: X has shape {x.shape}, expected [32, 32, 3, N]; replace it")
  if y.ndim == 2 and y.shape[1] == 1:
    y = y[:, 0]
  y = np.where(y == 10, 0, y)  # SVHN stores the digit 0 as label 10.
  return _check(np.ascontiguousarray(x.transpose(3, 0, 1, 2)).astype(np.uint8), y, path)


def read_svhn(directory: str) -> dict[str, Split]:
  paths = {split: os.path.join(directory, name) for split, name in SVHN_FILES.items()}
  if not all(os.path.exists(path) for path in paths.values()):
    raise _missing("svhn", directory)
  return {split: read_svhn_mat(path) for split, path in paths.items()}


def _decode_png(data: bytes, source: str) -> np.ndarray:
  from PIL import Image  # Only needed for this format.
  try:
    with Image.open(io.BytesIO(data)) as im:
      return np.asarray(im.convert("RGB"), np.uint8)
  except OSError as e:
    raise UserError(f"{source}: cannot decode PNG ({e}); replace the MNIST-M files")


def _mnist_m_split(read: Callable[[str], bytes | None], split: str, source: str) -> Split:
  listing = read(f"mnist_m/mnist_m_{split}_labels.txt")
  if listing is None:
    raise UserError(f"{source}: no mnist_m/mnist_m_{split}_labels.txt inside; "
                    f"expected the original MNIST-M layout")
  try:
    text = listing.decode("ascii")
  except UnicodeDecodeError:
    raise UserError(f"{source}: mnist_m_{split}_labels.txt is not ASCII text (expected lines "
                    f"'NAME.png LABEL'); replace the MNIST-M files")
  images, labels = [], []
  for line in text.splitlines():
    if not line.strip():
      continue
    try:
      name, label = line.split()
      labels.append(int(label))
    except ValueError:
      raise UserError(f"{source}: bad line {line!r} in mnist_m_{split}_labels.txt "
                      f"(expected 'NAME.png LABEL')")
    png = read(f"mnist_m/mnist_m_{split}/{name}")
    if png is None:
      raise UserError(f"{source}: mnist_m/mnist_m_{split}/{name} is listed but missing")
    images.append(_decode_png(png, f"{source}:{name}"))
  if not images or len({im.shape for im in images}) != 1:
    raise UserError(f"{source}: MNIST-M {split} images are missing or of mixed sizes")
  return _check(np.stack(images), np.asarray(labels), source)


def read_mnist_m(directory: str) -> dict[str, Split]:
  tar_path = os.path.join(directory, MNIST_M_TAR)
  if os.path.exists(tar_path):
    try:
      with tarfile.open(tar_path, "r:gz") as tar:
        members = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}

        def read(name: str) -> bytes | None:
          member = members.get(name)
          return None if member is None else tar.extractfile(member).read()

        return {split: _mnist_m_split(read, split, tar_path) for split in ("train", "test")}
    except (tarfile.TarError, EOFError, OSError) as e:
      raise UserError(f"cannot read {tar_path} ({e}); the archive is truncated or corrupt, "
                      f"replace it")
  root = directory if os.path.isdir(os.path.join(directory, MNIST_M_DIR)) else None
  if root is None:
    raise _missing("mnist_m", directory)

  def read_file(name: str) -> bytes | None:
    path = os.path.join(root, name)
    if not os.path.exists(path):
      return None
    with open(path, "rb") as f:
      return f.read()

  return {split: _mnist_m_split(read_file, split, root) for split in ("train", "test")}


READERS: dict[str, Callable[[str], dict[str, Split]]] = {
    "mnist": read_mnist,
    "usps": read_usps,
    "svhn": read_svhn,
    "mnist_m": read_mnist_m,
}


def read_domain(raw_dir: str, domain: str) -> dict[str, Split]:
  """Reads both splits of `domain` from `raw_dir` (or its `<domain>/` subfolder)."""
  if not os.path.isdir(raw_dir):
    raise UserError(f"raw data folder {raw_dir} does not exist; pass --raw-dir (or set "
                    f"ADDA_RAW_DIR) to the folder holding the {domain} files: "
                    f"{EXPECTED_FILES[domain]}")
  return READERS[domain](domain_dir(raw_dir, domain))
