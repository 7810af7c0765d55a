"""SVHN -> MNIST (paper: source only 60.1, ADDA 76.0). Full sets, 28x28 gray."""
from adda_jax.config import Config


def get_config() -> Config:
  return Config(pair="svhn_mnist", source="svhn", target="mnist")
