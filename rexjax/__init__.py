"""rexjax: causal, black-box explanations of image classifiers in JAX.

    import rexjax
    clf = rexjax.Classifier.of("efficientnet_lite0")
    x = clf.prepare("third_party/images/ladybird.jpg")
    rex = rexjax.methods.make("rex")                   # every explainer: methods.make(name, **config)
    attribution = rex(clf, x, key=rexjax.keys.for_image(0, "ladybird.jpg"))
    attribution.map, attribution.record.mask           # Attribution(map, forward_images, record)

    ex = rexjax.explain(clf, x, key=0)                 # convenience: the ReX Explanation itself
"""

from rexjax import causal, data, keys, methods, metrics, models  # public subpackages: rexjax.models.load(...)
from rexjax.api import explain, explain_many
from rexjax.causal import ExtractConfig, RexConfig, SearchConfig, SpatialConfig, SpotlightConfig
from rexjax.classifier import Classifier
from rexjax.types import Attribution, Explanation

__all__ = [
    "Attribution", "Classifier", "Explanation", "ExtractConfig", "RexConfig", "SearchConfig", "SpatialConfig",
    "SpotlightConfig", "causal", "data", "explain", "explain_many", "keys", "methods", "metrics", "models",
]
