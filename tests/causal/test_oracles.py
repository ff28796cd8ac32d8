"""End-to-end ReX on synthetic oracles whose true explanation is known.

The oracles (tests/helpers/oracles.py) fire only when every pixel of a hidden patch is
visible (one patch; either of two: OR; both: AND), so the smallest sufficient explanation is
known exactly. The patches are marked in the image, so one compiled explainer serves every
layout. With the default configuration the explanation's median size
over keys is at most 2x the pixels needed and its worst at most 3x (`tests/causal/oracle_quality.py`
prints the full table).
"""

import numpy as np
import pytest

from rexjax.causal import Explainer, RexConfig
from tests.helpers import oracles

H, W, SIZE = 48, 64, 10
KEYS = (0, 1, 2, 3)


def explain_layouts(mode, keys=KEYS, h=H, w=W, size=SIZE, **fields):
    """[(patches, Explanation)] per key: RexConfig's defaults with `fields`."""
    explainer = Explainer(oracles.marked_oracle(size * size, mode), RexConfig().replace(**fields))
    out = []
    for k in keys:
        patches = oracles.random_patches(h, w, size, 1 if mode == "single" else 2, np.random.default_rng(k))
        out.append((patches, explainer(oracles.marked_image(h, w, patches, seed=k), key=k)))
    return out


@pytest.mark.parametrize("mode", ["single", "or", "and"])
def test_default_configuration_meets_the_size_bound(mode):
    """Sufficient, holds what is needed (one whole patch for OR, both for AND), and the size
    ratio to the needed pixels has median <= 2 and worst <= 3 over the keys."""
    ratios = []
    for patches, ex in explain_layouts(mode):
        held = [bool(ex.mask[p].all()) for p in patches]
        assert ex.sufficient and ex.target == 1
        assert all(held) if mode == "and" else any(held), held
        ratios.append(ex.mask.sum() / (SIZE * SIZE * (2 if mode == "and" else 1)))
        if mode == "single":
            peak = np.unravel_index(np.argmax(ex.responsibility), ex.responsibility.shape)
            assert patches[0][peak], f"responsibility maximum {peak} lies outside the patch"
    assert np.median(ratios) <= 2.0 and max(ratios) <= 3.0, np.round(ratios, 2)


# The other rules, one patch, larger images (measured worst ratio over these layouts in the
# comment; `tests/causal/oracle_quality.py` prints the table over sizes and oracles).
RULE_BOUND = {"sufficient": 2.0, "tool": 3.0}


@pytest.mark.parametrize("rule", sorted(RULE_BOUND))
def test_other_rules_on_one_patch(rule):
    for patches, ex in explain_layouts("single", keys=(0, 1), h=72, w=96, size=16, responsibility=rule):
        assert ex.sufficient and ex.mask[patches[0]].all()
        assert ex.mask.sum() <= RULE_BOUND[rule] * patches[0].sum(), (rule, ex.mask.sum())
