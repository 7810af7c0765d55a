"""USPS -> MNIST (paper: source only 57.1, ADDA 90.1). Paper subsets: 1,800 USPS, 2,000 MNIST."""
from adda_jax.config import Config


def get_config() -> Config:
  return Config(pair="usps_mnist", source="usps", target="mnist",
                source_subset=1800, target_subset=2000)
