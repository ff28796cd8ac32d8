"""Evaluation as a library: (images x methods) -> one row of named values per pair.

    made = make_methods("rex,rise,gradcam", {"rise": {"n_masks": 1000}}, shared={"mask_mode": 0.0})
    evaluator = Evaluator(classifier, made, mask_mode=0.0, convention="rex", step=None,
                          batch_size=None, seed=0)          # made: any {name: Method} mapping
    rows = []
    for row in evaluator.run(data.list_images("third_party/images")):   # a generator
        rows.append(row)                                    # row["area"], row["ins"], ...
    print(summary_table(rows))

For image i (a path, or a `rexjax.data.Sample` carrying its segmentation file):
x = classifier.prepare(path), probs = classifier.full_probs(x), target = argmax(probs),
key = fold_in(key(seed), i). For every method, in the mapping's order, one row (COLUMNS):

    image, method, target, label, full_confidence   what was explained
    area                the ReX global extraction (`metrics.make_area`: chunks of 10 pixels,
                        the first prefix classified as the target) applied to the method's
                        map, pixels / (H W); forward_images_area = its model images
    ins, del            insertion / deletion AUC of the map (`metrics.insertion_deletion`,
                        `convention`, `step`)
    IN, OUT             fractions of that extraction inside / outside the image's
                        segmentation (`metrics.in_out`); None without a segmentation
    time_s              wall time of the method call (the map; block_until_ready), first call
                        of a method includes its compilation
    forward_images      the images the method itself pushed (`Attribution.forward_images`)
    convention, step    how ins/del were measured

Every method is measured the same way, from its map alone: the Evaluator knows no method by
name. A method's own extras (ReX's sufficient explanation, in `Attribution.record`) are not
used: for ReX the area extraction on its responsibility map reproduces its own extraction
when both run at equal settings (same mask_mode, extraction chunk = min_box_size = 10,
min_confidence 0 — ReX's defaults), and its time_s / forward_images then include that own
extraction as part of the method call.

`mask_mode` is the occlusion used by the area extraction and the "rex" convention's curves
(the caller passes the same value to the methods, e.g. via `make_methods(shared=...)`).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from rexjax import checks, metrics
from rexjax import methods as registry
from rexjax.classifier import Classifier
from rexjax.data import Sample, find_segment, read_segment
from rexjax.masking import MaskMode, parse_mask_mode

COLUMNS = ["image", "method", "target", "label", "full_confidence", "area", "ins", "del", "IN", "OUT",
           "time_s", "forward_images", "forward_images_area", "convention", "step"]

SHARED_OPTIONS = ("mask_mode", "batch_size")


def method_names(spec: Union[str, Sequence[str]]) -> list[str]:
    """'a,b, c' or ['a', 'b'] -> the names, stripped; every one must be a registered method or
    alias (`rexjax.methods.canonical`), none twice. ValueError with one clear line otherwise."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [str(n).strip() for n in items if str(n).strip()]
    if not names:
        raise ValueError(f"methods must name at least one method; known: {', '.join(registry.names())}")
    seen: dict[str, str] = {}
    for n in names:
        c = registry.canonical(n)
        if c in seen:
            raise ValueError(f"methods: {n!r} and {seen[c]!r} are the same method ({c!r})")
        seen[c] = n
    return names


def make_methods(
    names: Union[str, Sequence[str]],
    settings: Optional[Mapping[str, Any]] = None,
    *,
    shared: Optional[Mapping[str, Any]] = None,
) -> dict[str, registry.NamedMethod]:
    """{name as given: Method} for `names`, each built by `rexjax.methods.make` with its
    settings `settings[canonical name]` (a dict or ConfigDict of factory keywords; absent =
    defaults) and the `shared` options its factory takes (e.g. mask_mode, batch_size).
    Every name and every config is validated here, before any model is loaded."""
    settings = settings if settings is not None else {}
    out = {}
    for n in method_names(names):
        c = registry.canonical(n)
        cfg = settings[c] if c in settings else {}
        cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
        out[n] = registry.make(c, shared=shared, **cfg)
    return out


def check_settings(
    *,
    mask_mode: MaskMode = 0.0,
    convention: Union[str, metrics.Convention] = "rex",
    step: Optional[int] = None,
    batch_size: Optional[int] = None,
    seed: int = 0,
    masks_dir: Optional[Union[str, os.PathLike]] = None,
) -> dict:
    """The Evaluator's settings, validated (ValueError naming the bad one) and normalised.

    mask_mode: occlusion of the area extraction and of the "rex" convention's curves (parsed).
    convention: "rex" / "rise" or a `metrics.Convention`; step: pixels per insertion/deletion
    step (None = the convention's); returned as one Convention with the step applied.
    batch_size: images per model call in the metrics (None = the `rexjax.batching` default).
    seed: image i gets key fold_in(key(seed), i). masks_dir: folder of segmentations for
    images given as paths (`rexjax.data.find_segment`). Callers check settings with this
    before loading a model."""
    mask_mode = parse_mask_mode(mask_mode)
    if isinstance(convention, str):
        convention = metrics.CONVENTIONS[checks.one_of("convention", convention, sorted(metrics.CONVENTIONS))]
    elif not isinstance(convention, metrics.Convention):
        raise ValueError(f"convention must be one of {sorted(metrics.CONVENTIONS)} or a Convention, got {convention!r}")
    if step is not None:
        checks.positive_int(step=step)
        convention = convention._replace(step=int(step))
    if batch_size is not None:
        checks.positive_int(batch_size=batch_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if masks_dir is not None and not os.path.isdir(masks_dir):
        raise ValueError(f"masks must be a folder of segmentations, got {str(masks_dir)!r}")
    return {"mask_mode": mask_mode, "convention": convention, "batch_size": batch_size, "seed": int(seed),
            "masks_dir": masks_dir}


class Evaluator:
    """Measures every method's map on every image (see the module doc); `run` yields rows.

    classifier: a `Classifier` (or anything `Classifier.of` takes) with preprocessing, as
    images arrive as files. methods: {row name: Method}. settings: the keywords of
    `check_settings` (mask_mode, convention, step, batch_size, seed, masks_dir), validated
    there; attributes of the same names hold the normalised values.
    """

    def __init__(self, classifier: Any, methods: Mapping[str, Any], **settings):
        self.classifier = Classifier.of(classifier)
        if not isinstance(methods, Mapping) or not methods:
            raise ValueError(f"methods must be a non-empty mapping name -> Method, got {methods!r}")
        bad = [n for n, m in methods.items() if not callable(m)]
        if bad:
            raise ValueError(f"methods {bad} are not callable Methods (key, classifier, x, target) -> Attribution")
        self.methods = dict(methods)
        settings = check_settings(**settings)
        self.mask_mode = settings["mask_mode"]
        self.convention = settings["convention"]
        self.batch_size = settings["batch_size"]
        self.seed = settings["seed"]
        self.masks_dir = settings["masks_dir"]
        self._area = metrics.make_area(self.classifier, mask_mode=self.mask_mode, batch_size=self.batch_size)

    def _sample(self, item) -> Sample:
        if isinstance(item, Sample):
            return item
        if isinstance(item, (str, os.PathLike)):
            return Sample(Path(item), find_segment(self.masks_dir, item))
        raise ValueError(f"images must be paths or rexjax.data.Sample, got {type(item).__name__}")

    def measure(self, name: str, key, x, target: int, full_confidence: float, segment=None) -> dict:
        """The row values of method `name` on one prepared image (no image/label columns)."""
        method = self.methods[name]
        start = time.perf_counter()
        attribution = method(key, self.classifier, x, target)
        saliency = jax.block_until_ready(jnp.asarray(attribution.map))
        elapsed = time.perf_counter() - start
        area, extraction = self._area(x, saliency, target, full_confidence)
        curves = metrics.insertion_deletion(
            self.classifier, x, saliency, target, convention=self.convention, batch_size=self.batch_size,
            mask_mode=self.mask_mode,
        )
        io = metrics.in_out(extraction.mask, segment) if segment is not None else metrics.InOut(None, None)
        return {
            "method": name, "area": float(area), "ins": float(curves.insertion_auc),
            "del": float(curves.deletion_auc), "IN": io.inside, "OUT": io.outside, "time_s": elapsed,
            "forward_images": int(attribution.forward_images),
            "forward_images_area": int(extraction.forward_images),
            "convention": self.convention.name, "step": int(self.convention.step),
        }

    def run(self, images: Iterable, *, progress: Optional[bool] = False) -> Iterator[dict]:
        """Yields one row (a dict keyed by COLUMNS) per (image, method), images in the given
        order, methods in the mapping's order. `images`: paths or `rexjax.data.Sample`s.
        `progress`: a tqdm bar over images x methods on stderr (None: when stderr is a
        terminal)."""
        from tqdm.auto import tqdm

        samples = [self._sample(item) for item in images]
        with tqdm(total=len(samples) * len(self.methods), desc="evaluate", unit="map",
                  disable=None if progress is None else not progress) as bar:
            for i, sample in enumerate(samples):
                x = self.classifier.prepare(sample.image)
                probs = np.asarray(self.classifier.full_probs(x))
                target = int(probs.argmax())
                full = float(probs[target])
                segment = read_segment(sample.segment, x.shape[:2]) if sample.segment is not None else None
                key = jax.random.fold_in(jax.random.key(self.seed), i)
                label = self.classifier.label(target) or ""
                for name in self.methods:
                    bar.set_postfix_str(f"{sample.name} {name}", refresh=False)
                    values = self.measure(name, key, x, target, full, segment)
                    row = {"image": sample.name, "target": target, "label": label, "full_confidence": full, **values}
                    bar.update(1)
                    yield {c: row[c] for c in COLUMNS}

    def evaluate(self, images: Iterable, *, progress: Optional[bool] = False) -> list[dict]:
        """All rows of `run` as a list."""
        return list(self.run(images, progress=progress))


def _mean(values) -> Optional[float]:
    v = [float(x) for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else None


def summary(rows: Sequence[Mapping]) -> dict[str, dict]:
    """{method: {area, std, ins, del, IN, OUT, time_s, forward_images}}: means over the rows of
    each method (std = of the area; None-valued / NaN entries skipped; None when none left)."""
    out = {}
    for m in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == m]
        areas = [r["area"] for r in rs if r["area"] is not None]
        out[m] = {
            "area": _mean(areas), "std": float(np.std(areas)) if areas else None,
            "ins": _mean(r["ins"] for r in rs), "del": _mean(r["del"] for r in rs),
            "IN": _mean(r["IN"] for r in rs), "OUT": _mean(r["OUT"] for r in rs),
            "time_s": _mean(r["time_s"] for r in rs), "forward_images": _mean(r["forward_images"] for r in rs),
        }
    return out


def summary_table(rows: Sequence[Mapping]) -> str:
    """ReX paper Table 1 layout: tool, area, std, ins, del, IN, OUT (means over images), plus
    mean map time and forward images."""
    cols = ("area", "std", "ins", "del", "IN", "OUT")
    lines = [f"{'tool':<22}" + "".join(f"{c:>8}" for c in cols) + f"{'time_s':>9}{'fwd':>8}"]

    def fmt(v, width, spec):
        return f"{'-' if v is None else format(v, spec):>{width}}"

    for m, s in summary(rows).items():
        lines.append(
            f"{m:<22}" + "".join(fmt(s[c], 8, ".4f") for c in cols)
            + fmt(s["time_s"], 9, ".2f") + fmt(None if s["forward_images"] is None else int(s["forward_images"]), 8, "d")
        )
    return "\n".join(lines)
