
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from rexjax import saliency
from rexjax.commands import evaluate as ev


class TinyModel:
    """Duck-typed zoo Model: preprocess, labels, logits, features_fn with perturbations."""

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


def test_registry_names_and_views():
    assert saliency.canonical("IG") == "integrated_gradients"
    with pytest.raises(ValueError, match="unknown saliency method"):
        saliency.canonical("deeplift")
    model = TinyModel()
    x = jnp.asarray(np.random.default_rng(0).random((16, 16, 3)), jnp.float32)
    cam = saliency.for_model("gradcam", model)(None, x, 1)
    assert cam.map.shape == (16, 16)
    # the zoo adapter routes the gradient through the perturbation hook
    f = saliency.zoo_features_and_logits(model, "feat")
    feat, logits = f(x[None], None)
    g = jax.grad(lambda d: f(x[None], d)[1][0, 1])(jnp.zeros_like(feat))
    np.testing.assert_allclose(g[0], jnp.broadcast_to(model.wd[:, 1] / 64, (8, 8, 4)), rtol=1e-6)
    assert saliency.gradcam.__module__ and saliency.METHODS["lime"][1] == "masked"


def test_parse_overrides():
    assert ev.parse_overrides(["rise.n_masks=100", "ig.rule=riemann_middle"]) == {
        "rise": {"n_masks": 100}, "integrated_gradients": {"rule": "riemann_middle"}}
    with pytest.raises(ValueError, match="METHOD.PARAM"):
        ev.parse_overrides(["n_masks=3"])


def test_evaluate_rows_and_summary(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        Image.fromarray((rng.random((20, 24, 3)) * 255).astype(np.uint8)).save(tmp_path / f"{name}.png")
    masks = tmp_path / "masks"
    masks.mkdir()
    seg = np.zeros((20, 24), np.uint8)
    seg[:10] = 255
    Image.fromarray(seg).save(masks / "a.png")
    model = TinyModel()
    rows = ev.evaluate(
        ev.list_images(str(tmp_path)), ["rise", "ig", "gradcam", "occlusion"], model, mask_mode="0",
        convention="rex", seed=0, batch_size=8, masks_dir=str(masks), log=lambda s: None,
        overrides={"rise": {"n_masks": 16}, "integrated_gradients": {"n_steps": 4}, "occlusion": {"window": 8}},
    )
    assert len(rows) == 8 and set(rows[0]) == set(ev.COLUMNS)
    for r in rows:
        assert 0 < r["area"] <= 1 and r["ins"] >= 0 and r["del"] >= 0 and r["forward_images"] > 0
        if r["image"] == "a.png":
            assert r["IN"] + r["OUT"] == pytest.approx(1.0)
        else:
            assert r["IN"] is None
    table = ev.summary_table(rows)
    assert table.splitlines()[0].split()[:7] == ["tool", "area", "std", "ins", "del", "IN", "OUT"]
    assert len(table.splitlines()) == 5


def test_mask_based_methods_run_on_convad():
    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(4, (3, 3))(x))
            return nn.Dense(3)(x.mean((1, 2)))

    class FlaxModel:
        def __init__(self):
            self.module = Net()
            v = self.module.init(jax.random.key(0), jnp.zeros((1, 12, 12, 3)))
            # a conv bias makes zero-occlusion differ from ConvAD (relu(bias) vs deactivated)
            v["params"]["Conv_0"]["bias"] = jnp.full((4,), 0.5)
            self.variables = v

        def apply_fn(self, variables, x):
            return self.module.apply(variables, x)

        def __call__(self, x):
            return self.apply_fn(self.variables, x)

    model = FlaxModel()
    x = jax.random.uniform(jax.random.key(1), (12, 12, 3))
    ad = saliency.for_model("occlusion", model, mask_mode="ad", window=4, stride=4)(None, x, 0)
    zero = saliency.for_model("occlusion", model, mask_mode=0.0, window=4, stride=4)(None, x, 0)
    assert ad.map.shape == (12, 12) and bool(jnp.isfinite(ad.map).all())
    assert not np.allclose(ad.map, zero.map)
