"""rexjax: causal, black-box explanations of image classifiers in JAX."""
