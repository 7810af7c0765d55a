"""adda_jax: Adversarial Discriminative Domain Adaptation (Tzeng et al., CVPR 2017) in JAX/Flax."""
