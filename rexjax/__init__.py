"""rexjax: causal, black-box explanations of image classifiers in JAX.

    import rexjax
    ex = rexjax.explain("efficientnet_lite0", "third_party/images/ladybird.jpg", key=0)
    ex.mask, ex.responsibility, ex.stats()

    clf = rexjax.Classifier.of("efficientnet_lite0")
    rise = rexjax.methods.make("rise", n_masks=1000)
    attribution = rise(0, clf, x, target)        # Attribution(map, forward_images, record)
"""

from rexjax import causal, data, methods, metrics, models  # public subpackages: rexjax.models.load(...)
from rexjax.api import Explainer, explain, explain_many, make_explainer
from rexjax.causal import RexConfig, SpatialConfig, SpotlightConfig
from rexjax.classifier import Classifier
from rexjax.types import Attribution, Explanation

__all__ = [
    "Attribution", "Classifier", "Explainer", "Explanation", "RexConfig", "SpatialConfig", "SpotlightConfig",
    "causal", "data", "explain", "explain_many", "make_explainer", "methods", "metrics", "models",
]
