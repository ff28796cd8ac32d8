"""explain(): determinism, batch-size invariance, input validation, the Explanation record,
and the compiled explainers kept on the Classifier."""

import gc
import weakref

import numpy as np
import pytest

import rexjax
from rexjax.causal import explainer as explainer_module
from rexjax.causal.explainer import Explainer
from tests.helpers import oracles

H, W = 48, 48
PATCH = oracles.patch_mask(H, W, 10, 20)
ORACLE = oracles.patch_oracle([PATCH])
IMAGE = oracles.image(H, W)


@pytest.fixture(scope="module")
def explainer():
    return Explainer(ORACLE, rexjax.RexConfig().replace(iters=8))


def test_same_key_same_result_different_key_differs(explainer):
    a = explainer(IMAGE, key=5)
    b = explainer(IMAGE, key=5)
    c = explainer(IMAGE, key=6)
    assert np.array_equal(a.responsibility, b.responsibility) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.responsibility, c.responsibility)


def test_batch_size_does_not_change_results():
    a = rexjax.explain(ORACLE, IMAGE, key=3, iters=8, batch_size=7)
    b = rexjax.explain(ORACLE, IMAGE, key=3, iters=8, batch_size=64)
    assert np.array_equal(a.responsibility, b.responsibility)
    assert np.array_equal(a.mask, b.mask)


def test_record_fields(explainer):
    ex = explainer(IMAGE, key=1)
    assert ex.responsibility.shape == (H, W) and ex.mask.shape == (H, W) and ex.mask.dtype == bool
    assert ex.area == pytest.approx(ex.mask.mean())
    assert ex.forward_images == 1 + ex.forward_images_map + ex.forward_images_extract
    assert ex.batch_size == explainer.batch_size and ex.forward_images_map % ex.batch_size == 0
    assert ex.config == explainer.config and ex.mask_mode == 0.0
    assert ex.full_confidence > 0.99 and ex.sufficient
    assert set(ex.stats()) >= {"target", "area", "forward_images", "wall_time_s", "device"}


def test_explicit_target_and_queue_options():
    ex = rexjax.explain(ORACLE, IMAGE, key=0, iters=4, target=1, queue_style="all", refine_static=True)
    assert ex.target == 1 and ex.mask[PATCH].all()


@pytest.mark.parametrize(
    "image,kwargs,match",
    [
        (np.zeros((H, W)), {}, "rank 3"),
        (np.full((H, W, 3), np.nan, np.float32), {}, "non-finite"),
        (IMAGE, {"target": 2}, "target must be a class index"),
        (IMAGE, {"target": -1}, "target must be a class index"),
        (oracles.image(3, 3), {}, "smaller than the minimum box"),
        (IMAGE, {"iters": 0}, "iters must be > 0"),
        (IMAGE, {"mask_mode": "purple"}, "unknown mask_mode"),
        (IMAGE, {"key": None}, "key is required"),
        (IMAGE, {"mask_value": 0}, "unknown option"),
        (IMAGE, {"responsibility": "bogus"}, "responsibility must be one of"),
    ],
)
def test_bad_input_errors(image, kwargs, match):
    kwargs = {"key": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        rexjax.explain(ORACLE, image, **kwargs)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="no_such_model"):
        rexjax.explain("no_such_model", IMAGE, key=0)


def test_not_an_image_file(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a JPEG")
    with pytest.raises(ValueError, match="notes.jpg"):
        rexjax.explain("efficientnet_lite0", str(bad), key=0)


def test_wrong_channels_for_zoo_model():
    with pytest.raises(ValueError, match="3 channels"):
        rexjax.explain("efficientnet_lite0", np.zeros((224, 224, 4), np.float32), key=0)


@pytest.mark.parametrize("refine_static", [False, True])
def test_more_active_boxes_per_job(refine_static):
    ex = rexjax.explain(ORACLE, IMAGE, key=0, iters=4, max_active=5, refine_static=refine_static)
    assert ex.sufficient and ex.mask[PATCH].all()


def test_engines_are_built_lazily(explainer):
    """A global explanation builds neither the spatial nor the spotlight/contrastive engines;
    a spatial one builds the spatial engine only."""
    explainer(IMAGE, key=0)
    assert not {"_spatial", "_multiple", "_contrastive"} & set(vars(explainer))
    spatial = Explainer(explainer.classifier, explainer.config.replace(strategy="spatial"))
    spatial(IMAGE, key=0)
    assert "_spatial" in vars(spatial) and not {"_multiple", "_contrastive"} & set(vars(spatial))


def test_explainers_are_kept_on_the_classifier(monkeypatch):
    """Calls on one Classifier with one (config, mask_mode, batch_size) build one Explainer,
    shared by `rexjax.explain` and the ReX method; another config or another Classifier
    builds its own; nothing outside the Classifier keeps it alive. Catches a cache that
    misses (recompiling every call), one keyed without the Classifier (two models sharing an
    explainer), or a module-level cache holding the model."""
    built = []

    class Counting(Explainer):
        def __init__(self, *args, **kwargs):
            built.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(explainer_module, "Explainer", Counting)
    clf = rexjax.Classifier.of(ORACLE)
    a = rexjax.explain(clf, IMAGE, key=2, iters=3, batch_size=8)
    b = rexjax.explain(clf, IMAGE, key=2, iters=3, batch_size=8)
    attribution = rexjax.methods.make("rex", iters=3, batch_size=8)(clf, IMAGE, key=2)
    assert len(built) == 1
    assert np.array_equal(a.responsibility, b.responsibility) and np.array_equal(attribution.map, a.responsibility)
    config = a.config
    assert explainer_module.explainer_for(clf, config, 0.0, 8) is built[0]  # what both calls used
    explainer_module.explainer_for(clf, config.replace(iters=4), 0.0, 8)  # another config
    explainer_module.explainer_for(clf, config, 0.0, 16)  # another batch size
    explainer_module.explainer_for(clf, config, 1.0, 8)  # another mask mode
    assert len(built) == 4
    other = rexjax.Classifier.of(ORACLE)
    assert explainer_module.explainer_for(other, config, 0.0, 8) is built[4]
    assert len(built) == 5 and built[4].classifier is other and built[0].classifier is clf
    gone = weakref.ref(clf)
    del clf, attribution, built[:]
    gc.collect()
    assert gone() is None


def test_config_from_nested_dicts_and_unknown_options():
    cfg = rexjax.RexConfig.from_dict({"iters": 3, "spatial": {"initial_radius": 7}, "spotlight": {"spotlights": 2},
                                      "distribution_args": [2, 3]})
    assert cfg.spatial.initial_radius == 7 and cfg.spotlight.spotlights == 2 and cfg.search.distribution_args == (2, 3)
    with pytest.raises(ValueError, match="unknown option.*itters"):
        rexjax.RexConfig.from_dict({"itters": 3})
    with pytest.raises(ValueError, match="spotlights must be"):
        rexjax.RexConfig.from_dict({"spotlight": {"spotlights": 0}})
