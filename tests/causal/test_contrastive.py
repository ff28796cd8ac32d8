"""Contrastive explanations: sufficient alone, and hiding them changes the class."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import oracles
from rexjax.causal.contrastive import make_contrastive_search, subset_table
from rexjax.causal import RexConfig, SpotlightConfig
from rexjax.causal.multiple import make_spotlight_search
from rexjax.classifier import Classifier

H, W = 64, 96
A = oracles.patch_mask(H, W, 6, 6, 16)
B = oracles.patch_mask(H, W, 40, 70, 16)
X = oracles.image(H, W, seed=5)
OR = oracles.patch_oracle([A, B], "or")
AND = oracles.patch_oracle([A, B], "and")


def top1(model, x):
    return int(np.argmax(np.asarray(model(jnp.asarray(x)[None]))[0]))


@pytest.fixture(scope="module")
def search_or():
    return make_contrastive_search(
        Classifier(OR).masked(0.0), RexConfig(spotlight=SpotlightConfig(max_candidates=4)), 8
    )


def test_subset_table_order():
    t = subset_table(3)
    assert [tuple(np.flatnonzero(r)) for r in t] == [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]


def test_or_oracle_contrastive_covers_both_patches(search_or):
    # Candidates as the spotlight search finds them on a map with both patches hot.
    classify = Classifier(OR).masked(0.0)
    resp = (A * 2.0 + B * 1.5 + np.linspace(0, 0.5, H * W).reshape(H, W)).astype(np.float32)
    spots = make_spotlight_search(
        classify, RexConfig(spotlight=SpotlightConfig(spotlights=3, initial_radius=14)), 8
    )
    found = spots(jax.random.key(0), jnp.asarray(X), resp, 1, 0.99)
    assert len(found.parts) >= 2
    ex = search_or(jnp.asarray(X), np.stack([p.mask for p in found.parts]), 1, 0.99)
    assert ex.found and ex.mask[A].any() and ex.mask[B].any(), "hiding one patch is not enough"
    assert len(ex.subset) >= 2
    assert top1(OR, X * ex.mask[..., None]) == 1 and top1(OR, X * ~ex.mask[..., None]) == 0  # independent
    assert ex.counterfactual_class == 0 and ex.confidence > 0.99 and ex.counterfactual_confidence < 0.01
    assert ex.area == pytest.approx(ex.mask.mean()) and ex.forward_images > 0


def test_first_subset_in_size_order_and_duplicates_merged(search_or):
    ex = search_or(jnp.asarray(X), np.stack([A, A, B, A | B]), 1, 0.99)
    # singles A, B fail (the other patch still fires), then A|B (index 3) alone passes before pairs
    assert ex.found and ex.subset == (3,) and ex.candidates == 3
    assert np.array_equal(ex.mask, A | B)


def test_none_exists_is_reported_not_exit(search_or):
    ex = search_or(jnp.asarray(X), A[None], 1, 0.99)  # hiding A leaves B: never necessary
    assert not ex.found and not ex.mask.any() and "no union" in ex.message
    assert ex.forward_images > 0
    empty = search_or(jnp.asarray(X), np.zeros((0, H, W), bool), 1, 0.99)
    assert not empty.found and empty.candidates == 0


def test_and_oracle_single_explanation_is_contrastive():
    search = make_contrastive_search(
        Classifier(AND).masked(0.0), RexConfig(spotlight=SpotlightConfig(max_candidates=2)), 8
    )
    ex = search(jnp.asarray(X), np.stack([A | B]), 1, 0.99)
    assert ex.found and ex.subset == (0,)
    assert top1(AND, X * ~ex.mask[..., None]) == 0
