"""Shared fixtures: tiny, generated copies of every raw format (tests never read ../shared)."""
from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import tarfile
import tempfile

import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

SIZES = {"train": 96, "test": 48}

# The tests compile the same small programs many times over (every run builds its own jitted
# steps, and CLI tests start new processes): JAX's persistent compilation cache, one folder
# per test session shared by its xdist workers and their subprocesses, compiles each once.
# A cached executable is the one the compiler would build again, so no result changes.
# The folder goes when the session ends (`pytest_sessionfinish`), unless the caller named one.
_SESSION = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ  # xdist workers inherit it: False
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"adda_jax_tests_xla_{_SESSION}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# xdist runs one worker per core, so each gets one OpenMP thread (scikit-learn's t-SNE in the
# reports): with OpenMP's default of one per core, each waits on threads that the other
# worker holds off the cores (a report's t-SNE beside a training run: 49.1 s on two threads,
# 11.2 s on one; docs/speed.md).
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_sessionfinish(session) -> None:
  """Removes the session's compilation cache (about 25 MB), once every worker has finished
  with it: each test session would otherwise leave one more folder in the temp directory."""
  if _OWN_CACHE and not hasattr(session.config, "workerinput"):
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


def digit_images(labels: np.ndarray, size: int, channels: int, seed: int) -> np.ndarray:
  """uint8 images whose bright bar position encodes the label, over noise: learnable."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 60, (len(labels), size, size, channels)).astype(np.uint8)
  for image, label in zip(images, labels):
    row = 1 + int(label) * (size - 3) // 10
    image[row:row + 2, 2:-2, :] = 250
  return images


def labels_for(split: str, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 10, SIZES[split])


def write_idx(path: str, array: np.ndarray) -> None:
  header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def write_mnist(directory: str) -> None:
  os.makedirs(directory, exist_ok=True)
  for split, prefix in (("train", "train"), ("test", "t10k")):
    labels = labels_for(split, 1 if split == "train" else 2)
    write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"),
              digit_images(labels, 28, 1, 3)[..., 0])
    write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), labels)


def write_usps_h5(directory: str) -> None:
  os.makedirs(directory, exist_ok=True)
  with h5py.File(os.path.join(directory, "usps.h5"), "w") as f:
    for split in ("train", "test"):
      labels = labels_for(split, 4 if split == "train" else 5)
      data = digit_images(labels, 16, 1, 6).reshape(len(labels), 256) / 255.0
      f.create_dataset(f"{split}/data", data=data.astype(np.float32))
      f.create_dataset(f"{split}/target", data=labels.astype(np.int32))


def write_usps_esl(directory: str) -> None:
  os.makedirs(directory, exist_ok=True)
  for split in ("train", "test"):
    labels = labels_for(split, 4 if split == "train" else 5)
    pixels = digit_images(labels, 16, 1, 6).reshape(len(labels), 256) / 255.0 * 2 - 1
    lines = [" ".join([f"{label:.4f}"] + [f"{v:.4f}" for v in row])
             for label, row in zip(labels, pixels)]
    with gzip.open(os.path.join(directory, f"zip.{split}.gz"), "wt") as f:
      f.write("\n".join(lines) + "\n")


def write_svhn(directory: str) -> None:
  os.makedirs(directory, exist_ok=True)
  for split in ("train", "test"):
    labels = labels_for(split, 7 if split == "train" else 8)
    images = digit_images(labels, 32, 3, 9)
    stored = np.where(labels == 0, 10, labels).reshape(-1, 1)  # SVHN's 0 is label 10.
    scipy.io.savemat(os.path.join(directory, f"{split}_32x32.mat"),
                     {"X": images.transpose(1, 2, 3, 0), "y": stored})


def write_mnist_m(directory: str) -> None:
  os.makedirs(directory, exist_ok=True)
  with tarfile.open(os.path.join(directory, "mnist_m.tar.gz"), "w:gz") as tar:
    for split in ("train", "test"):
      labels = labels_for(split, 10 if split == "train" else 11)
      listing = []
      for i, image in enumerate(digit_images(labels, 32, 3, 12)):
        name = f"{i:08d}.png"
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        _add(tar, f"mnist_m/mnist_m_{split}/{name}", buffer.getvalue())
        listing.append(f"{name} {labels[i]}")
      _add(tar, f"mnist_m/mnist_m_{split}_labels.txt", ("\n".join(listing) + "\n").encode())


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory) -> str:
  """A raw-data folder laid out like ../shared/data, with every domain generated."""
  root = str(tmp_path_factory.mktemp("raw"))
  write_mnist(os.path.join(root, "mnist"))
  write_usps_h5(os.path.join(root, "usps"))
  write_svhn(os.path.join(root, "svhn"))
  write_mnist_m(os.path.join(root, "mnist_m"))
  return root
