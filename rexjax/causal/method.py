"""ReX as a Method: `rex(**config)` -> `fn(key, classifier, x, target) -> Attribution`.

The Attribution's map is the responsibility map f32[H, W] (ReX paper Alg. 3, summed over
iterations), forward_images every image ReX pushed (map, extraction, spotlights, contrastive,
the full image), and its record the full `Explanation` (mask, area, sufficiency, ...).
One `Explainer` is built per Classifier the method sees (held weakly), so repeated calls on
one model compile once.
"""

from __future__ import annotations

import dataclasses
import weakref

from rexjax.causal.config import RexConfig
from rexjax.causal.explainer import Explainer
from rexjax.types import Attribution


def rex(**config):
    """ReX factory; `config`: RexConfig fields (nested `spatial` / `spotlight` as dicts or
    configs). Validated at once."""
    cfg = RexConfig.from_dict(config)
    explainers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def explain(key, classifier, x, target) -> Attribution:
        explainer = explainers.get(classifier)
        if explainer is None:
            explainer = explainers[classifier] = Explainer(classifier, cfg)
        explanation = explainer(x, key=key, target=target)
        return Attribution(explanation.responsibility, explanation.forward_images, explanation)

    return explain


rex.options = frozenset(f.name for f in dataclasses.fields(RexConfig))  # for methods.accepts
