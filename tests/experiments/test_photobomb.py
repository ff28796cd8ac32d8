"""The photobombing set: occluders are black, the mask is exactly them, the model's top-1
is unchanged (checked again here), placements that change it are never kept, and a seed
reproduces the set."""

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from rexjax import data
from rexjax.classifier import Classifier
from rexjax.studies import photobomb
from tests.experiments import layouts


def _preprocess(image):
    return np.asarray(image.convert("RGB").resize((12, 8)), np.float32) / 255.0


def corner_model(xb):
    """Class 0 while the top-left 3 x 3 corner is bright, else class 1 (black there flips it)."""
    corner = xb[:, :3, :3].mean((1, 2, 3))
    return jnp.stack([10.0 * (corner - 0.2), jnp.zeros_like(corner)], -1)


@pytest.fixture()
def images(tmp_path):
    paths = layouts.write_images(tmp_path / "in", ["a", "b", "c"], suffix=".png")
    for p in paths:  # a bright corner: class 0
        im = np.asarray(Image.open(p)).copy()
        im[:3, :3] = 255
        Image.fromarray(im).save(p)
    return tmp_path / "in"


def test_photobomb_keeps_top1_and_writes_the_segmentation_layout(images, tmp_path):
    clf = Classifier(corner_model, preprocess=_preprocess)
    rows = photobomb.write_set(clf, images, tmp_path / "out", seed=3, n_occluders=2, size=(0.3, 0.5), tries=8)
    kept = [r for r in rows if not r["skipped"]]
    assert kept, rows
    samples = data.folder(tmp_path / "out" / "images", tmp_path / "out" / "masks")
    assert [s.name for s in samples] == [r["image"] for r in kept]
    for s in samples:
        image = np.asarray(Image.open(s.image))
        mask = data.read_segment(s.segment, image.shape[:2])
        assert mask.any() and (image[mask] == 0).all()  # the mask is the black occluders
        original = np.asarray(Image.open(images / s.name))
        np.testing.assert_array_equal(image[~mask], original[~mask])  # nothing else changed
        assert not mask[:3, :3].all()  # a covered corner would have flipped the class ...
        assert int(np.asarray(clf.full_probs(clf.prepare(Image.fromarray(image)))).argmax()) == 0  # ... top-1 kept
    again = photobomb.write_set(clf, images, tmp_path / "again", seed=3, n_occluders=2, size=(0.3, 0.5), tries=8)
    assert again == rows
    for s in samples:
        assert (tmp_path / "again" / "masks" / s.segment.name).read_bytes() == s.segment.read_bytes()


def no_black_model(xb):
    """Class 0 unless some pixel is black: every occluder flips it."""
    darkest = xb.min((1, 2, 3))
    return jnp.stack([100.0 * (darkest - 0.05), jnp.zeros_like(darkest)], -1)


def test_every_placement_changing_the_class_skips_the_image(images, tmp_path):
    clf = Classifier(no_black_model, preprocess=_preprocess)
    rows = photobomb.write_set(clf, images, tmp_path / "out", n_occluders=1, size=(0.3, 0.3), tries=4)
    assert all(r["skipped"] for r in rows) and not list((tmp_path / "out" / "images").iterdir())


def test_bad_settings(images, tmp_path):
    with pytest.raises(ValueError, match="size must be"):
        photobomb.write_set(None, images, tmp_path, size=(0.5, 0.2))


def test_placement_colour_and_chance_level(images, tmp_path):
    """disjoint squares never overlap (the occluded fraction is the sum of the squares),
    random colours are recorded in the mask all the same, and each kept row carries the
    chance-level OUT = 1 - occluded fraction."""
    def overlaps(squares):
        return any(not (y + s <= yy or yy + ss <= y or x + s <= xx or xx + ss <= x)
                   for i, (y, x, s) in enumerate(squares) for yy, xx, ss in squares[i + 1:])

    crowded = ((40, 40), 6, (0.25, 0.3))  # six squares of 10-12 px on 40 x 40: uniform ones overlap
    assert all(overlaps(photobomb.occluder_squares(np.random.default_rng(k), *crowded, "uniform")) for k in range(5))
    for k in range(5):
        squares = photobomb.occluder_squares(np.random.default_rng(k), *crowded, "disjoint")
        assert len(squares) >= 4 and not overlaps(squares)
        mask = photobomb.occluder_mask(np.random.default_rng(k), *crowded, "disjoint")
        assert mask.sum() == sum(s * s for _, _, s in squares)
    clf = Classifier(corner_model, preprocess=_preprocess)
    rows = photobomb.write_set(clf, images, tmp_path / "out", seed=1, n_occluders=1, size=(0.3, 0.4), tries=8,
                               placement="disjoint", colour="random")
    kept = [r for r in rows if not r["skipped"]]
    assert kept
    for r in kept:
        assert r["chance_out"] == pytest.approx(1.0 - r["occluded"])
        image = np.asarray(Image.open(tmp_path / "out" / "images" / (r["image"].rsplit(".", 1)[0] + ".png")))
        seg = data.read_segment(tmp_path / "out" / "masks" / (r["image"].rsplit(".", 1)[0] + ".png"), image.shape[:2])
        assert len(np.unique(image[seg].reshape(-1, 3), axis=0)) == 1  # one colour per square (one square)
    with pytest.raises(ValueError, match="placement must be"):
        photobomb.write_set(clf, images, tmp_path / "x", placement="corner")
