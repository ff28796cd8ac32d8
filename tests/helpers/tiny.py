"""A tiny duck-typed zoo model (16 x 16 inputs, 3 classes) with a Grad-CAM feature point."""

import jax
import numpy as np
from PIL import Image


class TinyModel:
    """Duck-typed zoo model: a strided conv, global mean, dense; 16 x 16 inputs, 3 classes."""

    name = "tiny"
    input_size = (16, 16)
    labels = ("zero", "one", "two")
    feature_names = ("feat", "pooled")
    variables = {}

    def __init__(self):
        k1, k2 = jax.random.split(jax.random.key(0))
        self.w = jax.random.normal(k1, (3, 3, 3, 4)) * 0.5
        self.wd = jax.random.normal(k2, (4, 3))

    def features_fn(self, variables, xb, perturbations=None):
        dn = ("NHWC", "HWIO", "NHWC")
        feat = jax.nn.relu(jax.lax.conv_general_dilated(xb, self.w, (2, 2), "SAME", dimension_numbers=dn))
        if perturbations is not None:
            feat = feat + perturbations["feat"]
        pooled = feat.mean((1, 2))
        return pooled @ self.wd, {"feat": feat, "pooled": pooled}

    def __call__(self, xb):
        return self.features_fn(None, xb)[0]

    def preprocess(self, path):
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB").resize((16, 16)), np.float32) / 255.0
