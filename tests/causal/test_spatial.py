"""Spatial extraction: radius schedule, circles, restricted map, termination on adversarial oracles."""

import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import oracles
from rexjax.causal.extract import pixel_rank
from rexjax.causal import RexConfig, SpatialConfig
from rexjax.causal.spatial import circle, make_spatial_extractor, radius_schedule, restrict_map
from rexjax.classifier import Classifier

H, W = 48, 64


def independent_top1(model, x, mask):
    """The model's top-1 on `x` with only `mask` visible (rest 0), computed without rexjax."""
    return int(np.argmax(np.asarray(model(jnp.asarray(x * mask[..., None])[None]))[0]))


def test_radius_schedule_grows_and_covers():
    r = radius_schedule(H, W, 25, 0.2)
    assert r[0] == 25 and np.all(np.diff(r) >= 1)
    assert list(r[:4]) == [25, 30, 36, 43]  # the reference's floor(r * 1.2) where it grows
    assert r[-1] == int(np.ceil(np.hypot(H - 1, W - 1)))  # covers the image from any centre
    # floor(r * 1.2) = r for r <= 4: the reference loops forever; here the radius is bumped.
    tiny = radius_schedule(H, W, 1, 0.2)
    assert list(tiny[:6]) == [1, 2, 3, 4, 5, 6] and np.all(np.diff(tiny) >= 1)
    assert len(radius_schedule(H, W, 1, 0.0)) == int(np.ceil(np.hypot(H - 1, W - 1)))
    # expansion_limit = 1 means one radius (the reference treats 1 as unlimited).
    assert list(radius_schedule(H, W, 25, 0.2, limit=1)) == [25]
    assert len(radius_schedule(H, W, 25, 0.2, limit=3)) == 3


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"initial_radius": 0}, "initial_radius"),
        ({"radius_eta": -0.1}, "eta"),
        ({"expansion_limit": 0}, "expansion_limit"),
    ],
)
def test_bad_spatial_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpatialConfig(**kwargs)


def test_circle_hand_case():
    m = np.asarray(circle(jnp.array([2, 2]), 1, 5, 5))
    expected = np.zeros((5, 5), bool)
    expected[2, 1:4] = expected[1:4, 2] = True  # distance <= 1: the centre and its 4 neighbours
    assert np.array_equal(m, expected)
    assert np.asarray(circle(jnp.array([0, 0]), 100, 5, 5)).all()


def test_restrict_map_ranks_region_first_in_map_order():
    resp = jnp.asarray(np.random.default_rng(0).uniform(size=(6, 7)), jnp.float32)
    region = np.zeros((6, 7), bool)
    region[1:4, 2:6] = True
    rank = np.asarray(pixel_rank(restrict_map(resp, jnp.asarray(region))))
    full = np.asarray(pixel_rank(resp))
    assert rank[region].max() < rank[~region].min()
    for part in (region, ~region):  # the order within each part is the map's order
        assert np.array_equal(np.argsort(rank[part]), np.argsort(full[part]))


A = oracles.patch_mask(H, W, 6, 8, 16)
B = oracles.patch_mask(H, W, 28, 44, 16)
X = oracles.image(H, W)
# Hand-made maps: the patches hot, plus a gradient so that ties are not everywhere.
RESP = (A * 3.0 + B * 2.0 + np.linspace(0, 1, H * W).reshape(H, W)).astype(np.float32)

ORACLES = {
    "single": (oracles.patch_oracle([A]), [A]),
    "or": (oracles.patch_oracle([A, B], "or"), [A]),
    "and": (oracles.patch_oracle([A, B], "and"), [A, B]),
    # Passes only when (almost) the whole image is visible (the oracle tolerates 0.1% hidden).
    "full_image_only": (oracles.patch_oracle([np.ones((H, W), bool)]), []),
}


# Default schedule on every oracle; tiny radius / zero growth (the reference loops forever:
# floor(r * (1 + eta)) = r) on the hardest ones. Each case compiles its own extractor.
CASES = [(name, 25, 0.2) for name in sorted(ORACLES)] + [("and", 1, 0.0), ("full_image_only", 3, 0.2)]


@pytest.mark.parametrize("name,radius,eta", CASES)
def test_spatial_sufficient_on_every_oracle_and_terminates(name, radius, eta):
    model, needed = ORACLES[name]
    extract = make_spatial_extractor(
        Classifier(model).masked(0.0),
        RexConfig(spatial=SpatialConfig(initial_radius=radius, radius_eta=eta)),
        16,
    )
    ex = extract(jnp.asarray(X), RESP, 1, 0.99)
    schedule = radius_schedule(H, W, radius, eta)
    assert ex.sufficient and independent_top1(model, X, ex.mask) == 1
    for patch in needed:
        assert ex.mask[patch].all()
    assert ex.centre == np.unravel_index(np.argmax(RESP), RESP.shape)
    assert ex.radius in schedule and ex.circles_tested <= len(schedule)
    # The first passing circle is the smallest one that contains every needed patch.
    covers = lambda r, p: np.asarray(circle(jnp.array(ex.centre), r, H, W))[p].all()
    if name == "full_image_only":
        seen = [np.asarray(circle(jnp.array(ex.centre), r, H, W)).mean() for r in schedule]
        assert ex.radius == schedule[np.argmax(np.asarray(seen) >= 0.999)] and ex.mask.mean() >= 0.999
    else:
        assert ex.radius == [r for r in schedule if all(covers(r, p) for p in needed)][0]
        assert ex.mask.sum() <= np.pi * ex.radius**2 + 10  # the explanation stays in its circle


def test_spatial_expansion_limit_one_is_one_circle_and_no_pass_is_reported():
    model = ORACLES["and"][0]
    extract = make_spatial_extractor(
        Classifier(model).masked(0.0), RexConfig(spatial=SpatialConfig(initial_radius=5, expansion_limit=1)), 4
    )
    ex = extract(jnp.asarray(X), RESP, 1, 0.99)
    assert not ex.sufficient and ex.radius == -1 and not ex.mask.any()
    assert ex.circles_tested == 1 and ex.forward_images == 4  # one padded block, not unlimited

    def never_target(x):  # class 1 always wins: target 0 never passes, not even the full image
        return jnp.tile(jnp.array([[0.0, 1.0]]), (x.shape[0], 1))

    extract = make_spatial_extractor(
        Classifier(never_target).masked(0.0),
        RexConfig(spatial=SpatialConfig(initial_radius=2, radius_eta=0.0)),
        16,
    )
    ex = extract(jnp.asarray(X), RESP, 0, 0.5)
    n = len(radius_schedule(H, W, 2, 0.0))
    assert not ex.sufficient and ex.circles_tested == n and ex.forward_images == -(-n // 16) * 16
