"""`Classifier.prepare`: arrays are checked against the model's channel count (`model.channels`,
3 when the model does not say), so grey (1) and RGBA (4) models take their own images."""

import numpy as np
import pytest
from PIL import Image

from rexjax.classifier import Classifier


class Model:
    """A zoo-like model with preprocessing and, optionally, a declared channel count."""

    name = "m"

    def __init__(self, channels=None):
        if channels is not None:
            self.channels = channels
        self.mode = {None: "RGB", 1: "L", 3: "RGB", 4: "RGBA"}[channels]

    def __call__(self, xb):
        return xb.mean((1, 2))

    def preprocess(self, image):
        x = np.asarray(image.convert(self.mode).resize((8, 8)), np.float32) / 255
        return x.reshape(8, 8, -1)


@pytest.mark.parametrize("channels", [1, 4, None])
def test_prepare_takes_the_models_channels(channels):
    """An array with the model's channel count passes (grey, RGBA, and 3 by default), any other
    count is one ValueError naming the count; a PIL image goes through the model's own
    preprocessing. Catches a prepare that still insists on 3 channels."""
    clf = Classifier(Model(channels))
    c = channels or 3
    assert clf.prepare(np.zeros((8, 8, c), np.float32)).shape == (8, 8, c)
    assert clf.prepare(Image.new("RGB", (20, 10), (9, 99, 200))).shape == (8, 8, c)
    for other in {1, 3, 4} - {c}:
        with pytest.raises(ValueError, match=rf"image must have the model's {c} channels .*got shape \(8, 8, {other}\)"):
            clf.prepare(np.zeros((8, 8, other), np.float32))


def test_a_model_without_preprocessing_takes_any_channels():
    """A plain callable has no input convention to check against (its own shape check runs
    when it is called)."""
    assert Classifier(lambda xb: xb.mean((1, 2))).prepare(np.zeros((4, 4, 5), np.float32)).shape == (4, 4, 5)
