"""ReX on any batched callable `x[B, H, W, C] -> logits`: a ViT-style Flax patch model, non-224 input."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rexjax
from rexjax.causal import RexConfig, SpotlightConfig

H, W = 40, 56  # non-square, not 224; 5 x 7 patches of 8 px


class Block(nn.Module):
    """Pre-norm transformer block: self-attention and an MLP, both residual."""

    dim: int
    heads: int

    @nn.compact
    def __call__(self, x):
        y = nn.LayerNorm()(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads)(y, y)
        y = nn.Dense(2 * self.dim)(nn.LayerNorm()(x))
        return x + nn.Dense(self.dim)(nn.gelu(y))


class TinyViT(nn.Module):
    """Patch embedding (conv, stride = patch) + class token + position embedding + blocks."""

    patch: int = 8
    dim: int = 32
    depth: int = 2
    heads: int = 4
    classes: int = 10

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(self.dim, (self.patch, self.patch), strides=self.patch, padding="VALID")(x)
        b, gh, gw, d = x.shape
        x = x.reshape(b, gh * gw, d)
        cls = self.param("cls", nn.initializers.normal(1.0), (1, 1, d))
        pos = self.param("pos", nn.initializers.normal(0.02), (1, gh * gw + 1, d))
        x = jnp.concatenate([jnp.tile(cls, (b, 1, 1)), x], axis=1) + pos
        for _ in range(self.depth):
            x = Block(self.dim, self.heads)(x)
        return nn.Dense(self.classes)(nn.LayerNorm()(x[:, 0]))


def build():
    """First init seed whose class on the image differs from its class on the all-masked image
    (so the explanation is not trivially empty)."""
    x = jnp.asarray(np.random.default_rng(0).uniform(0.0, 1.0, (H, W, 3)), jnp.float32)
    vit = TinyViT()
    apply = jax.jit(vit.apply)
    init = jax.jit(vit.init)
    for seed in range(20):
        params = init(jax.random.key(seed), x[None])
        fn = lambda b, p=params: apply(p, b)  # noqa: E731  a plain batched callable
        if int(jnp.argmax(fn(x[None])[0])) != int(jnp.argmax(fn(jnp.zeros_like(x)[None])[0])):
            return fn, x
    raise AssertionError("no seed separates image and masked image")


@pytest.fixture(scope="module")
def vit():
    """(callable, image, its Classifier, the config): the compiled explainers live on the
    Classifier, so the tests share them."""
    fn, x = build()
    spot = SpotlightConfig(spotlights=3, initial_radius=8, budget=4)
    return fn, x, rexjax.Classifier.of(fn), RexConfig.from_dict({"iters": 4, "spotlight": spot})


def top1(fn, x):
    return int(jnp.argmax(fn(jnp.asarray(x)[None])[0]))


def test_vit_explained_end_to_end(vit):
    fn, x, clf, config = vit
    ex = rexjax.explain(clf, x, key=0, config=config)
    assert ex.responsibility.shape == (H, W) and ex.mask.shape == (H, W)
    assert ex.target == top1(fn, x) and ex.target_label is None
    assert ex.sufficient and top1(fn, x * ex.mask[..., None]) == ex.target  # independent check
    assert 0 < ex.area < 1 and ex.responsibility.max() > 0
    assert ex.forward_images == 1 + ex.forward_images_map + ex.forward_images_extract


def test_vit_spatial_and_multiple(vit):
    fn, x, clf, config = vit
    ex = rexjax.explain(clf, x, key=1, config=config, strategy="spatial", multiple=2, permitted_overlap=0.2)
    assert ex.strategy == "spatial" and ex.multiple is not None
    assert ex.sufficient and top1(fn, x * ex.mask[..., None]) == ex.target
    parts = ex.multiple.parts
    assert 1 <= len(parts) <= 2
    for p in parts:
        assert p.sufficient and top1(fn, x * p.mask[..., None]) == ex.target
    assert all(ex.multiple.dice[i, j] <= 0.2 for i in range(len(parts)) for j in range(len(parts)) if i != j)
