"""MNIST -> USPS (paper: source only 75.2, ADDA 89.4). Paper subsets: 2,000 MNIST, 1,800 USPS."""
from adda_jax.config import Config


def get_config() -> Config:
  return Config(pair="mnist_usps", source="mnist", target="usps",
                source_subset=2000, target_subset=1800)
