"""Per-pair presets: `get_config(pair)` returns the paper protocol for that adaptation pair."""
from __future__ import annotations

import importlib

from adda_jax.config import Config
from adda_jax.errors import UserError

PAIRS = ("svhn_mnist", "mnist_usps", "usps_mnist", "mnist_mnistm")


def get_config(pair: str) -> Config:
  if pair not in PAIRS:
    raise UserError(f"unknown pair {pair!r}; choose one of {', '.join(PAIRS)}")
  return importlib.import_module(f"adda_jax.configs.{pair}").get_config()
