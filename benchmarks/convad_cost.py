"""ConvAD forward cost relative to the plain forward pass (jitted, same device).

    .venv/bin/python -m benchmarks.convad_cost --models=efficientnet_lite0,resnet50 \
        --batch_sizes=1,64 --repeats=5

For each model and batch size: compile both `apply_fn` and `convad(apply_fn)`, then report
the median wall time of `--repeats` calls each (after one warm-up), and the ratio AD/plain.
Masks are random boxes (the ReX workload). Models missing from the registry are built
from their module config with random init (cost does not depend on the weights).
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
from absl import app, flags

from benchmarks.timing import first_and_median
from rexjax.ad import convad

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line (defined only when run as a script, so modules import each other freely)."""
    flags.DEFINE_list("models", ["efficientnet_lite0", "resnet50"], "zoo model names")
    flags.DEFINE_list("batch_sizes", ["1", "64"], "batch sizes")
    flags.DEFINE_integer("repeats", 5, "timed calls per measurement (median reported)", lower_bound=1)
    flags.DEFINE_float("tau", 0.0, "ConvAD threshold")
    flags.DEFINE_enum("pool", "deactivate", ["deactivate", "masked_mean"], "ConvAD pooling rule")


FALLBACK = {
    "resnet50": ("rexjax.models.resnet", "ResNet"),
    "regnety_120": ("rexjax.models.regnet", "RegNet"),
    "efficientnet_v2_s": ("rexjax.models.efficientnet_v2", "EfficientNetV2"),
}


def get_model(name: str, size: int = 224):
    """(apply_fn, variables, input size) for a zoo model name."""
    from rexjax import models

    if name in models.known_models():
        m = models.load(name)
        return m.apply_fn, m.variables, m.input_size
    mod_name, cls = FALLBACK[name]
    mod = importlib.import_module(mod_name)
    module = getattr(mod, cls)(config=mod.CONFIGS[name])
    variables = jax.jit(module.init)(jax.random.key(0), jnp.zeros((1, size, size, 3)))
    return module.apply, variables, (size, size)


def box_masks(key, b, h, w):
    """Random visible boxes (1 = visible) f32[b, h, w]."""
    k1, k2 = jax.random.split(key)
    r0 = jax.random.randint(k1, (b, 2), 0, h // 2)
    r1 = r0 + jax.random.randint(k2, (b, 2), h // 4, h // 2)
    rows, cols = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
    inside = (rows >= r0[:, 0, None, None]) & (rows < r1[:, 0, None, None])
    inside &= (cols >= r0[:, 1, None, None]) & (cols < r1[:, 1, None, None])
    return inside.astype(jnp.float32)


def main(argv):
    del argv
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), tau={FLAGS.tau}, pool={FLAGS.pool}")
    print("| model | batch | plain ms | AD ms | AD / plain | compile plain s | compile AD s |")
    print("|---|---|---|---|---|---|---|")
    for name in FLAGS.models:
        apply_fn, variables, (h, w) = get_model(name)
        plain = jax.jit(apply_fn)
        ad = jax.jit(convad(apply_fn, tau=FLAGS.tau, pool=FLAGS.pool))
        for b in (int(s) for s in FLAGS.batch_sizes):
            x = jax.random.normal(jax.random.key(1), (b, h, w, 3))
            masks = box_masks(jax.random.key(2), b, h, w)
            cp, tp = first_and_median(plain, variables, x, repeats=FLAGS.repeats)
            ca, ta = first_and_median(ad, variables, x, masks, repeats=FLAGS.repeats)
            row = f"| {name} | {b} | {1e3 * tp:.1f} | {1e3 * ta:.1f} | {ta / tp:.2f} | {cp:.1f} | {ca:.1f} |"
            print(row, flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
