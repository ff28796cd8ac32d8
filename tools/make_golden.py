"""Freezes the golden arrays of issue 10 (run once, before the API refactor).

    .venv/bin/python tools/make_golden.py   # writes tests/fixtures/golden/golden.npz

ReX (EfficientNet-Lite0, iters 4, key 0, batch 16, defaults otherwise): responsibility map and
mask on 3 vendored images. Every baseline's map on ladybird.jpg with small settings (see
BASELINES), key 1, batch 16. `tests/test_golden.py` recomputes the same calls through the
current API and asserts identical arrays.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

REPO = Path(__file__).resolve().parents[1]
IMAGES = ("ladybird.jpg", "peacock.jpg", "starfish.jpg")
BASELINE_IMAGE = "ladybird.jpg"
REX = dict(iters=4, batch_size=16)
BASELINES = {
    "rise": dict(n_masks=48, batch_size=16),
    "shape": dict(n_masks=48, batch_size=16),
    "occlusion": dict(window=56, stride=56, batch_size=16),
    "kernel_shap": dict(n_samples=32, batch_size=16),
    "lime": dict(n_samples=32, batch_size=16),
    "integrated_gradients": dict(n_steps=4, batch_size=4),
    "gradient_shap": dict(n_samples=4, batch_size=4),
    "noise_tunnel": dict(n_samples=2),
    "lrp": dict(),
    "gradcam": dict(),
    "gradcam_pp": dict(),
}


def main() -> None:
    import rexjax
    from rexjax import models, saliency

    model = models.load("efficientnet_lite0")
    out = {}
    explainer = rexjax.make_explainer(model, **REX)
    for name in IMAGES:
        ex = explainer(str(REPO / "third_party/images" / name), key=0)
        out[f"rex/{name}/responsibility"] = ex.responsibility
        out[f"rex/{name}/mask"] = ex.mask
        out[f"rex/{name}/target"] = np.int32(ex.target)
        print(name, ex.target, ex.area, ex.forward_images)
    x = jax.numpy.asarray(model.preprocess(str(REPO / "third_party/images" / BASELINE_IMAGE)))
    target = int(np.argmax(np.asarray(model(x[None]))[0]))
    for name, cfg in BASELINES.items():
        kw = dict(cfg)
        if name == "noise_tunnel":
            kw["base"] = saliency.integrated_gradients(n_steps=4, batch_size=4)
        s = saliency.for_model(name, model, 0.0, **kw)(jax.random.key(1), x, target)
        out[f"baseline/{name}"] = np.asarray(s.map)
        print(name, float(np.abs(np.asarray(s.map)).max()), s.forward_images)
    path = REPO / "tests/fixtures/golden/golden.npz"
    np.savez_compressed(path, **out)
    print("wrote", path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
