"""Tiny models for the study tests, loadable by a study config as
'tests.experiments.models:tiny_a' (16 x 16 inputs, 3 classes, Grad-CAM features, and the
Flax-style apply_fn / variables ConvAD needs)."""

import jax

from tests.helpers.tiny import TinyModel


class Tiny(TinyModel):
    """TinyModel with its own weights (seed) and name, and `apply_fn(variables, x)`."""

    def __init__(self, seed: int, name: str):
        super().__init__()
        if seed:
            k1, k2 = jax.random.split(jax.random.key(seed))
            self.w = jax.random.normal(k1, (3, 3, 3, 4)) * 0.5
            self.wd = jax.random.normal(k2, (4, 3))
        self.name = name

    def apply_fn(self, variables, xb):
        return self.features_fn(variables, xb)[0]


def tiny_a() -> Tiny:
    return Tiny(0, "tiny_a")


def tiny_b() -> Tiny:
    return Tiny(5, "tiny_b")
