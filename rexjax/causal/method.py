"""ReX as a Method, the one documented ReX entry:

    rex = methods.make("rex", iters=20, mask_mode="ad")        # RexConfig fields + boundary options
    attribution = rex(classifier, x, target=None, key=key)     # Attribution(map, forward_images, record)

The Attribution's map is the responsibility map f32[H, W] (f32[N] for a signal x[N, C],
f32[D, H, W] for a volume; ReX paper Alg. 3, summed over
iterations), forward_images every image ReX pushed (map, extraction, spotlights, contrastive,
the full image), and its record the full `Explanation` (mask, area, sufficiency, ...).
The compiled `Explainer` is kept on the Classifier the method sees (`Classifier.memo`), so
repeated calls on one model compile once; `rexjax.explain` shares it.
"""

from __future__ import annotations

from typing import Any, Optional

from rexjax.batching import resolve_batch_size
from rexjax.causal.config import RexConfig, rex_config
from rexjax.causal.explainer import explainer_for
from rexjax.masking import MaskMode, parse_mask_mode
from rexjax.types import Attribution


def rex(*, config: Optional[RexConfig] = None, mask_mode: MaskMode = 0.0, batch_size: Optional[int] = None, **fields):
    """ReX factory. config: a RexConfig (None: defaults) and/or `fields`, RexConfig field names
    (`RexConfig.from_dict`: flat names of the search and extraction parts, nested parts as
    dicts); mask_mode / batch_size: the boundary options every occlusion method takes.
    Everything is validated at once. Returns `fn(classifier, x, target, *, key) -> Attribution`."""
    cfg = rex_config(config, **fields)
    mode, batch = parse_mask_mode(mask_mode), resolve_batch_size(batch_size)

    def explain(classifier, x, target, *, key: Any) -> Attribution:
        explanation = explainer_for(classifier, cfg, mode, batch)(x, key=key, target=target)
        return Attribution(explanation.responsibility, explanation.forward_images, explanation)

    return explain
