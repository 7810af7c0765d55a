"""MNIST -> MNIST-M, the colour shift (DANN paper: source only 52.3, DANN 76.7).

Default 28x28 gray like the other digit pairs; `image_size=32, channels=3` keeps colour.
"""
from adda_jax.config import Config


def get_config() -> Config:
  return Config(pair="mnist_mnistm", source="mnist", target="mnist_m")
