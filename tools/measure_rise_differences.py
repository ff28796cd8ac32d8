"""Measures two known differences between rexjax and the RISE authors' code (eclique/RISE),
for BUILD_NOTES (issue 11 item 17). Prints a report; writes nothing.

    PYTHONPATH=. .venv/bin/python tools/measure_rise_differences.py [N_IMAGES] [N_MASKS]

1. Insertion substrate of the "rise" convention. RISE (evaluation.py / Evaluation.ipynb):
   `gkern(11, 5)` = scipy `gaussian_filter` of an 11 x 11 delta with sigma 5 (mode reflect, so
   the 11 x 11 kernel is the reflected-folded Gaussian, nearly flat), applied with
   `conv2d(padding=5)`: zero padding in the normalised input space. rexjax: `masking.
   gaussian_blur(x, 5)`, a separable Gaussian of radius 15 (3 sigma) with edge padding.
   Measured on the vendored images in EfficientNet-Lite0's input space: |difference| of the
   substrates (interior / border band), and the insertion AUC (RISE convention, step 224) of
   the same saliency map over each substrate.
2. Mask border. RISE up-samples the s x s grid with skimage `resize(order=1, mode="reflect",
   anti_aliasing=False)`; rexjax's `rise_mask` (bilinear) clamps at the edge. With the same
   cells and shifts: |difference| of the masks, where it is, and the RISE maps on Lite0 built
   from each mask set (correlation, relative L2 difference, insertion AUC).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage
import skimage.transform

from rexjax import batching, metrics, models
from rexjax.classifier import Classifier
from rexjax.masking import gaussian_blur
from rexjax.metrics.insertion_deletion import auc, curve_counts
from rexjax.saliency.rise import rise_mask

IMAGES = Path(__file__).resolve().parents[1] / "third_party" / "images"


def rise_blur(x: np.ndarray, klen: int = 11, sigma: float = 5.0) -> np.ndarray:
    """eclique/RISE's insertion substrate on x[H, W, C] (per channel: conv2d with gkern,
    zero padding klen // 2)."""
    delta = np.zeros((klen, klen))
    delta[klen // 2, klen // 2] = 1
    k = scipy.ndimage.gaussian_filter(delta, sigma)
    # conv2d with zero padding = correlate with a symmetric kernel, constant 0 outside
    return np.stack([scipy.ndimage.correlate(x[..., c], k, mode="constant", cval=0.0) for c in range(x.shape[-1])], -1)


def insertion_auc(classifier, x, saliency, target, substrate, step=224, batch_size=16):
    """The RISE convention's insertion AUC with an explicit substrate image."""
    conv = metrics.RISE._replace(step=step)
    n = x.shape[0] * x.shape[1]
    counts = jnp.asarray(curve_counts(n, step, True))
    rank = metrics.pixel_rank(jnp.asarray(saliency))
    sub = jnp.asarray(substrate, x.dtype)

    @jax.jit
    def curve(x, sub):
        def evaluate(idx):
            shown = (rank[None] < counts[idx][:, None, None]).astype(x.dtype)[..., None]
            return classifier.probs(x[None] * shown + sub[None] * (1 - shown))[:, target]

        return batching.push(evaluate, counts.shape[0], batch_size=batch_size, read=lambda v, idx: v).values

    ins = np.asarray(curve(x, sub))
    return auc(ins, conv, n, 1.0)


def skimage_mask(cells: np.ndarray, dy: int, dx: int, hw) -> np.ndarray:
    h, w = hw
    s = cells.shape[0]
    ch, cw = math.ceil(h / s), math.ceil(w / s)
    up = skimage.transform.resize(cells, ((s + 1) * ch, (s + 1) * cw), order=1, mode="reflect", anti_aliasing=False)
    return up[dy:dy + h, dx:dx + w]


def main():
    n_images = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    n_masks = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    model = models.load("efficientnet_lite0")
    clf = Classifier.of(model)
    paths = sorted(p for p in IMAGES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n_images]
    print(f"model efficientnet_lite0 (weights {model.weights_path}), images {[p.name for p in paths]}")

    # ---- 1. blur substrate ------------------------------------------------------------
    print("\n1. insertion substrate: RISE gkern(11, 5) + zero padding vs rexjax gaussian_blur(sigma 5)")
    rows = []
    for path in paths:
        x = clf.prepare(path)
        xn = np.asarray(x, np.float64)
        ours = np.asarray(gaussian_blur(x, 5.0), np.float64)
        theirs = rise_blur(xn)
        d = np.abs(ours - theirs)
        band = np.zeros(x.shape[:2], bool)
        band[:5], band[-5:], band[:, :5], band[:, -5:] = True, True, True, True
        probs = np.asarray(clf.full_probs(x))
        t = int(probs.argmax())
        # two maps: a centre-first map and a Grad-free "map" = the image's own brightness
        yy, xx = np.mgrid[: x.shape[0], : x.shape[1]]
        centre = -((yy - x.shape[0] / 2) ** 2 + (xx - x.shape[1] / 2) ** 2).astype(np.float32)
        noise = np.asarray(jax.random.uniform(jax.random.key(0), x.shape[:2]))
        aucs = [(insertion_auc(clf, x, m, t, ours), insertion_auc(clf, x, m, t, theirs)) for m in (centre, noise)]
        rows.append((d[~band].mean(), d[band].mean(), d.max(), *[a - b for a, b in aucs]))
        print(f"  {path.name:<28} mean|diff| interior {d[~band].mean():.4f} border(5px) {d[band].mean():.4f} "
              f"max {d.max():.3f}; mean|blur - x| ours {np.abs(ours - xn).mean():.4f} RISE "
              f"{np.abs(theirs - xn).mean():.4f}; insertion AUC ours / RISE substrate: centre-first map "
              f"{aucs[0][0]:.4f} / {aucs[0][1]:.4f}, random map {aucs[1][0]:.4f} / {aucs[1][1]:.4f}")
    r = np.array(rows)
    print(f"  mean over images: |diff| interior {r[:, 0].mean():.4f}, border {r[:, 1].mean():.4f} "
          f"(input range ~[-1, 1]); AUC difference (ours - RISE) mean {r[:, 3:].mean():+.4f}, "
          f"max |.| {np.abs(r[:, 3:]).max():.4f} over {r[:, 3:].size} curves")

    # ---- 2. mask border ---------------------------------------------------------------
    print(f"\n2. mask border: skimage resize(mode='reflect') vs rexjax rise_mask (edge clamp), {n_masks} masks, "
          "s 7, p 0.5")
    rng = np.random.default_rng(0)
    h, w, s, p = 224, 224, 7, 0.5
    ch, cw = math.ceil(h / s), math.ceil(w / s)
    cells = (rng.random((n_masks, s, s)) < p).astype(np.float32)
    dys, dxs = rng.integers(0, ch, n_masks), rng.integers(0, cw, n_masks)
    u = np.concatenate([np.where(cells.reshape(n_masks, -1) > 0, 0.0, 0.999),
                        ((dys + 0.5) / ch)[:, None], ((dxs + 0.5) / cw)[:, None]], 1).astype(np.float32)
    ours = np.asarray(jax.jit(jax.vmap(lambda r: rise_mask(r, s, p, (h, w), "bilinear")))(jnp.asarray(u)))
    theirs = np.stack([skimage_mask(cells[i], dys[i], dxs[i], (h, w)) for i in range(n_masks)]).astype(np.float32)
    d = np.abs(ours - theirs)
    inner = np.zeros((h, w), bool)
    half = math.ceil((s + 1) * ch / s / 2)  # half a cell of the up-sampled grid
    inner[half:-half, half:-half] = True
    print(f"  per pixel: mean|diff| {d.mean():.4f}, max {d.max():.3f}; pixels differing > 0.01: "
          f"{(d > 0.01).mean() * 100:.1f} %; inside the central region (> {half} px from the border): "
          f"max |diff| {d[:, inner].max():.2e}")
    print(f"  mean mask value ours {ours.mean():.4f} RISE {theirs.mean():.4f}; per-pixel mean |diff| "
          f"in the outer {half}-px band {d[:, ~inner].mean():.4f}")
    touched = (d.reshape(n_masks, -1) > 0.01).any(1).mean()
    print(f"  masks with some pixel differing > 0.01: {touched * 100:.0f} %")
    prof = d.mean(0)
    print("  mean |diff| by distance to the border (px 0..20):",
          np.round([prof[k, :].mean() for k in range(0, 21, 2)], 4))

    x = clf.prepare(paths[0])
    t = int(np.asarray(clf.full_probs(x)).argmax())
    classify = clf.masked(0.0)
    maps = []
    t0 = time.time()
    for masks in (ours, theirs):
        scores = batching.push(lambda idx: classify(x, jnp.asarray(masks)[idx])[:, t], n_masks, batch_size=16,
                               read=lambda v, idx: v).values
        maps.append(np.tensordot(np.asarray(scores), masks, 1) / (n_masks * p))
    a, b = maps
    corr = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    rel = np.linalg.norm(a - b) / np.linalg.norm(b)
    rel_in = np.linalg.norm((a - b)[inner]) / np.linalg.norm(b[inner])
    ins_a = insertion_auc(clf, x, a, t, np.asarray(gaussian_blur(x, 5.0)))
    ins_b = insertion_auc(clf, x, b, t, np.asarray(gaussian_blur(x, 5.0)))
    print(f"  RISE maps on {paths[0].name} (same cells and shifts, {time.time() - t0:.0f} s): correlation {corr:.5f}, "
          f"relative L2 difference {rel:.4f} (central region {rel_in:.2e}); insertion AUC (rise convention) "
          f"ours-mask map {ins_a:.4f}, skimage-mask map {ins_b:.4f}")


if __name__ == "__main__":
    main()
