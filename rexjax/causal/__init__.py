"""ReX: causal responsibility maps and sufficient explanations (ReX paper, Alg. 1-3).

    from rexjax.causal import Explainer, RexConfig
    explanation = Explainer("efficientnet_lite0", RexConfig(iters=20))(path, key=0)

Modules, one concept each:
    config        RexConfig, SpatialConfig, SpotlightConfig and the option vocabularies
    partition     boxes int32[4], random splits into 4 children, masks rendered in jit
    responsibility the rules crediting the 4 children of a split from its 14 mutants
    search        refinement rounds, all iterations in lockstep (-> responsibility map)
    extract       the greedy global extraction (shortest sufficient prefix of ranked pixels)
    spatial       circle-restricted extraction (and the batched pass/fail tester)
    multiple      spotlight search for several explanations, deduplicated by Dice
    contrastive   sufficient-and-necessary unions of sufficient explanations
    explainer     Explainer: the composition of the above for one Classifier and config
    method        ReX as a `rexjax.methods` Method (`methods.make("rex", ...)`)
"""

from rexjax.causal.config import (
    CENTRES,
    DISTRIBUTIONS,
    PAPER_BUDGET,
    QUEUE_STYLES,
    RESPONSIBILITY_RULES,
    STRATEGIES,
    RexConfig,
    SpatialConfig,
    SpotlightConfig,
)
from rexjax.causal.explainer import Explainer
from rexjax.causal.extract import Extraction, make_global_extractor, pixel_rank
from rexjax.causal.method import rex
from rexjax.causal.search import make_search

__all__ = [
    "CENTRES", "DISTRIBUTIONS", "PAPER_BUDGET", "QUEUE_STYLES", "RESPONSIBILITY_RULES", "STRATEGIES", "Explainer", "Extraction",
    "RexConfig", "SpatialConfig", "SpotlightConfig", "make_global_extractor", "make_search", "pixel_rank", "rex",
]
