"""Evaluation as a library: (images x methods) -> one row of named values per pair.

    made = make_methods("rex,rise,gradcam", {"rise": {"n_masks": 1000}}, shared={"mask_mode": 0.0})
    evaluator = Evaluator(classifier, made, mask_mode=0.0, convention="rex", step=None,
                          batch_size=None, seed=0)          # made: any {name: Method} mapping
    rows = []
    for row in evaluator.run(data.list_images("third_party/images")):   # a generator
        rows.append(row)                                    # row["area"], row["ins"], ...
    print(summary_table(rows))
    for row in evaluator.image_rows(sample, ["rise"], on_map=save):  # one image, some methods
        ...                                                 # save(row, x, Measured(values, map, ...))

For an image (a path, or a `rexjax.data.Sample` carrying its segmentation file):
x = classifier.prepare(path), probs = classifier.full_probs(x), target = argmax(probs),
key = `keys.for_image(seed, file name)` (by identity: an image's rows do not depend on the
other images of the run). For every method, in the mapping's order, one row (COLUMNS):

    image               the image's file name (with seed: the method's key)
    method, target, label, full_confidence   what was explained
    area                the ReX global extraction (`metrics.make_area`: chunks of 10 pixels,
                        the first prefix classified as the target) applied to the method's
                        map, pixels / (H W); forward_images_area = its model images
    ins, del            insertion / deletion AUC of the map (`metrics.insertion_deletion`,
                        `convention`, `step`)
    IN, OUT             fractions of that extraction inside / outside the image's
                        segmentation (`metrics.in_out`; OUT = 1 - IN); None without one
    segment_area        the segmentation's fraction of the image (at the model's input
                        size): the IN a pixel set placed at random would score (chance
                        level; OUT's is 1 - segment_area); None without a segmentation
    time_s              wall time of the method call (the map; block_until_ready) on a warm
                        method: with `warmup` (default) the first call of each method runs
                        once before the timed one and its extra time, compilation mostly, is
                        `compile_s` on that method's first row (None elsewhere, and everywhere
                        with warmup=False, when the first row's time_s includes it). A method
                        whose compiled shapes depend on the image (LIME / KernelSHAP: the
                        superpixel count) can still compile inside a later time_s.
    forward_images      the images the method itself pushed (`Attribution.forward_images`)
    model, weights      the classifier's name and weights file ("" = not a zoo model or the
                        caller's own weights; "random-init" = a zoo model without weights)
    mask_mode           the occlusion of the area extraction and of the "rex" curves
    convention, step    how ins/del were measured; ins_substrate, del_substrate: what the
                        curves showed at hidden pixels (`metrics.substrates`: under
                        mask_mode "ad" the rex convention's are "ad", not zeros)
    seed                the run's seed (with image: the method's key)
    method_config       every setting the method ran with, defaults included, as JSON
                        (`resolved_config`): `methods.make(method, **json.loads(...))`
                        rebuilds it
    rexjax_version      the installed rexjax version

Every method is measured the same way, from its map alone: the Evaluator knows no method by
name. A method's own extras (ReX's sufficient explanation, in `Attribution.record`) are not
used: for ReX the area extraction on its responsibility map reproduces its own extraction
when both run at equal settings (same mask_mode, extraction chunk = min_box_size = 10,
min_confidence 0 — ReX's defaults), and its time_s / forward_images then include that own
extraction as part of the method call.

`mask_mode` is the occlusion used by the area extraction and the "rex" convention's curves
(the caller passes the same value to the methods, e.g. via `make_methods(shared=...)`).
`summary` / `summary_table`: per method n, mean area and its sample std (ddof 1; none for
n = 1), mean ins / del / IN / OUT and their chance levels (a random pixel set's IN and OUT:
the mean segment_area and 1 - it, over the method's own rows), time_s, compile_s, fwd. Both IN
and OUT are shown (the ReX paper reports IN on segmentation datasets and OUT on the
photobombing set, where the segmentation is the occluders), with the chance level beside
them: on small occluders every method scores an OUT near 1.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import inspect
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from rexjax import checks, keys, metrics
from rexjax import methods as registry
from rexjax.classifier import Classifier
from rexjax.data import Sample, find_segment, read_segment
from rexjax.masking import MaskMode, parse_mask_mode

COLUMNS = ["image", "method", "target", "label", "full_confidence", "area", "ins", "del", "IN", "OUT",
           "segment_area", "time_s", "compile_s", "forward_images", "forward_images_area", "model", "weights", "mask_mode",
           "convention", "step", "ins_substrate", "del_substrate", "seed", "method_config", "rexjax_version"]

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


def _keyword_defaults(fn) -> dict:
    params = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty}


def resolved_config(method, record=None) -> dict:
    """Every setting `method` runs with, defaults included.

    For a `methods.make` result: `methods.settings(name, config)` when the registry declares
    them (LIME / KernelSHAP: superpixel defaults too); else the dataclass `config`
    its Attribution `record` carries, if any (ReX: the RexConfig); else the factory's keyword
    defaults updated with the given config. Any other callable: the record's config or {}."""
    record_config = getattr(record, "config", None)
    if dataclasses.is_dataclass(record_config) and not isinstance(record_config, type):
        record_config = dataclasses.asdict(record_config)
    else:
        record_config = None
    if not isinstance(method, registry.NamedMethod):
        return record_config or {}
    fac = registry.factory(method.name)
    given = dict(method.config)
    declared = registry.settings(method.name, given)
    if declared is not None:
        return declared
    if record_config is not None:
        return record_config
    return {**_keyword_defaults(fac), **given}


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (np.ndarray, jax.Array)):
        a = np.asarray(value)
        return {"array": list(a.shape), "dtype": str(a.dtype), "sha256": hashlib.sha256(a.tobytes()).hexdigest()[:16]}
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return repr(value)


def config_json(config: Mapping) -> str:
    """A method config as one line of JSON (keys sorted; arrays as shape, dtype and a hash)."""
    return json.dumps(config, sort_keys=True, default=_jsonable)


def rexjax_version() -> str:
    try:
        return importlib.metadata.version("rexjax")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _weights(classifier) -> str:
    model = classifier.model
    if getattr(model, "has_weights", True) is False:
        return "random-init"
    path = getattr(model, "weights_path", None)  # the file name only: rows hold no machine's paths
    return "" if path is None else os.path.basename(str(path))


def check_settings(
    *,
    mask_mode: MaskMode = 0.0,
    convention: Union[str, metrics.Convention] = "rex",
    step: Optional[int] = None,
    batch_size: Optional[int] = None,
    seed: int = 0,
    masks_dir: Optional[Union[str, os.PathLike]] = None,
    warmup: bool = True,
) -> dict:
    """The Evaluator's settings, validated (ValueError naming the bad one) and normalised.

    mask_mode: occlusion of the area extraction and of the "rex" convention's curves (parsed).
    convention: "rex" / "rise" or a `metrics.Convention`; step: pixels per insertion/deletion
    step (None = the convention's); returned as one Convention with the step applied.
    batch_size: images per model call in the metrics (None = the `rexjax.batching` default).
    seed: an image gets key `keys.for_image(seed, its file name)`. masks_dir: folder of
    segmentations for images given as paths (`rexjax.data.find_segment`). warmup: call each
    method once before its first timed call (compile time apart from time_s). Callers check
    settings with this before loading a model."""
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
    if not isinstance(warmup, (bool, np.bool_)):
        raise ValueError(f"warmup must be True or False, got {warmup!r}")
    return {"mask_mode": mask_mode, "convention": convention, "batch_size": batch_size, "seed": int(seed),
            "masks_dir": masks_dir, "warmup": bool(warmup)}


class Measured(NamedTuple):
    """One method on one image: its row `values`, its `map` f32[H, W], the area `extraction`
    bool[H, W] (the ReX global extraction of that map) and the method's `attribution`."""

    values: dict
    map: jax.Array
    extraction: np.ndarray
    attribution: Any


class Evaluator:
    """Measures every method's map on every image (see the module doc); `run` yields rows.

    classifier: a `Classifier` (or anything `Classifier.of` takes) with preprocessing, as
    images arrive as files. methods: {row name: Method}. settings: the keywords of
    `check_settings` (mask_mode, convention, step, batch_size, seed, masks_dir, warmup),
    validated there; attributes of the same names hold the normalised values.
    """

    def __init__(self, classifier: Any, methods: Mapping[str, Any], **settings):
        self.classifier = Classifier.of(classifier)
        if not isinstance(methods, Mapping) or not methods:
            raise ValueError(f"methods must be a non-empty mapping name -> Method, got {methods!r}")
        bad = [n for n, m in methods.items() if not callable(m)]
        if bad:
            raise ValueError(f"methods {bad} are not callable Methods (classifier, x, target, *, key) -> Attribution")
        self.methods = dict(methods)
        settings = check_settings(**settings)
        self.mask_mode = settings["mask_mode"]
        self.convention = settings["convention"]
        self.batch_size = settings["batch_size"]
        self.seed = settings["seed"]
        self.masks_dir = settings["masks_dir"]
        self.warmup = settings["warmup"]
        self._area = metrics.make_area(self.classifier, mask_mode=self.mask_mode, batch_size=self.batch_size)
        self._warm: set = set()
        ins_sub, del_sub = metrics.substrates(self.convention, self.mask_mode)
        self.run_columns = {  # what every row of this Evaluator shares
            "model": self.classifier.name, "weights": _weights(self.classifier), "mask_mode": self.mask_mode,
            "convention": self.convention.name, "step": int(self.convention.step),
            "ins_substrate": ins_sub, "del_substrate": del_sub, "seed": self.seed,
            "rexjax_version": rexjax_version(),
        }

    def _sample(self, item) -> Sample:
        if isinstance(item, Sample):
            return item
        if isinstance(item, (str, os.PathLike)):
            return Sample(Path(item), find_segment(self.masks_dir, item))
        raise ValueError(f"images must be paths or rexjax.data.Sample, got {type(item).__name__}")

    def measure(self, name: str, key, x, target: int, full_confidence: float, segment=None) -> dict:
        """The method's row values on one prepared image (no image/label/run columns)."""
        return self.measure_maps(name, key, x, target, full_confidence, segment).values

    def measure_maps(self, name: str, key, x, target: int, full_confidence: float, segment=None) -> "Measured":
        """`measure`'s values with the map, the area extraction and the Attribution behind them."""
        method = self.methods[name]
        compile_s = None
        if self.warmup and name not in self._warm:
            start = time.perf_counter()
            jax.block_until_ready(jnp.asarray(method(self.classifier, x, target, key=key).map))
            first = time.perf_counter() - start
        start = time.perf_counter()
        attribution = method(self.classifier, x, target, key=key)
        saliency = jax.block_until_ready(jnp.asarray(attribution.map))
        elapsed = time.perf_counter() - start
        if self.warmup and name not in self._warm:
            compile_s = max(first - elapsed, 0.0)
        self._warm.add(name)
        area, extraction = self._area(x, saliency, target, full_confidence)
        curves = metrics.insertion_deletion(
            self.classifier, x, saliency, target, convention=self.convention, batch_size=self.batch_size,
            mask_mode=self.mask_mode,
        )
        io = metrics.in_out(extraction.mask, segment) if segment is not None else metrics.InOut(None, None)
        values = {
            "method": name, "area": float(area), "ins": float(curves.insertion_auc),
            "del": float(curves.deletion_auc), "IN": io.inside, "OUT": io.outside,
            "segment_area": None if segment is None else float(np.mean(segment)), "time_s": elapsed,
            "compile_s": compile_s, "forward_images": int(attribution.forward_images),
            "forward_images_area": int(extraction.forward_images),
            "method_config": config_json(resolved_config(method, attribution.record)),
        }
        return Measured(values, saliency, np.asarray(extraction.mask), attribution)

    def run(self, images: Iterable, *, progress: Optional[bool] = False) -> Iterator[dict]:
        """Yields one row (a dict keyed by COLUMNS) per (image, method), images in the given
        order, methods in the mapping's order. `images`: paths or `rexjax.data.Sample`s.
        `progress`: a tqdm bar over images x methods on stderr (None: when stderr is a
        terminal)."""
        from tqdm.auto import tqdm

        samples = [self._sample(item) for item in images]
        with tqdm(total=len(samples) * len(self.methods), desc="evaluate", unit="map",
                  disable=None if progress is None else not progress) as bar:
            for sample in samples:
                for row in self.image_rows(sample):
                    bar.set_postfix_str(f"{sample.name} {row['method']}", refresh=False)
                    bar.update(1)
                    yield row

    def image_rows(self, sample, names: Optional[Sequence[str]] = None, on_map=None) -> Iterator[dict]:
        """The rows of one image (its key: `keys.for_image(seed, its file name)`) for the
        methods `names` (None = all, in the mapping's order). `on_map(row, x, measured)`, if
        given, sees each row with the prepared image and its `Measured` (map, extraction,
        Attribution; e.g. to save them or add study columns) before the row is yielded."""
        sample = self._sample(sample)
        x = self.classifier.prepare(sample.image)
        probs = np.asarray(self.classifier.full_probs(x))
        target = int(probs.argmax())
        full = float(probs[target])
        segment = read_segment(sample.segment, x.shape[:2]) if sample.segment is not None else None
        key = keys.for_image(self.seed, sample.name)
        label = self.classifier.label(target) or ""
        for name in self.methods if names is None else names:
            measured = self.measure_maps(name, key, x, target, full, segment)
            row = {"image": sample.name, "target": target, "label": label,
                   "full_confidence": full, **measured.values, **self.run_columns}
            row = {c: row[c] for c in COLUMNS}
            if on_map is not None:
                on_map(row, x, measured)
            yield row

    def evaluate(self, images: Iterable, *, progress: Optional[bool] = False) -> list[dict]:
        """All rows of `run` as a list."""
        return list(self.run(images, progress=progress))


def _values(values) -> list[float]:
    return [float(x) for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]


def _mean(values) -> Optional[float]:
    v = _values(values)
    return float(np.mean(v)) if v else None


def summary(rows: Sequence[Mapping]) -> dict[str, dict]:
    """{method: {n, area, std, ins, del, IN, OUT, IN_chance, OUT_chance, time_s, compile_s,
    forward_images}}: n rows of the method; means over them (None-valued / NaN entries
    skipped; None when none left); std = the sample standard deviation (ddof 1) of the area,
    None for fewer than 2 areas; IN_chance / OUT_chance = what a pixel set placed at random
    scores on the same rows (mean segment_area, 1 - it; None without segmentations);
    compile_s = the mean of the recorded first-call overheads (one per method and run)."""
    out = {}
    for m in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == m]
        areas = _values(r["area"] for r in rs)
        chance = _mean(r.get("segment_area") for r in rs)
        out[m] = {
            "n": len(rs), "area": _mean(areas), "std": float(np.std(areas, ddof=1)) if len(areas) > 1 else None,
            "ins": _mean(r["ins"] for r in rs), "del": _mean(r["del"] for r in rs), "IN": _mean(r["IN"] for r in rs),
            "OUT": _mean(r["OUT"] for r in rs), "IN_chance": chance, "OUT_chance": None if chance is None else 1.0 - chance,
            "time_s": _mean(r["time_s"] for r in rs), "compile_s": _mean(r.get("compile_s") for r in rs),
            "forward_images": _mean(r["forward_images"] for r in rs),
        }
    return out


def segment_columns(stats: Mapping[str, Mapping]) -> list[str]:
    """The IN / OUT columns a table of `summary` shows: all four (IN, OUT and their chance
    levels) when some method has them, none otherwise (no segmentations)."""
    have = any(s.get("IN") is not None or s.get("IN_chance") is not None for s in stats.values())
    return ["IN", "IN_chance", "OUT", "OUT_chance"] if have else []


def summary_table(rows: Sequence[Mapping]) -> str:
    """ReX paper Table 1 layout: tool, n, area, std, ins, del, IN, OUT (with their chance
    levels; means over images), plus mean map time, compile time and forward images."""
    stats = summary(rows)
    cols = ["area", "std", "ins", "del"] + segment_columns(stats)
    lines = [f"{'tool':<22}{'n':>5}" + "".join(f"{c:>11}" for c in cols) + f"{'time_s':>9}{'compile_s':>11}{'fwd':>8}"]

    def fmt(v, width, spec):
        return f"{'-' if v is None else format(v, spec):>{width}}"

    for m, s in stats.items():
        fwd = None if s["forward_images"] is None else int(round(s["forward_images"]))
        lines.append(
            f"{m:<22}{s['n']:>5d}" + "".join(fmt(s[c], 11, ".4f") for c in cols)
            + fmt(s["time_s"], 9, ".2f") + fmt(s["compile_s"], 11, ".2f") + fmt(fwd, 8, "d")
        )
    return "\n".join(lines)


def csv_values(row: Mapping) -> dict:
    """A row as CSV cells (None -> empty)."""
    return {k: ("" if row[k] is None else row[k]) for k in COLUMNS}


def write_csv(path: Union[str, os.PathLike], rows: Iterable[Mapping]) -> None:
    """Writes rows (COLUMNS) to a CSV file with a header."""
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow(csv_values(r))
