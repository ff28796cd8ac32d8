"""`rexjax evaluate`: saliency methods + metrics on a folder of images (ReX paper Table 1).

    rexjax evaluate --methods rex,rise,gradcam,ig,lime --images third_party/images \
        [--masks DIR] [--model efficientnet_lite0] [--out out/evaluate]

For every image the model's top-1 class is explained by every method. Per (image, method)
one CSV row: area (the ReX global extraction applied to the map, pixels / H W), ins and del
(insertion/deletion AUC, `--convention` rex: zero substrate, step 100, normalised by the
full-image confidence), IN/OUT (fraction of the explanation inside/outside the image's
segmentation when `--masks DIR` holds `<image stem>.png`, nonzero = segment), map time,
forward_images (map) and forward_images_area (extraction). Method "rex" is
`rexjax.explain` (its own extraction gives the area). A summary table (mean area, std,
ins, del, IN, OUT per method) is printed and written next to the CSV.
Method hyper-parameters: `--set rise.n_masks=1000 --set lime.n_samples=500`.
"""

from __future__ import annotations

import ast
import csv
import logging
import os
import time
from pathlib import Path

from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("images", "third_party/images", "folder of images (or one image file)")
flags.DEFINE_list(
    "methods", ["rex", "rise", "gradcam", "ig", "lime"],
    "methods, comma separated ('rex' or a rexjax.saliency name/alias)",
)
flags.DEFINE_string("model", "efficientnet_lite0", "zoo model name (rexjax models)")
flags.DEFINE_string("weights", None, "weights file for the model (default: bundled)")
flags.DEFINE_string("masks", None, "folder of segmentation masks <image stem>.png (nonzero = segment) for IN/OUT")
flags.DEFINE_string("mask_mode", "0", "occlusion value for mask-based methods and metrics, or 'ad'")
flags.DEFINE_enum("convention", "rex", ["rex", "rise"], "insertion/deletion convention")
flags.DEFINE_integer("step", None, "pixels per insertion/deletion step (default: the convention's, 100 for rex)")
flags.DEFINE_string("out", "out/evaluate", "output folder (results.csv, summary.txt)")
flags.DEFINE_integer("seed", 0, "random key for the stochastic methods")
flags.DEFINE_integer("batch_size", None, "images per model call (default: 16 on CPU, 128 on accelerators)")
flags.DEFINE_integer("limit", 0, "only the first N images (0 = all)")
flags.DEFINE_multi_string("set", [], "method hyper-parameter, METHOD.PARAM=VALUE (python literal)")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
COLUMNS = ["image", "method", "target", "label", "full_confidence", "area", "ins", "del", "IN", "OUT",
           "time_s", "forward_images", "forward_images_area", "convention", "step"]


def list_images(path: str) -> list[Path]:
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise ValueError(f"--images must be an image file or a folder, got {path!r}")
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"--images folder {path!r} holds no images ({sorted(IMAGE_SUFFIXES)})")
    return files


def parse_overrides(items) -> dict[str, dict]:
    """['rise.n_masks=1000', ...] -> {'rise': {'n_masks': 1000}} (names canonicalised)."""
    from rexjax.saliency import canonical

    out: dict[str, dict] = {}
    for item in items:
        head, sep, value = item.partition("=")
        method, dot, param = head.partition(".")
        if not (sep and dot and param):
            raise ValueError(f"--set expects METHOD.PARAM=VALUE, got {item!r}")
        try:
            v = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            v = value
        name = "rex" if method == "rex" else canonical(method)
        out.setdefault(name, {})[param] = v
    return out


def load_segment(masks_dir: str | None, image: Path, hw) -> "object":
    """Boolean [H, W] segmentation for `image` resized (nearest) to the model input, or None."""
    if not masks_dir:
        return None
    import numpy as np
    from PIL import Image

    cands = [Path(masks_dir) / f"{image.stem}{s}" for s in (".png", ".bmp", ".gif")]
    found = [c for c in cands if c.is_file()]
    if not found:
        return None
    with Image.open(found[0]) as im:
        m = im.convert("L").resize((hw[1], hw[0]), Image.Resampling.NEAREST)
    return np.asarray(m) > 0


def summary_table(rows: list[dict]) -> str:
    """ReX paper Table 1 layout: tool, area, std, ins, del, IN, OUT (means over images)."""
    import numpy as np

    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [f"{'tool':<22}{'area':>8}{'std':>8}{'ins':>8}{'del':>8}{'IN':>8}{'OUT':>8}{'time_s':>9}{'fwd':>8}"]

    def mean(vals):
        v = [x for x in vals if x is not None and x == x]
        return f"{np.mean(v):.4f}" if v else "-"

    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        areas = [r["area"] for r in rs if r["area"] is not None]
        std = f"{np.std(areas):.4f}" if areas else "-"
        lines.append(
            f"{m:<22}{mean(areas):>8}{std:>8}{mean([r['ins'] for r in rs]):>8}{mean([r['del'] for r in rs]):>8}"
            f"{mean([r['IN'] for r in rs]):>8}{mean([r['OUT'] for r in rs]):>8}"
            f"{np.mean([r['time_s'] for r in rs]):>9.2f}{int(np.mean([r['forward_images'] for r in rs])):>8}"
        )
    return "\n".join(lines)


def evaluate(image_paths, methods, model, *, mask_mode, convention, seed, batch_size, overrides, masks_dir=None,
             step=None, log=print):
    """Runs every method on every image; returns the list of row dicts (COLUMNS)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from rexjax import metrics, saliency
    from rexjax.masking import masked_classifier, parse_mask_value
    from rexjax.types import default_batch_size

    batch_size = batch_size or default_batch_size()
    mask_mode = parse_mask_value(mask_mode)
    classify = masked_classifier(model, mask_mode)
    conv = metrics.CONVENTIONS[convention]
    if step:
        conv = conv._replace(step=int(step))
    ins_clf, del_clf = metrics.convention_classifiers(model, conv, mask_mode)
    area_of = metrics.make_area(classify, batch_size=batch_size)
    full_probs = jax.jit(lambda x: classify(x, jnp.ones((1,) + x.shape[:2], x.dtype))[0])

    runners = {}
    for m in methods:
        name = "rex" if m.lower() == "rex" else saliency.canonical(m)
        cfg = dict(overrides.get(name, {}))
        if name == "rex":
            from rexjax.api import make_explainer

            cfg.setdefault("mask_value", mask_mode)
            cfg.setdefault("batch_size", batch_size)
            runners[m] = make_explainer(model, **cfg)
        else:
            if saliency.METHODS[name][1] == "masked":
                cfg.setdefault("batch_size", batch_size)
            elif name in ("integrated_gradients", "gradient_shap"):
                cfg.setdefault("batch_size", min(batch_size, 32))
            runners[m] = saliency.for_model(name, model, mask_mode, **cfg)

    rows = []
    for i, path in enumerate(image_paths):
        x = jnp.asarray(model.preprocess(path))
        probs = np.asarray(full_probs(x))
        target = int(probs.argmax())
        full = float(probs[target])
        segment = load_segment(masks_dir, path, x.shape[:2])
        key = jax.random.fold_in(jax.random.key(seed), i)
        for m in methods:
            start = time.perf_counter()
            if m.lower() == "rex":
                ex = runners[m](x, target=target, key=key)
                sal, fwd = jnp.asarray(ex.responsibility), ex.forward_images_map
                elapsed = ex.time_map
                area, emask, fwd_area = ex.area, ex.mask, ex.forward_images_extract
            else:
                s = runners[m](key, x, target)
                sal = jax.block_until_ready(s.map)
                elapsed = time.perf_counter() - start
                fwd = s.forward_images
                area, extraction = area_of(x, sal, target, full)
                emask, fwd_area = extraction.mask, extraction.forward_images
            curves = metrics.insertion_deletion(ins_clf, x, sal, target, conv, batch_size, deletion_classify=del_clf)
            io = metrics.in_out(emask, segment) if segment is not None else metrics.InOut(None, None)
            rows.append({
                "image": path.name, "method": m, "target": target,
                "label": model.labels[target] if target < len(model.labels) else "",
                "full_confidence": full, "area": area, "ins": curves.insertion_auc, "del": curves.deletion_auc,
                "IN": io.inside, "OUT": io.outside, "time_s": elapsed, "forward_images": fwd,
                "forward_images_area": fwd_area, "convention": conv.name, "step": conv.step,
            })
            log(f"{path.name:<32} {m:<14} area {area:.4f} ins {curves.insertion_auc:.4f} "
                f"del {curves.deletion_auc:.4f} time {elapsed:.2f}s fwd {fwd}")
    return rows


def main(argv) -> None:
    if len(argv) > 1:
        raise ValueError(f"rexjax evaluate takes flags only, got {argv[1:]}")
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    from rexjax import models

    overrides = parse_overrides(FLAGS.set)
    methods = [m.strip() for m in FLAGS.methods if m.strip()]
    if not methods:
        raise ValueError("--methods must name at least one method")
    from rexjax.saliency import canonical

    for m in methods:  # fail before loading anything
        if m.lower() != "rex":
            canonical(m)
    images = list_images(FLAGS.images)
    if FLAGS.limit:
        images = images[: FLAGS.limit]
    model = models.load(FLAGS.model, FLAGS.weights)
    rows = evaluate(
        images, methods, model, mask_mode=FLAGS.mask_mode, convention=FLAGS.convention, seed=FLAGS.seed,
        batch_size=FLAGS.batch_size, overrides=overrides, masks_dir=FLAGS.masks, step=FLAGS.step,
    )
    os.makedirs(FLAGS.out, exist_ok=True)
    csv_path = Path(FLAGS.out) / "results.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None else r[k]) for k in COLUMNS})
    table = summary_table(rows)
    header = (f"model {FLAGS.model}, {len(images)} images, convention {FLAGS.convention}"
              f"{f' (step {FLAGS.step})' if FLAGS.step else ''}, mask_mode {FLAGS.mask_mode}"
              + (f", overrides {' '.join(FLAGS.set)}" if FLAGS.set else ""))
    (Path(FLAGS.out) / "summary.txt").write_text(header + "\n" + table + "\n")
    print(header)
    print(table)
    print(f"wrote {csv_path} and {Path(FLAGS.out) / 'summary.txt'}")
