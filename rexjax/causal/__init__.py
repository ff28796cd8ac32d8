"""ReX: causal responsibility maps and sufficient explanations (ReX paper, Alg. 1-3).

    rex = rexjax.methods.make("rex", config=RexConfig.from_dict(PAPER_BUDGET))   # the Method
    explanation = Explainer(classifier, RexConfig(), mask_mode=0.0)(path, key=key)  # the engine

Modules, one concept each:
    config        RexConfig (SearchConfig + ExtractConfig), SpatialConfig, SpotlightConfig
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
    ExtractConfig,
    RexConfig,
    SearchConfig,
    SpatialConfig,
    SpotlightConfig,
)
from rexjax.causal.explainer import Explainer
from rexjax.causal.extract import Extraction, make_global_extractor, pixel_rank
from rexjax.causal.method import rex
from rexjax.causal.search import make_search

__all__ = [
    "CENTRES", "DISTRIBUTIONS", "PAPER_BUDGET", "QUEUE_STYLES", "RESPONSIBILITY_RULES", "STRATEGIES", "Explainer", "Extraction",
    "ExtractConfig", "RexConfig", "SearchConfig", "SpatialConfig", "SpotlightConfig", "make_global_extractor", "make_search", "pixel_rank", "rex",
]
