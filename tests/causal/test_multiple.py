"""Multiple explanations: spotlight centres, Dice dedup, the 3-patch OR oracle end to end."""

import itertools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import oracles
import rexjax
from rexjax.causal import RexConfig, SpotlightConfig
from rexjax.causal.multiple import dice_matrix, sample_centres, select_compatible

H, W = 80, 112  # non-square, not 224
PATCHES = [oracles.patch_mask(H, W, r, c, 16) for r, c in [(4, 4), (4, 92), (60, 48)]]
MODEL = oracles.patch_oracle(PATCHES, "or")  # fires when any one of the 3 patches is visible
X = oracles.image(H, W, seed=3)
SPOT = SpotlightConfig(spotlights=5, initial_radius=14)


def independent_top1(x, mask):
    return int(np.argmax(np.asarray(MODEL(jnp.asarray(x * mask[..., None])[None]))[0]))


@pytest.fixture(scope="module")
def explainer():
    """`explainer(image, key=..., **fields)`: ReX with iters 6, SPOT and the RexConfig `fields`,
    on one Classifier of MODEL (each config's compiled explainer is kept on it)."""
    clf = rexjax.Classifier.of(MODEL)
    config = RexConfig.from_dict({"iters": 6, "spotlight": SPOT})
    return lambda image, *, key, **fields: rexjax.explain(clf, image, key=key, config=config, **fields)


@pytest.fixture(scope="module")
def three(explainer):
    return explainer(X, key=0, multiple=3)


def test_three_disjoint_explanations_each_with_a_different_patch(three):
    multi = three.multiple
    assert multi is not None and len(multi.parts) == 3
    masks = [p.mask for p in multi.parts]
    for a, b in itertools.combinations(masks, 2):
        assert not (a & b).any(), "explanations must be disjoint (permitted_overlap 0)"
    holder = [[i for i, patch in enumerate(PATCHES) if m[patch].all()] for m in masks]
    assert sorted(h[0] for h in holder if len(h) == 1) == [0, 1, 2], holder
    for p in multi.parts:
        assert p.sufficient and independent_top1(X, p.mask) == 1
        assert p.area == pytest.approx(p.mask.mean()) and p.confidence > 0.99 and p.forward_images > 0
    assert np.allclose(multi.dice, np.eye(3))
    assert multi.candidates >= 3 and multi.spotlights == SPOT.spotlights
    spot_images = sum(p.forward_images for p in multi.parts if p.source == "spotlight")
    assert spot_images <= multi.forward_images
    assert three.forward_images == 1 + three.forward_images_map + three.forward_images_extract + multi.forward_images
    stats = three.stats()["multiple"]
    assert stats["count"] == 3 and len(stats["parts"]) == 3 and stats["max_dice"] == 0.0


def test_same_key_same_explanations_and_overlap_cap(explainer, three):
    again = explainer(X, key=0, multiple=3)
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(three.multiple.parts, again.multiple.parts))
    one = explainer(X, key=0, multiple=1, permitted_overlap=1.0)
    assert len(one.multiple.parts) == 1 and one.multiple.parts[0].source == "global"


def test_contrastive_end_to_end_covers_all_three_patches(explainer):
    ex = explainer(X, key=0, contrastive=True)
    c = ex.contrastive
    assert c.found, c.message
    assert all(c.mask[p].any() for p in PATCHES), "hiding the union must break every patch"
    assert independent_top1(X, c.mask) == 1 and independent_top1(X, ~c.mask) == 0
    assert c.counterfactual_class == 0 and len(c.subset) >= 1
    assert ex.multiple is not None  # the candidates it combined
    assert ex.forward_images == (
        1 + ex.forward_images_map + ex.forward_images_extract + ex.multiple.forward_images + c.forward_images
    )
    assert ex.stats()["contrastive"]["found"]


def test_spatial_strategy_end_to_end(explainer):
    ex = explainer(X, key=1, strategy="spatial")
    assert ex.strategy == "spatial" and ex.sufficient and independent_top1(X, ex.mask) == 1
    assert any(ex.mask[p].all() for p in PATCHES)
    assert ex.forward_images == 1 + ex.forward_images_map + ex.forward_images_extract
    with pytest.raises(ValueError, match="strategy must be one of"):
        explainer(X, key=0, strategy="spiral")
    with pytest.raises(ValueError, match="multiple must be"):
        explainer(X, key=0, multiple=0)
    with pytest.raises(ValueError, match="permitted_overlap"):
        explainer(X, key=0, multiple=2, permitted_overlap=1.5)


def test_dice_matrix_hand_case():
    a = np.zeros((2, 4), bool)
    a[0, :2] = True  # 2 pixels
    b = np.zeros((2, 4), bool)
    b[0, 1:] = True  # 3 pixels, 1 shared
    d = dice_matrix(np.stack([a, b, np.zeros((2, 4), bool)]))
    assert d[0, 1] == pytest.approx(2 * 1 / 5) and d[0, 0] == 1.0 and d[2, 2] == 0.0 and d[0, 2] == 0.0


def test_select_compatible_max_cardinality_then_preference_then_area():
    # 0 conflicts with 1 and 2; 1, 2, 3 are compatible: the largest set drops 0.
    dice = np.eye(4)
    dice[0, 1] = dice[1, 0] = dice[0, 2] = dice[2, 0] = 0.3
    assert select_compatible(dice, [1, 1, 1, 1], 0.0, limit=4) == [1, 2, 3]
    assert select_compatible(dice, [1, 1, 1, 1], 0.5, limit=4) == [0, 1, 2, 3]
    # Capped at 2: sets with the preferred 0 first, then the smallest area.
    assert select_compatible(dice, [5, 1, 1, 2], 0.0, limit=2) == [0, 3]
    assert select_compatible(dice, [5, 1, 1, 2], 0.0, limit=2, prefer=None) == [1, 2]
    # Greedy path (n > 16) keeps every chosen pair within the overlap.
    rng = np.random.default_rng(0)
    big = rng.uniform(size=(20, 20))
    big = np.minimum(big, big.T)
    np.fill_diagonal(big, 1.0)
    chosen = select_compatible(big, rng.uniform(size=20), 0.3, limit=5)
    assert 1 <= len(chosen) <= 5 and all(big[i, j] <= 0.3 for i, j in itertools.combinations(chosen, 2))
    with pytest.raises(ValueError, match="permitted_overlap"):
        select_compatible(dice, [1] * 4, -0.1, limit=2)


def test_sample_centres_respect_mass_exclusion_and_keys():
    resp = np.zeros((30, 40), np.float32)
    resp[5:10, 5:10] = 1.0
    resp[20:25, 30:35] = 1.0
    exclude = np.zeros((30, 40), bool)
    fixed = np.zeros(2, bool)
    args = (jnp.asarray(resp), jnp.asarray(exclude), jnp.zeros((2, 2), jnp.int32), jnp.zeros(2, jnp.int32),
            jnp.asarray(fixed))
    sample = jax.jit(sample_centres, static_argnames=("radius", "weighted", "floor_quantile"))
    c = np.asarray(sample(jax.random.key(0), *args, radius=6, weighted=True))
    assert all(resp[r, k] > 0 for r, k in c), c
    # the second slot avoids the first slot's circle: one centre on each peak
    assert {int(r) < 15 for r, _ in c} == {True, False}
    same = np.asarray(sample(jax.random.key(0), *args, radius=6, weighted=True))
    assert np.array_equal(c, same)
    # a fixed slot keeps its centre; its circle pushes the other slot to the other peak
    fixed_c = jnp.array([[7, 7], [0, 0]], jnp.int32)
    c2 = np.asarray(sample(jax.random.key(1), args[0], args[1], fixed_c, jnp.array([6, 0], jnp.int32),
                                   jnp.array([True, False]), radius=6, weighted=True))
    assert tuple(c2[0]) == (7, 7) and c2[1][0] >= 20
    u = np.asarray(sample(jax.random.key(2), *args, radius=6, weighted=False))
    assert u.shape == (2, 2) and (u >= 0).all() and (u[:, 0] < 30).all() and (u[:, 1] < 40).all()


def test_bad_spotlight_config():
    with pytest.raises(ValueError, match="spotlights"):
        SpotlightConfig(spotlights=0)
    with pytest.raises(ValueError, match="centres"):
        SpotlightConfig(centres="random_walk")


@pytest.mark.slow
def test_starfish_cli_multiple_4_on_lite0(tmp_path):
    """`rexjax explain --multiple 4 starfish.jpg`: >= 2 sufficient, disjoint explanations + composite."""
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    image = os.path.join(root, "third_party", "images", "starfish.jpg")
    cmd = [sys.executable, "-c", "from rexjax.cli import run; run()", "explain", "--multiple", "4", image,
           "--out", str(tmp_path), "--progress=false"]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=3000)
    assert res.returncode == 0, res.stderr[-2000:]
    line = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(line))  # the numbers, shown with pytest -s
    multi = line["multiple"]
    assert line["label"] == "starfish" and multi["count"] >= 2 and multi["max_dice"] <= 0.0
    assert all(p["sufficient"] for p in multi["parts"])
    assert os.path.getsize(line["composite_png"]) > 10_000
    masks = np.load(os.path.join(tmp_path, "starfish.npz"))["multiple_masks"]
    assert len(masks) == multi["count"]
    for a, b in itertools.combinations(masks, 2):
        assert not (a & b).any()
    from rexjax import models

    lite0 = models.load("efficientnet_lite0")
    x = lite0.preprocess(image)
    logits = lite0(jnp.asarray(x)[None] * jnp.asarray(masks)[..., None])  # independent sufficiency check
    assert (np.argmax(np.asarray(logits), -1) == line["target"]).all()


def test_composite_figure(tmp_path):
    from rexjax.types import ExplanationPart
    from rexjax.viz.multiple import composite_image, part_colours, save_multiple_figure

    image = np.full((20, 30, 3), 200, np.uint8)
    a = np.zeros((20, 30), bool)
    a[2:8, 3:9] = True
    b = np.zeros((20, 30), bool)
    b[10:18, 20:28] = True
    out = composite_image(image, [a, b], dim=0.5)
    assert (out[a | b] == 200).all() and (out[~(a | b)] == 100).all()
    assert len({tuple(c) for c in part_colours(12)}) == 12
    parts = [ExplanationPart(m, float(m.mean()), 0.9, True, "spotlight", 10, (5, 5), 4) for m in (a, b)]
    path = tmp_path / "composite.png"
    save_multiple_figure(path, image, np.random.default_rng(0).uniform(size=(20, 30)), parts, "t", contrastive_mask=a | b)
    assert path.stat().st_size > 1000


def test_hide_held_spotlights_are_disjoint_and_distinct():
    from rexjax.causal.multiple import make_spotlight_search
    from rexjax.classifier import Classifier

    classify = Classifier(MODEL).masked(0.0)
    resp = (sum(p * (3.0 - i) for i, p in enumerate(PATCHES)) + np.linspace(0, 0.5, H * W).reshape(H, W))
    cfg = SpotlightConfig(spotlights=3, initial_radius=14, hide_held=True)
    search = make_spotlight_search(classify, RexConfig(spotlight=cfg), 8)
    res = search(jax.random.key(0), jnp.asarray(X), resp.astype(np.float32), 1, 0.99)
    assert len(res.parts) == 3
    for a, b in itertools.combinations([p.mask for p in res.parts], 2):
        assert not (a & b).any()
    assert sorted(next(i for i, q in enumerate(PATCHES) if p.mask[q].all()) for p in res.parts) == [0, 1, 2]
