"""Target oracle: the same network trained on the labelled target training split, the same
way as the source model (upper bound). It reads target labels: every table marks it so."""
from adda_jax.methods.base import PRETRAIN_FIELDS, Method, supervised_stage

METHOD = Method(
    name="target_oracle",
    summary="supervised on labelled target training data (upper bound; reads target labels)",
    stages=lambda cfg, nets: [supervised_stage(cfg, nets, "oracle", "target_oracle",
                                               "target_labelled",
                                               PRETRAIN_FIELDS + ("method", "target_subset"))],
    uses_target_labels=True,
)
