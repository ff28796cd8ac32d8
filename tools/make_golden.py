"""Freezes the golden arrays of issue 10 (written once, before the API refactor; rerun it to
check that the current API still gives them).

    .venv/bin/python tools/make_golden.py                    # writes tests/fixtures/golden/golden.npz
    .venv/bin/python tools/make_golden.py /tmp/golden.npz    # writes elsewhere, e.g. to compare
    .venv/bin/python tools/make_golden.py --rex              # recomputes the rex/* keys only and
                                                             # keeps every other key of the committed file

ReX (EfficientNet-Lite0, the paper's budget `PAPER_BUDGET` at iters 4, key 0, batch 16): responsibility map and
mask on 3 vendored images. Every baseline's map on ladybird.jpg with small settings (see
BASELINES), key 1, mask_mode 0 (the defaults), through `rexjax.methods.make(name, **cfg)`.
`tests/test_golden.py` (ReX) and `tests/saliency/test_golden_baselines.py` recompute the same
calls and assert identical arrays.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests/fixtures/golden/golden.npz"
IMAGES = ("ladybird.jpg", "peacock.jpg", "starfish.jpg")
BASELINE_IMAGE = "ladybird.jpg"
REX = dict(iters=4, batch_size=16)  # over rexjax.causal.PAPER_BUDGET
BASELINE_KEY = 1
BASELINES = {
    "rise": dict(n_masks=48, batch_size=16),
    "shape": dict(n_masks=48, batch_size=16),
    "occlusion": dict(window=56, stride=56, batch_size=16),
    "kernel_shap": dict(n_samples=32, batch_size=16),
    "lime": dict(n_samples=32, batch_size=16),
    "integrated_gradients": dict(n_steps=4, batch_size=4),
    "gradient_shap": dict(n_samples=4, batch_size=4),
    "noise_tunnel": dict(n_samples=2, base_config=dict(n_steps=4, batch_size=4)),
    "lrp": dict(),
    "gradcam": dict(),
    "gradcam_pp": dict(),
}


def image(classifier, name: str):
    """A vendored image in the classifier's input space."""
    return classifier.prepare(str(REPO / "third_party/images" / name))


def top1(classifier, x) -> int:
    return int(np.argmax(np.asarray(classifier.full_probs(x))))


def main(argv) -> None:
    from rexjax import methods
    from rexjax.classifier import Classifier

    rex_only = "--rex" in argv
    args = [a for a in argv[1:] if a != "--rex"]
    path = Path(args[0]) if args else GOLDEN
    clf = Classifier.of("efficientnet_lite0")
    out = {}
    if rex_only:  # issue 11 changed ReX's numbers on purpose; the baselines' keys stay as they are
        with np.load(GOLDEN) as old:
            out = {k: old[k] for k in old.files if not k.startswith("rex/")}
    from rexjax.causal import PAPER_BUDGET

    rex = methods.make("rex", **{**PAPER_BUDGET, **REX})
    for name in IMAGES:
        x = image(clf, name)
        a = rex(0, clf, x, top1(clf, x))
        ex = a.record
        out[f"rex/{name}/responsibility"] = np.asarray(a.map)
        out[f"rex/{name}/mask"] = ex.mask
        out[f"rex/{name}/target"] = np.int32(ex.target)
        print(name, ex.target, ex.area, a.forward_images)
    x = image(clf, BASELINE_IMAGE)
    target = top1(clf, x)
    for name, cfg in ({} if rex_only else BASELINES).items():
        a = methods.make(name, **cfg)(BASELINE_KEY, clf, x, target)
        out[f"baseline/{name}"] = np.asarray(a.map)
        print(name, float(np.abs(np.asarray(a.map)).max()), a.forward_images)
    np.savez_compressed(path, **out)
    print("wrote", path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main(sys.argv)
