"""ConvAD on the model zoo: Theorem 1 and exact deactivation (tau 0 and 0.5).

Fast: small variants of every family at 64 px (random init), and EfficientNet-Lite0 with
real weights at one tau. Slow: full-size models at 224 px, both taus.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers.ad_helpers import check_convad, init_model

KEY = jax.random.key(0)


def small_module(family: str):
    """A small variant of a zoo family (same blocks, fewer/narrower stages)."""
    if family == "efficientnet_lite":
        from rexjax.models.efficientnet_lite import EfficientNetLite

        return EfficientNetLite(width=0.25, depth=0.25, num_classes=10)
    if family == "resnet":
        from rexjax.models.resnet import ResNet, ResNetConfig

        return ResNet(config=ResNetConfig(depths=(1, 2, 1, 1), planes=(4, 8, 8, 8), stem_width=8, num_classes=10))
    if family == "regnet":
        from rexjax.models.regnet import RegNet, RegNetConfig

        cfg = RegNetConfig(widths=(8, 16, 24), depths=(1, 2, 1), group_sizes=(4, 8, 8), stem_width=8, num_classes=10)
        return RegNet(config=cfg)
    if family == "efficientnet_v2":
        from rexjax.models.efficientnet_v2 import EfficientNetV2, EfficientNetV2Config, StageConfig as S

        cfg = EfficientNetV2Config(
            stages=(S(True, 1, 3, 1, 8, 8, 1), S(True, 4, 3, 2, 8, 16, 2), S(False, 4, 3, 2, 16, 24, 2)),
            last_channel=32,
            num_classes=10,
        )
        return EfficientNetV2(config=cfg)
    raise ValueError(family)


FAMILIES = ["efficientnet_lite", "resnet", "regnet", "efficientnet_v2"]


@pytest.mark.parametrize("family", FAMILIES)
def test_small_zoo_model(family):
    try:
        module = small_module(family)
    except ImportError as e:  # the family has not landed yet
        pytest.skip(f"{family}: {e}")
    x = jax.random.normal(jax.random.key(1), (2, 48, 48, 3))
    v = init_model(module, x)
    check_convad(module.apply, v, x, jax.random.key(2))


def _vendored_batch(model, n):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "third_party" / "images"
    paths = sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
    return jnp.asarray(np.stack([model.preprocess(p) for p in paths]))


def test_lite0_real_weights_tau05():
    from rexjax.models import load

    model = load("efficientnet_lite0")
    x = _vendored_batch(model, 2)
    check_convad(model.apply_fn, model.variables, x, jax.random.key(3), taus=(0.5,))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_lite_real_weights(name):
    from rexjax.models import load

    model = load(name)
    x = _vendored_batch(model, 2)
    check_convad(model.apply_fn, model.variables, x, jax.random.key(4))


@pytest.mark.slow
@pytest.mark.parametrize(
    "module_path,cls,config",
    [
        ("rexjax.models.resnet", "ResNet", "resnet50"),
        ("rexjax.models.regnet", "RegNet", "regnety_120"),
        ("rexjax.models.efficientnet_v2", "EfficientNetV2", "efficientnet_v2_s"),
    ],
)
def test_full_zoo_model(module_path, cls, config):
    import importlib

    mod = importlib.import_module(module_path)
    module = getattr(mod, cls)(config=mod.CONFIGS[config])
    x = jax.random.normal(jax.random.key(1), (2, 224, 224, 3))
    v = init_model(module, x)
    check_convad(module.apply, v, x, jax.random.key(5))
