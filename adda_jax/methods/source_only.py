"""Source only: the pretrained source model applied to the target as it is (lower bound)."""
from adda_jax.methods.base import Method, source_pretraining

METHOD = Method(
    name="source_only",
    summary="the source model on the target, no adaptation (lower bound)",
    stages=lambda cfg, nets: [source_pretraining(cfg, nets)],
)
