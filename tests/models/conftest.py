"""Shared fixtures for the model-zoo tests (one loaded model per session)."""

from pathlib import Path

import numpy as np
import pytest

IMAGES = Path(__file__).resolve().parents[2] / "third_party" / "images"
# vendored image -> expected ImageNet top-1 (the zoo's check that a converted model classifies)
TOP1 = {"ladybird.jpg": 301, "peacock.jpg": 84, "starfish.jpg": 327, "tennis.jpg": 752, "2008_000033.jpg": 404}


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Weights cache in a temp dir so tests never touch ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("REXJAX_CACHE_DIR", str(tmp_path_factory.mktemp("rexjax_cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def lite0():
    import rexjax.models as M

    return M.load("efficientnet_lite0")


def _top1_batch(model):
    x = np.stack([model.preprocess(IMAGES / name) for name in TOP1])
    return x, np.asarray(model(x)).argmax(-1)


@pytest.fixture(scope="session")
def top1():
    """(expected {image: class}, fn(model) -> (x[5,H,W,3], predicted ids)) for the 5 images."""
    return TOP1, _top1_batch


@pytest.fixture(scope="session")
def images_dir():
    return IMAGES
