"""A tiny zoo-style model with torch weights on disk (no torch): `register()` adds
`tiny_pth` (conv 3->4, global mean, dense 4->5; 8 x 8 inputs) to the registry, and
`write_weights(path, seed)` writes a matching zip `.pth` whose values depend on `seed`."""

import flax.linen as nn
import numpy as np

from rexjax import models
from tests.helpers import torch_pickle as tp

NAME = "tiny_pth"
SHAPES = {"conv.weight": (4, 3, 3, 3), "conv.bias": (4,), "fc.weight": (5, 4), "fc.bias": (5,)}


class TinyPth(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3), name="conv")(x))
        return nn.Dense(5, name="fc")(x.mean(axis=(1, 2)))


def key_fn(path: tuple) -> str:
    return f"{path[-2]}.{'weight' if path[-1] == 'kernel' else 'bias'}"


def spec() -> models.ModelSpec:
    return models.ModelSpec(name=NAME, make_module=TinyPth, input_size=(8, 8), num_classes=5,
                            labels=lambda: tuple("abcde"), key_fn=key_fn)


def register() -> None:
    models.register(NAME, spec, overwrite=True)


def state_dict(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}


def write_weights(path, seed: int = 0, sd: dict | None = None) -> dict:
    """Writes the state_dict of `seed` (or `sd`) as a zip .pth at `path`; returns it."""
    sd = state_dict(seed) if sd is None else sd
    entries, storages = [], {}
    for i, (k, v) in enumerate(sd.items()):
        stride = tuple(int(np.prod(v.shape[j + 1:])) for j in range(v.ndim))
        entries.append((k, tp.tensor("FloatStorage", str(i), v.size, 0, v.shape, stride)))
        storages[str(i)] = v
    tp.write_zip(path, entries, storages)
    return sd
