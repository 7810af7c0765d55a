"""The method registry: `--method NAME` reads it, and the runner never names a method.

A new method is one module defining `METHOD` (see `base.Method`) and one line below.
Self-training (`--self-train-steps N`, `self_training.py`) is no method of its own: it is a
refinement stage appended to whichever method runs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from adda_jax.methods import (adda, can, cogan, confusion, dann, ddc, self_training,
                              source_only, target_oracle)
from adda_jax.methods.base import Method, Stage
from adda_jax.models import Networks, make_networks

if TYPE_CHECKING:
  from adda_jax.config import Config

REGISTRY: dict[str, Method] = {module.METHOD.name: module.METHOD for module in (
    source_only,
    target_oracle,
    adda,
    dann,
    ddc,
    confusion,
    can,
    cogan,
)}


def networks_for(cfg: Config) -> Networks:
  """The encoder, classifier and discriminator `cfg` describes (cheap: built lazily)."""
  return make_networks(cfg.image_size, cfg.channels, cfg.disc_input, cfg.disc_hidden,
                       cfg.conv_relu, len(cfg.class_names), cfg.encoder, cfg.input_norm)


def stages_for(cfg: Config) -> list[Stage]:
  """The stages `cfg.method` runs under `cfg`."""
  nets = networks_for(cfg)
  stages = REGISTRY[cfg.method].stages(cfg, nets)
  if cfg.self_train_steps:
    stages.append(self_training.stage(cfg, nets, stages[-1]))
  return stages
