"""rexjax: causal, black-box explanations of image classifiers in JAX.

    import rexjax
    ex = rexjax.explain("efficientnet_lite0", "third_party/images/ladybird.jpg")
    ex.mask, ex.responsibility, ex.stats()
"""

from rexjax.api import Explainer, explain, make_explainer
from rexjax.types import Explanation, RexConfig

__all__ = ["explain", "make_explainer", "Explainer", "Explanation", "RexConfig"]
