"""Running a study: (images x models x variants) -> rows, resumable, sharded over devices.

    out_dir = runner.run(config, study)       # config: a study ConfigDict, study: its module

A study module (`rexjax.studies.<name>`) declares
    EXTRA_COLUMNS                          its columns after `rexjax.evaluation.COLUMNS`
    variants(config) -> [Variant]          what runs on every (image, model): a row name, a
                                           `methods.make` Method and the Evaluator mask_mode
    columns(ctx, row, x, measured) -> {}   optional: its extra values for one row
    analyse(rows, out, config) -> [Section]   tables and plots from the finished CSV

What the runner guarantees:
* everything is validated (names, method configs, settings, the image list) before a model
  is loaded; one Evaluator per (model, mask_mode, device) and one Method object per variant,
  so each method compiles once per (model, input size, method config) on each device;
* every row is appended to `<out>/results.csv` as it finishes (`RowLog`), with the method's
  map, area extraction and explanation as PNGs under `<out>/maps/<model>/<method>/`; a rerun
  with the same config skips the (image_index, model, method) rows already there, and the
  file is finally rewritten sorted, so an interrupted-and-resumed run ends with the same CSV
  as an uninterrupted one (up to the timing columns);
* image i is explained with key fold_in(key(seed), i) wherever it runs, so the rows do not
  depend on how images are spread: over the local devices, a `Mesh` over
  `jax.local_devices()` with one axis "images" (image j of this process goes to mesh device
  j mod n, one worker thread per device with the model's variables put on it), and over
  processes (`jax.distributed`: process p of P takes images i with i mod P = p and writes
  `results.p<p>-of-<P>.csv`; the analysis reads them all once every process is done);
* a progress bar (tqdm: done / total maps, rate and ETA) over the maps still to compute;
* one bad (image, model) pair (an unreadable file, a method error) never stops the run: it is
  reported as one line, listed in `<out>/failed.txt` and has no rows; the run finishes the
  others, writes the report from them and then raises `StudyIncomplete` (a rerun of the same
  command retries just the failed pairs).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import jax
import numpy as np

from rexjax import data, evaluation
from rexjax.classifier import Classifier
from rexjax.errors import first_line
from rexjax.masking import MaskMode
from rexjax.report import maps as map_files
from rexjax.studies.rowlog import RowLog, read_rows

KEY = ("image_index", "model", "method")
TIMING = ("time_s", "compile_s")  # the columns that differ between two runs of one config


class StudyIncomplete(RuntimeError):
    """Some (image, model) pairs failed and have no rows (listed in `<out>/failed.txt`)."""


class Variant(NamedTuple):
    """One thing a study runs on every (image, model): `name` is the row's method column."""

    name: str
    method: Any
    mask_mode: MaskMode = 0.0


class Section(NamedTuple):
    """Part of a study's report: a title, a markdown table (or "") and PNG files (in out)."""

    title: str
    table: str = ""
    images: tuple = ()
    text: str = ""


@dataclasses.dataclass
class Context:
    """What a study's `columns` hook sees for one row: the run's classifier (on this
    device), the image index and sample, a key apart from the methods' (fold_in(fold_in(
    key(seed), i), 1)), every sample of the run, the config, and the prepared samples of this
    (worker, model) so far."""

    classifier: Classifier
    index: int
    sample: data.Sample
    key: jax.Array
    samples: Sequence[data.Sample]
    config: Any
    _prepared: dict = dataclasses.field(default_factory=dict)

    def prepared(self, j: int) -> jax.Array:
        """Sample j of the run, prepared for this classifier (cached)."""
        if j not in self._prepared:
            self._prepared[j] = self.classifier.prepare(self.samples[j].image)
        return self._prepared[j]


def split_names(spec, name: str) -> list[str]:
    """'a,b' or ['a', 'b'] -> stripped, non-empty, unique names (ValueError naming `name`)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec or ())
    out = [str(s).strip() for s in items if str(s).strip()]
    if not out:
        raise ValueError(f"{name} must name at least one entry, got {spec!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} names an entry twice: {out}")
    return out


def check_model(spec: str) -> None:
    """A zoo name (`rexjax models`) or 'package.module:factory' (a callable returning a model)."""
    if ":" in spec:
        module, attr = spec.split(":", 1)
        try:
            found = getattr(importlib.import_module(module), attr, None)
        except ImportError as e:
            raise ValueError(f"models: {spec!r}: cannot import {module} ({e})") from None
        if not callable(found):
            raise ValueError(f"models: {spec!r}: {module} has no callable {attr!r}")
        return
    from rexjax import models

    models.get_spec(spec)


# Built once per process, so that a method compiles once per (model, input size, method
# config, device) however many runs a process makes (a resumed run, the tests' studies).
_METHODS: dict = {}
_CLASSIFIERS: dict = {}


def make_method(name: str, settings: Mapping, shared: Mapping):
    """`methods.make(name, shared=shared, **settings)`, the same object for the same
    (name, settings, shared) within a process."""
    from rexjax import methods

    canonical = methods.canonical(name)
    key = (canonical, evaluation.config_json(dict(settings)), evaluation.config_json(dict(shared)))
    if key not in _METHODS:
        _METHODS[key] = methods.make(canonical, shared=dict(shared), **dict(settings))
    return _METHODS[key]


def method_variants(config, mask_mode: MaskMode = None) -> list[Variant]:
    """One Variant per method of `config.methods` (its sub-config `config[canonical name]`),
    with the config's mask_mode (or `mask_mode`) and batch_size shared."""
    from rexjax import methods

    mode = config.mask_mode if mask_mode is None else mask_mode
    shared = {"mask_mode": mode, "batch_size": config.batch_size}
    out = []
    for name in evaluation.method_names(config.methods):
        canonical = methods.canonical(name)
        settings = config[canonical].to_dict() if canonical in config else {}
        out.append(Variant(name, make_method(canonical, settings, shared), mode))
    return out


def load_model(spec: str):
    if ":" in spec:
        module, attr = spec.split(":", 1)
        return getattr(importlib.import_module(module), attr)()
    from rexjax import models

    return models.load(spec)


def classifier_on(spec: str, device) -> Classifier:
    """The Classifier of model `spec` (named `spec`) on `device`, one per process."""
    key = (spec, device.platform, device.id)
    if key not in _CLASSIFIERS:
        if (spec, None) not in _CLASSIFIERS:
            _CLASSIFIERS[(spec, None)] = load_model(spec)
        _CLASSIFIERS[key] = Classifier.of(on_device(_CLASSIFIERS[(spec, None)], device), name=spec)
    return _CLASSIFIERS[key]


def on_device(model, device):
    """A zoo Model with its variables committed to `device` (its own jitted apply); other
    models as they are (their arrays follow `jax.default_device`)."""
    from rexjax.models.model import Model

    if isinstance(model, Model):
        return dataclasses.replace(model, variables=jax.device_put(model.variables, device))
    return model


def select_samples(config) -> list[data.Sample]:
    """The run's samples: `data.load(config.layout, config.images, **config.data)`, the first
    `max_images` (None = all)."""
    options = config.data.to_dict() if hasattr(config.data, "to_dict") else dict(config.data)
    samples = data.load(config.layout, config.images, **options)
    if config.max_images is not None:
        if config.max_images < 1:
            raise ValueError(f"max_images must be >= 1 (or None for all), got {config.max_images}")
        samples = samples[: config.max_images]
    return samples


RESUMABLE_CHANGES = ("max_images", "out")  # fields a resumed run may change


def check_same_run(path: Path, config) -> None:
    """Writes the config to `path`, or, when a run's config is already there, checks that
    this one differs at most in RESUMABLE_CHANGES (a resume must not mix settings in one CSV)."""
    current = json.loads(config.to_json())
    if path.exists():
        before = json.loads(path.read_text())
        changed = sorted(k for k in set(before) | set(current)
                         if k not in RESUMABLE_CHANGES and before.get(k) != current.get(k))
        if changed:
            raise ValueError(f"{str(path.parent)!r} holds a run with other settings ({', '.join(changed)}); "
                             "resume with the same config or use another out folder")
    path.write_text(json.dumps(current, indent=1, sort_keys=True))


def csv_path(out: Path) -> Path:
    count, index = jax.process_count(), jax.process_index()
    return out / ("results.csv" if count == 1 else f"results.p{index}-of-{count}.csv")


def run_rows(out: Path) -> list[dict[str, str]]:
    """Every row of a finished run (all processes' files), sorted as written."""
    files = sorted(out.glob("results*.csv"))
    return [r for f in files for r in read_rows(f)]


def run(config, study, *, progress: Optional[bool] = None, analyse: bool = True) -> Path:
    """Runs `study` with `config` into `config.out` (module doc); returns that folder."""
    from tqdm.auto import tqdm

    names = split_names(config.models, "models")
    for n in names:
        check_model(n)
    variants = list(study.variants(config))
    vnames = split_names([v.name for v in variants], "variants")
    settings = {}
    for v in variants:
        settings.setdefault(v.mask_mode, evaluation.check_settings(
            mask_mode=v.mask_mode, convention=config.convention, step=config.step, batch_size=config.batch_size,
            seed=config.seed, warmup=config.warmup))
    samples = select_samples(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    check_same_run(out / "config.json", config)
    columns = evaluation.COLUMNS + list(study.EXTRA_COLUMNS)
    log = RowLog(csv_path(out), columns, KEY)
    mine = [i for i in range(len(samples)) if i % jax.process_count() == jax.process_index()]
    todo = {(i, m): [v for v in variants if (str(i), m, v.name) not in log.done] for i in mine for m in names}
    todo = {k: vs for k, vs in todo.items() if vs}
    mesh = jax.sharding.Mesh(np.asarray(jax.local_devices()), ("images",))
    devices = list(mesh.devices.flat)
    for m in dict.fromkeys(k[1] for k in todo):  # load on this thread, before the workers
        classifier_on(m, devices[0])
    hook_columns: Optional[Callable] = getattr(study, "columns", None)
    failed: list[tuple[str, str, str]] = []  # (image, model, "Error: first line"), appended by the workers

    with tqdm(total=sum(len(v) for v in todo.values()), desc=config.study, unit="map",
              disable=None if progress is None else not progress) as bar:

        def run_pair(clf: Classifier, m: str, i: int, vs: list[Variant], evaluators: dict, prepared: dict) -> None:
            """The rows of image i on model m for variants vs, appended as they finish."""
            ctx = Context(clf, i, samples[i], jax.random.fold_in(
                jax.random.fold_in(jax.random.key(config.seed), i), 1), samples, config, prepared)

            def on_map(row, x, measured):
                extra = hook_columns(ctx, row, x, measured) if hook_columns else {}
                row.update({c: extra.get(c) for c in study.EXTRA_COLUMNS})
                if config.save_maps:
                    map_files.save(out, row, clf, x, measured)

            for mode in dict.fromkeys(v.mask_mode for v in vs):
                if mode not in evaluators:
                    group = {v.name: v.method for v in variants if v.mask_mode == mode}
                    evaluators[mode] = evaluation.Evaluator(clf, group, **settings[mode])
                group_names = [v.name for v in vs if v.mask_mode == mode]
                for row in evaluators[mode].image_rows(i, samples[i], group_names, on_map=on_map):
                    log.append(row)
                    bar.set_postfix_str(f"{samples[i].name} {m} {row['method']}", refresh=False)
                    bar.update(1)

        def work(d: int) -> None:
            """Device d's images, image-major (every model on an image before the next image,
            so a run cut short holds whole images); one Evaluator set per model."""
            device = devices[d]
            per_model: dict[str, tuple[Classifier, dict, dict]] = {}  # model -> (clf, evaluators, prepared)
            with jax.default_device(device):
                for n, i in enumerate(mine):
                    if n % len(devices) != d:
                        continue
                    for m in names:
                        if (i, m) not in todo:
                            continue
                        if m not in per_model:
                            per_model[m] = (classifier_on(m, device), {}, {})
                        clf, evaluators, prepared = per_model[m]
                        try:
                            run_pair(clf, m, i, todo[(i, m)], evaluators, prepared)
                        except Exception as err:  # this pair has no rows; the others go on
                            line = f"{type(err).__name__}: {first_line(err)}"
                            failed.append((samples[i].name, m, line))
                            bar.write(f"{config.study}: {samples[i].name} on {m} failed: {line}")

        if len(devices) == 1:
            work(0)
        else:
            with concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:
                for f in [pool.submit(work, d) for d in range(len(devices))]:
                    f.result()

    rank = {(m, v): (a, b) for a, m in enumerate(names) for b, v in enumerate(vnames)}
    log.finalise(lambda r: (int(r["image_index"]), *rank.get((r["model"], r["method"]), (len(names), 0)),
                            r["model"], r["method"]))
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("rexjax study rows written")
    failed_file = out / (f"failed.p{jax.process_index()}.txt" if jax.process_count() > 1 else "failed.txt")
    if failed:
        failed_file.write_text("".join(f"{image}\t{model}\t{line}\n" for image, model, line in sorted(failed)))
    elif failed_file.exists():
        failed_file.unlink()  # a rerun that retried them all
    if analyse and jax.process_index() == 0 and run_rows(out):
        report(config, study)
    if failed:
        image, model, line = failed[0]
        raise StudyIncomplete(f"{len(failed)} (image, model) pairs failed and have no rows (first: {image} on "
                              f"{model}: {line}); listed in {failed_file}; rerun the same command to retry them")
    return out


def report(config, study) -> Path:
    """The study's tables, plots and report.html from the rows in `config.out` so far (a
    finished run, or one still running / interrupted); returns the report's path."""
    from rexjax.report import html

    out = Path(config.out)
    rows = run_rows(out)
    if not rows:
        raise ValueError(f"{str(out)!r} holds no result rows yet")
    sections = study.analyse(rows, out, config)
    return html.write_report(out, rows, sections, title=f"{config.study}: {config.models} x {config.methods}",
                             config_text=json.dumps(json.loads(config.to_json()), indent=1),
                             extra_columns=study.EXTRA_COLUMNS)
