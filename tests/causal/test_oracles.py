"""End-to-end ReX on synthetic oracles whose true explanation is known."""

import numpy as np
import pytest

from tests.helpers import oracles
import rexjax

CASES = [  # (h, w, patch row, patch col)
    (64, 64, 5, 7),
    (64, 64, 40, 30),
    (48, 80, 20, 55),
    (96, 72, 60, 10),
]


# Area bound per responsibility rule: the paper's minimal-k rule concentrates the map on the
# patch (measured 1.0-1.5x over 4 cases x 3 keys); the ReX 0.4.1 rule spreads 1/n credit to
# unneeded siblings and measured 1.4-2.6x on this strict all-pixels oracle (BUILD_NOTES.md).
AREA_BOUND = {"minimal_k": 2.0, "rex": 3.0}


@pytest.mark.parametrize("rule", sorted(AREA_BOUND))
@pytest.mark.parametrize("h,w,r,c", CASES)
def test_single_patch_explanation_contains_patch(h, w, r, c, rule):
    patch = oracles.patch_mask(h, w, r, c)
    ex = rexjax.explain(oracles.patch_oracle([patch]), oracles.image(h, w), key=1, responsibility=rule)
    assert ex.target == 1 and ex.sufficient
    assert ex.mask[patch].all(), "explanation must contain the hidden patch"
    bound = AREA_BOUND[rule] * patch.sum()
    assert ex.mask.sum() <= bound, f"explanation {ex.mask.sum()} px > {bound} px"
    peak = np.unravel_index(np.argmax(ex.responsibility), ex.responsibility.shape)
    assert patch[peak], f"responsibility maximum {peak} lies outside the patch"


@pytest.mark.parametrize(
    "mode,h,w,corner_a,corner_b,key",
    [
        ("or", 64, 64, (4, 4), (-26, -26), 2),
        ("or", 80, 56, (4, 4), (-26, -26), 2),
        ("and", 64, 64, (6, 8), (-30, -24), 3),
        ("and", 72, 90, (6, 8), (-30, -24), 3),
    ],
)
def test_two_patch_oracles(mode, h, w, corner_a, corner_b, key):
    """OR: the explanation holds one whole patch (either suffices); AND: it holds both."""
    a = oracles.patch_mask(h, w, *corner_a)
    b = oracles.patch_mask(h, w, h + corner_b[0], w + corner_b[1])
    ex = rexjax.explain(oracles.patch_oracle([a, b], mode), oracles.image(h, w), key=key)
    assert ex.sufficient
    held = (ex.mask[a].all(), ex.mask[b].all())
    assert (any(held) if mode == "or" else all(held)), held
