"""Reference numbers for LIME's kernel/distance and KernelSHAP's coalition-size law.

Writes tests/fixtures/lime_shapley/reference.json, read by tests/saliency/test_shapley_lime.py.
Run ONCE, in a throwaway virtual environment holding the real `lime` package (never in the
project's .venv, never as a project dependency; this script imports no rexjax code):

    python3 -m venv /tmp/limevenv && /tmp/limevenv/bin/pip install lime==0.2.0.1
    /tmp/limevenv/bin/python tools/make_lime_shapley_fixtures.py [OUT.json]

LIME: `lime.lime_image.LimeImageExplainer.explain_instance` on an all-ones 8 x 9 image with
the test suite's 6 rectangular superpixels (SEG), `hide_color=0` (hidden superpixels show 0,
as rexjax's `mask_mode=0`), the class-1 score of the "visible-fraction game" `nonlinear(v)`
(v_j = visible fraction of superpixel j; the same game as the tests). LimeBase is wrapped
to record exactly what lime fitted: its samples z (row 0 all ones, then lime's own
`randint(0, 2)` draws), the labels, the cosine distances, the kernel weights and the ridge
coefficients / intercept. Two cases: lime's defaults (kernel width 0.25, Ridge alpha 1)
and kernel width 0.5 with Ridge alpha 0.1 (so a hard-coded width or alpha cannot pass).

KernelSHAP: the Shapley kernel pi(z) = (M-1) / (C(M,|z|) |z| (M-|z|)) (Lundberg & Lee 2017,
Theorem 2) summed over every proper coalition of each size by brute-force enumeration, in
exact rational arithmetic: the law of |z| a sampler must draw from (M = 6 and 10).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lime_shapley" / "reference.json"
SEG = np.repeat(np.repeat(np.arange(6).reshape(2, 3), 4, 0), 3, 1)  # 8 x 9, 6 superpixels
CASES = [  # (name, kernel_width, ridge alpha, num_samples, random_state)
    ("defaults", 0.25, 1.0, 120, 0),
    ("width_0.5_alpha_0.1", 0.5, 0.1, 120, 1),
]


def nonlinear(v):
    """tests/saliency/test_shapley_lime.py::nonlinear, in numpy."""
    pair = 0.3 * v[:, 0] * v[:, 1] - 0.05 * v[:, 5] * v[:, 0]
    return pair + 0.2 * v[:, 2] + 0.1 * np.maximum(v[:, 3], v[:, 4]) + 0.1


def classifier_fn(images):
    onehot = np.eye(6)[SEG]  # [H, W, 6]
    v = np.einsum("bhw,hwj->bj", np.asarray(images, np.float64)[..., 0], onehot) / onehot.sum((0, 1))
    f = nonlinear(v)
    return np.stack([1 - f, f], -1)


def lime_case(kernel_width, alpha, num_samples, random_state):
    from lime import lime_base, lime_image
    from sklearn.linear_model import Ridge

    seen = {}
    original = lime_base.LimeBase.explain_instance_with_data

    def recording(self, data, labels, distances, label, *args, **kwargs):
        seen.update(z=data.copy(), labels=labels[:, label].copy(), distances=distances.copy(),
                    weights=self.kernel_fn(distances).copy())
        return original(self, data, labels, distances, label, *args, **kwargs)

    lime_base.LimeBase.explain_instance_with_data = recording
    try:
        explainer = lime_image.LimeImageExplainer(kernel_width=kernel_width, random_state=random_state)
        exp = explainer.explain_instance(
            np.ones((8, 9, 3)), classifier_fn, labels=(1,), top_labels=None, hide_color=0,
            num_samples=num_samples, batch_size=16, segmentation_fn=lambda image: SEG,
            model_regressor=Ridge(alpha=alpha, fit_intercept=True),
        )
    finally:
        lime_base.LimeBase.explain_instance_with_data = original
    coef = np.zeros(6)
    for j, c in exp.local_exp[1]:
        coef[j] = c
    return {
        "kernel_width": kernel_width, "alpha": alpha, "num_samples": num_samples, "random_state": random_state,
        "z": seen["z"].astype(int).tolist(), "labels": seen["labels"].tolist(),
        "distances": seen["distances"].tolist(), "weights": seen["weights"].tolist(),
        "coefficients": coef.tolist(), "intercept": float(exp.intercept[1]),
    }


def size_law(m: int) -> dict:
    """P(|z| = s) for z drawn with probability proportional to the Shapley kernel, by
    enumerating all 2^M - 2 proper coalitions (exact fractions)."""
    mass = {s: Fraction(0) for s in range(1, m)}
    for z in itertools.product((0, 1), repeat=m):
        s = sum(z)
        if 0 < s < m:
            mass[s] += Fraction(m - 1, math.comb(m, s) * s * (m - s))
    total = sum(mass.values())
    return {
        "M": m, "sizes": list(range(1, m)),
        "probability": [float(mass[s] / total) for s in range(1, m)],
        "probability_exact": [str(mass[s] / total) for s in range(1, m)],
        "kernel_weight": [float(Fraction(m - 1, math.comb(m, s) * s * (m - s))) for s in range(1, m)],
    }


def main() -> None:
    import lime
    import sklearn
    from importlib.metadata import version

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    data = {
        "provenance": {
            "script": "tools/make_lime_shapley_fixtures.py",
            "command": "python3 -m venv /tmp/limevenv && /tmp/limevenv/bin/pip install lime==0.2.0.1 && "
                       "/tmp/limevenv/bin/python tools/make_lime_shapley_fixtures.py",
            "lime": version("lime"), "scikit-learn": sklearn.__version__, "numpy": np.__version__,
            "python": sys.version.split()[0], "lime_module": lime.__name__,
        },
        "segments": SEG.tolist(),
        "lime": {name: lime_case(w, a, n, rs) for name, w, a, n, rs in CASES},
        "shapley_size_law": {str(m): size_law(m) for m in (6, 10)},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
