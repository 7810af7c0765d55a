"""Domain confusion (Tzeng et al., ICCV 2015), as the study places it: discriminative, tied
weights, confusion loss.

One encoder M and classifier C; D learns the domain labels of M's features, and M learns to
make D's output uniform on both domains while C learns the source labels:

    min_D      L_D = -E log D(M(x_s)) - E log(1 - D(M(x_t)))
    min_{M,C}  CE(C(M(x_s)), y_s) + domain_weight * sum_{d in s,t} -E[1/2 log D + 1/2 log(1 - D)]

alternating D and M steps. It is ADDA's tied stage with the confusion loss fixed (the paper's
soft-label transfer term is not included). Published on digits (ADDA's Table 2): 79.1
(MNIST->USPS), 66.5 (USPS->MNIST), 68.1 (SVHN->MNIST).
"""
from adda_jax.methods import adda
from adda_jax.methods.base import Method, source_pretraining

OPTIONS = ("disc_input", "disc_hidden", "adapt_update", "domain_weight")

METHOD = Method(
    name="confusion",
    summary="domain confusion (Tzeng et al. 2015): shared encoder, D's output pushed to 1/2",
    stages=lambda cfg, nets: [source_pretraining(cfg, nets),
                              adda.shared(cfg, nets, "tied", "confusion", OPTIONS)],
)
