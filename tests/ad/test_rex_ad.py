"""ReX with mask_mode="ad" (ConvAD) on EfficientNet-Lite0: every vendored image gets a
sufficient explanation, and sufficiency is re-checked independently under AD."""

from __future__ import annotations

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

IMAGES = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "third_party" / "images").iterdir()
    if p.suffix.lower() in (".jpg", ".jpeg", ".png")
)


@pytest.mark.slow
def test_rex_ad_lite0_sufficient_on_vendored_images():
    from rexjax.causal import Explainer
    from rexjax.classifier import Classifier
    from rexjax.models import load

    assert IMAGES, "no vendored images"
    model = load("efficientnet_lite0")
    classifier = Classifier.of(model)
    explainer = Explainer(classifier, mask_mode="ad")
    classify = classifier.masked("ad")
    for path in IMAGES:
        ex = explainer(path, key=0)
        x = jnp.asarray(model.preprocess(path))
        probs = np.asarray(classify(x, jnp.asarray(ex.mask, jnp.float32)[None]))[0]
        assert ex.sufficient, f"{path.name}: no sufficient explanation"
        assert 0 < ex.area < 1, f"{path.name}: area {ex.area}"
        assert int(probs.argmax()) == ex.target, f"{path.name}: explanation not sufficient under AD"
