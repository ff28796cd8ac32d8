"""How the iterations' maps make the map (`search.combine_iterations`, SearchConfig.combine),
against rex-xai 0.4.1's own `ResponsibilityMaps.merge` (tests/fixtures/rex_style, made once
by its script with the tool installed)."""

import json
from pathlib import Path

import numpy as np
import pytest

from rexjax.causal import RexConfig, SearchConfig
from rexjax.causal.search import combine_iterations

FIXTURE = np.load(Path(__file__).parents[1] / "fixtures" / "rex_style" / "reference.npz")
CREDITS = FIXTURE["credits"]  # f32[5, 6, 7]
ALL = np.ones(len(CREDITS), bool)


def test_the_tools_default_style_is_multiplicative():
    """The fixture's premise: rex-xai's CausalArgs() default is not the additive style."""
    meta = json.loads(str(FIXTURE["meta"]))
    assert meta["rex_xai"] == "0.4.1" and meta["default_style"] == "'multiplicative'"
    assert meta["default_style_is_additive"] is False


def test_product_is_the_tools_merge():
    """Catches a product started from zeros, credits multiplied without the 1 + the tool's
    fresh local map adds, a max normalisation dropped or a sum in its place: each gives other
    values; the ranking follows the tool's too."""
    got = combine_iterations(CREDITS, ALL, "product")
    want = FIXTURE["product"][-1]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.max() == 1.0
    np.testing.assert_array_equal(np.argsort(-got, axis=None, kind="stable"), np.argsort(-want, axis=None, kind="stable"))


def test_product_after_each_iteration():
    """Each prefix of iterations gives the tool's map after that many merges (an all-zero
    iteration leaves the map as it was)."""
    for i in range(1, len(CREDITS) + 1):
        keep = np.arange(len(CREDITS)) < i
        np.testing.assert_allclose(combine_iterations(CREDITS, keep, "product"), FIXTURE["product"][i - 1], rtol=1e-6)


def test_sum_is_the_tools_additive_style():
    np.testing.assert_allclose(combine_iterations(CREDITS, ALL, "sum"), FIXTURE["additive"][-1], rtol=1e-6)


def test_product_rewards_agreement_where_the_sum_ties():
    """A pixel credited 1 and 1 outranks one credited 2 and 0 under the product, not the sum
    (catches the product taken over the iterations' maps without their + 1)."""
    per = np.zeros((2, 1, 3), np.float32)
    per[:, 0, 0] = [1.0, 1.0]
    per[:, 0, 1] = [2.0, 0.0]
    keep = np.ones(2, bool)
    assert combine_iterations(per, keep, "sum")[0, 0] == combine_iterations(per, keep, "sum")[0, 1]
    prod = combine_iterations(per, keep, "product")
    np.testing.assert_allclose(prod[0], [1.0, 0.75, 0.25])


def test_dropped_iterations_and_none_kept():
    """Iterations not kept do not count; with none kept the map is all zero, as the sum's."""
    keep = np.array([True, False, True, False, False])
    np.testing.assert_allclose(combine_iterations(CREDITS, keep, "product"),
                               combine_iterations(CREDITS[keep], np.ones(2, bool), "product"), rtol=1e-6)
    for combine in ("sum", "product"):
        assert not combine_iterations(CREDITS, np.zeros(5, bool), combine).any()


def test_combine_is_validated():
    assert RexConfig().search.combine == "sum"
    with pytest.raises(ValueError, match="combine must be one of"):
        SearchConfig(combine="mult")
    with pytest.raises(ValueError, match="combine must be one of"):
        combine_iterations(CREDITS, ALL, "mult")  # not a silent sum
    with pytest.raises(ValueError, match="main_effect"):
        SearchConfig(combine="product")  # the default rule's credits can be negative
    assert RexConfig.from_dict({"responsibility": "tool", "combine": "product"}).search.combine == "product"
