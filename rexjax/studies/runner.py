"""Running a study: (images x models x variants) -> rows, resumable, spread over processes.

    out_dir = runner.run(config, study)       # config: a study ConfigDict, study: its module

which is, in pieces (`rexjax evaluate` and `experiments/run.py` call them one by one):

    plan = runner.plan(config, study)               # validate, select the samples, list the work
    classifiers = runner.load_classifiers(plan)     # the models (a bad weights file: ValueError)
    done = runner.execute(plan, classifiers)        # the rows, appended as they finish
    runner.finish(plan, done.failed)                # merge, failed.txt, report; StudyIncomplete

A study module (`rexjax.studies.<name>`) declares
    EXTRA_COLUMNS                          its columns after `rexjax.evaluation.COLUMNS`
    variants(config) -> [Variant]          what runs on every (image, model): a row name, a
                                           `methods.make` Method and the Evaluator mask_mode
    columns(ctx, row, x, measured) -> {}   optional: its extra values for one row
    analyse(rows, out, config) -> [Section]   tables and plots from the finished CSV

What the runner guarantees:
* everything is validated (names, method configs, settings, the image list, an existing
  run's config and columns) before a model is loaded; one Evaluator per (model, mask_mode)
  and one Method object per variant, so each method compiles once per (model, input size,
  method config) in a run; nothing is cached between runs (no module-level state);
* one run per folder: process p of a run holds an exclusive `fcntl.flock` on
  `<out>/.rexjax-run.lock` (process 0) or `.rexjax-run.p<p>.lock` from `plan` to `finish`; a
  second run on the folder is `Refused` (one line) before it reads a row;
* a row is identified by its image's identity, file name and content SHA-256 (column
  `image_sha256`), and its model and method (`KEY`); the rows of an (image, model) are
  appended together to this process's CSV when they are done (`RowLog`: one line per row,
  with a checksum), with the method's map, area extraction and explanation as PNGs under
  `<out>/maps/<model>/<method>/`; a rerun with the same config skips the rows already in
  any of the folder's result files whose line is whole, whose checksum holds and whose cells
  parse as their types (`check_row`); any other line, and a row of an image whose content
  has changed, is dropped (one line on stderr per file) and its row computed again; the
  finished run's rows are merged into `<out>/results.csv`, each key once, sorted (images in
  the run's order, then models and variants in the config's), so an interrupted-and-resumed
  run ends with the same CSV as an uninterrupted one, on any number of processes (up to
  `TIMING`);
* provenance: process 0 writes `<out>/provenance.json` (`rexjax.provenance`: commit, dirty
  tree, command line, versions, device, date, config; the folder's earlier records under
  `earlier`) before its first row, and every row names the code that wrote it (column
  `rexjax_commit`: the commit, `+dirty` when the tree had changes, empty without git). The
  runner refuses (`Refused`) to write into the repository's `experiments/results/` from a
  tree with uncommitted changes unless `allow_dirty`, and to resume rows written by other
  code (another `rexjax_commit` or rexjax version) unless `allow_other_commit`; either
  permission is recorded in provenance.json. Other folders get provenance and no refusal
  on a dirty tree;
* keys by identity: every method explains image `name` with `keys.for_image(seed, name)`
  and a study's `columns` hook gets `keys.stream(that key, "study_context")`, so no row
  depends on the image's position or on the process that computes it, and adding an image
  changes no other row;
* devices: a process computes on its default device and builds no Mesh and no threads.
  Several devices or hosts are used through processes: P processes started with
  `jax.distributed.initialize` (`start_processes`; `experiments/run.py --coordinator_address
  --num_processes --process_id`; on a host with several accelerators, one process per
  accelerator, e.g. CUDA_VISIBLE_DEVICES=k). Process p takes the images at positions j of
  the run's list with j mod P = p and writes `results.p<p>-of-<P>.csv`; once every process
  is done (a barrier), process 0 merges them into `results.csv` and writes the report.
  Inside one process the library's one multi-device mechanism is `rexjax.explain_many`'s
  `shard_map` over an "images" mesh axis;
* a progress bar (tqdm: done / total maps, rate and ETA) over the maps still to compute;
* one bad (image, model) pair (an unreadable file, a method error) never stops the run: it is
  reported as one line on stderr, listed in `<out>/failed.txt` and has no rows; the run
  finishes the others, writes the report from them and then raises `StudyIncomplete` (a
  rerun of the same command retries just the failed pairs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence

import jax

from rexjax import data, evaluation, io, keys, provenance
from rexjax import models as zoo
from rexjax.classifier import Classifier
from rexjax.errors import first_line
from rexjax.masking import MaskMode
from rexjax.report import maps as map_files
from rexjax.studies import rowlog

KEY = ("image", "image_sha256", "model", "method")
RUN_COLUMNS = ("image_sha256", "rexjax_commit")  # the runner's columns, after the study's
TIMING = ("time_s", "compile_s")  # the columns that differ between two runs of one config
VOLATILE = TIMING + ("rexjax_commit",)  # ... and between two runs of one config on two commits
RESULTS = "results.csv"
PARTS = "results.p*-of-*.csv"  # one per process of a multi-process run, until merged
LOCK = ".rexjax-run.lock"  # process 0's; process p > 0 locks .rexjax-run.p<p>.lock
REPO_RESULTS = provenance.SOURCE_ROOT / "experiments" / "results"  # committed results (in a checkout)


class StudyIncomplete(RuntimeError):
    """Some (image, model) pairs failed and have no rows (listed in `<out>/failed.txt`)."""


class Refused(RuntimeError):
    """The run must not write where it was asked to (module doc); the message is one line
    that names the way out."""


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


def by_model(rows: Sequence[Mapping]):
    """Yields (model, its rows, its methods), models and methods in first-seen order."""
    for model in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == model]
        yield model, rs, list(dict.fromkeys(r["method"] for r in rs))


class Todo(NamedTuple):
    """This process's work on one (image, model): the sample's position in the run's list and
    the variants whose rows are missing."""

    index: int
    model: str
    variants: tuple[str, ...]


class Failure(NamedTuple):
    """An (image, model) pair that failed: its image and model, and `Error: first line`."""

    image: str
    model: str
    line: str


class Executed(NamedTuple):
    """What `execute` did in this process: the maps (rows) it computed and the pairs that failed."""

    maps: int
    failed: list[Failure]


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated run: what `execute` computes in this process and `finish` merges."""

    config: Any
    study: Any
    out: Path
    models: list[str]
    variants: list[Variant]
    settings: dict  # mask_mode -> the Evaluator's settings
    samples: list[data.Sample]
    columns: list[str]
    todo: list[Todo]
    process: tuple[int, int] = (0, 1)  # (this process's index, the process count)
    identity: dict = dataclasses.field(default_factory=dict)  # sample name -> content SHA-256
    code: provenance.GitState = provenance.NO_GIT  # the code this process runs
    notes: tuple[str, ...] = ()  # one line per result file that had rows dropped
    permissions: dict = dataclasses.field(default_factory=dict)  # allow_dirty, allow_other_commit, other_code
    lock: Any = None  # the open lock file (`lock_folder`)

    @property
    def csv(self) -> Path:
        """This process's result file."""
        index, count = self.process
        return self.out / (RESULTS if count == 1 else f"results.p{index}-of-{count}.csv")

    def keep(self, row: Mapping[str, str]) -> bool:
        """False for a row of an image of this run whose content has changed since (`stale`)."""
        return not stale(self.identity, row)

    def release(self) -> None:
        """Releases the folder lock (idempotent)."""
        unlock(self.lock)


@dataclasses.dataclass
class Context:
    """What a study's `columns` hook sees for one row: the run's classifier, the sample and
    its position in the run's list, a key apart from the methods' (`keys.stream(
    keys.for_image(seed, name), "study_context")`), every sample of the run, the config, and
    the prepared samples of this model so far."""

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


def make_method(name: str, settings: Mapping, shared: Mapping):
    """`methods.make(name, shared=shared, **settings)`: built once per run (a study's
    `variants` is called once per plan); nothing is kept between runs."""
    from rexjax import methods

    return methods.make(methods.canonical(name), shared=dict(shared), **dict(settings))


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


def classifier(spec: str, weights: Optional[str] = None) -> Classifier:
    """The Classifier of model `spec` (named `spec`); it holds what is compiled for it, for
    the run that holds it."""
    return Classifier.of(zoo.load_model(spec, weights), name=spec)


def select_samples(config) -> list[data.Sample]:
    """The run's samples: `data.load(config.layout, config.images, **config.data)`, the first
    `max_images` (None = all). Their file names must differ (they key the rows)."""
    options = config.data.to_dict() if hasattr(config.data, "to_dict") else dict(config.data)
    samples = data.load(config.layout, config.images, **options)
    if config.max_images is not None:
        if config.max_images < 1:
            raise ValueError(f"max_images must be >= 1 (or None for all), got {config.max_images}")
        samples = samples[: config.max_images]
    seen: dict[str, data.Sample] = {}
    for s in samples:
        if s.name in seen:
            raise ValueError(f"images: {str(seen[s.name].image)!r} and {str(s.image)!r} have one file name "
                             "(rows and keys are by file name)")
        seen[s.name] = s
    return samples


def file_sha256(path: str | os.PathLike) -> str:
    """`io.file_sha256` of an image; "" when it is not a regular file or cannot be read (its
    pair then fails when the image is read)."""
    try:
        return io.file_sha256(path)
    except (OSError, io.NotRegularFile):
        return ""


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda cell: None if cell == "" else parse(cell)


def _text(cell: str) -> str:
    if not cell:
        raise ValueError("empty")
    return cell


def _json_object(cell: str) -> dict:
    value = json.loads(cell)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _matching(pattern: str) -> Callable[[str], str]:
    def parse(cell: str) -> str:
        if not re.fullmatch(pattern, cell):
            raise ValueError(f"does not match {pattern}")
        return cell
    return parse


# The type of every cell the runner and the Evaluator write (a study's own columns are only
# checked to be present); `check_row` parses each.
CELL_TYPES: dict[str, Callable[[str], Any]] = {
    "image": _text, "method": _text, "model": _text, "target": int, "full_confidence": float, "area": float,
    "ins": float, "del": float, "IN": _optional(float), "OUT": _optional(float), "segment_area": _optional(float),
    "time_s": float, "compile_s": _optional(float), "forward_images": int, "forward_images_area": int, "step": int,
    "seed": int, "method_config": _json_object, "image_sha256": _matching("[0-9a-f]{64}"),
    "rexjax_commit": _matching(r"([0-9a-f]{40,64}(\+dirty)?)?"),
}


def check_row(row: Mapping[str, str]) -> Optional[str]:
    """None when every cell of CELL_TYPES in `row` parses as its type, else the reason."""
    for column, parse in CELL_TYPES.items():
        if column in row:
            try:
                parse(row[column])
            except (ValueError, TypeError):
                return f"{column} {row[column][:40]!r} does not parse"
    return None


def stale(identity: Mapping[str, str], row: Mapping[str, str]) -> bool:
    """Whether `row` is of an image of the run (`identity`: name -> content SHA-256, "" when
    unreadable now) whose content is no longer the row's. Rows of images outside the run,
    or unreadable now, are not stale (they stay; an unreadable image's pair fails)."""
    return identity.get(row["image"]) not in (None, "", row["image_sha256"])


def study_columns(study) -> list[str]:
    """A study's CSV columns: the Evaluator's, the study's own, then the runner's."""
    return evaluation.COLUMNS + list(study.EXTRA_COLUMNS) + list(RUN_COLUMNS)


def lock_folder(out: Path, index: int = 0):
    """Creates `out` and holds process `index`'s run lock on it (module doc); returns the open
    lock file (`unlock` releases it). Refused when another process holds it."""
    import fcntl

    path = out / (LOCK if index == 0 else f".rexjax-run.p{index}.lock")
    for _ in range(10):  # the holder may remove the file between our open and our lock
        try:
            out.mkdir(parents=True, exist_ok=True)
            f = open(path, "a+b")
        except OSError as err:
            raise ValueError(f"out: cannot write to {str(out)!r} ({err.strerror or err}); give a writable folder") \
                from err
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            break
        try:
            if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
                return f
        except FileNotFoundError:
            pass
        f.close()
    raise Refused(f"another run is writing into {str(out)!r} (it holds {path.name}); wait for it to finish "
                  "or use another out folder")


def unlock(lock) -> None:
    """Removes and releases a lock file of `lock_folder` (nothing when None or released)."""
    if lock is None or lock.closed:
        return
    try:
        if os.stat(lock.name).st_ino == os.fstat(lock.fileno()).st_ino:
            os.unlink(lock.name)
    except FileNotFoundError:
        pass
    lock.close()


def check_clean(out: Path, state: provenance.GitState, allow_dirty: bool) -> None:
    """Refused when `out` is inside the repository's experiments/results, the tree has
    uncommitted changes and `allow_dirty` is not given."""
    if not state.dirty or allow_dirty or not Path(out).resolve().is_relative_to(REPO_RESULTS.resolve()):
        return
    shown = ", ".join(state.changed[:3]) + (f" and {len(state.changed) - 3} more" if len(state.changed) > 3 else "")
    raise Refused(f"{str(out)!r} is in the repository's experiments/results and the tree has uncommitted changes "
                  f"({shown}); commit them first, or pass --allow_dirty (recorded in provenance.json)")


RESUMABLE_CHANGES = ("max_images", "out")  # fields a resumed run may change


def check_same_run(path: Path, config) -> None:
    """When a run's config is already at `path`, checks that `config` differs from it at most
    in RESUMABLE_CHANGES (a resume must not mix settings in one CSV)."""
    if not path.exists():
        return
    current, before = json.loads(config.to_json()), json.loads(path.read_text())
    changed = sorted(k for k in set(before) | set(current)
                     if k not in RESUMABLE_CHANGES and before.get(k) != current.get(k))
    if changed:
        raise ValueError(f"{str(path.parent)!r} holds a run with other settings ({', '.join(changed)}); "
                         "resume with the same config or use another out folder")


def result_files(out: Path) -> list[Path]:
    """`results.csv` and every process's part not merged yet."""
    return [out / RESULTS, *sorted(out.glob(PARTS))]


def todo_list(samples: Sequence[data.Sample], models: Sequence[str], variants: Sequence[str], done: set,
              process: tuple[int, int] = (0, 1)) -> list[Todo]:
    """Process `index` of `count`'s share: the samples at positions j = index mod count,
    every model on an image before the next image (a run cut short holds whole images), the
    variants without a row in `done` ({(image, model, method)})."""
    index, count = process
    out = []
    for j in range(index, len(samples), count):
        for m in models:
            missing = tuple(v for v in variants if (samples[j].name, m, v) not in done)
            if missing:
                out.append(Todo(j, m, missing))
    return out


def plan(config, study, *, process: Optional[tuple[int, int]] = None, allow_dirty: bool = False,
         allow_other_commit: bool = False) -> Plan:
    """Validates `config` for `study`, takes the folder's lock and lists this process's work
    (module doc); loads no model. `process`: (index, count), default jax's. ValueError
    naming the bad setting; Refused (module doc). The Plan holds the lock until `finish` (or
    `Plan.release`)."""
    process = (jax.process_index(), jax.process_count()) if process is None else process
    variants = list(study.variants(config))
    split_names([v.name for v in variants], "variants")
    models = split_names(config.models, "models")
    for m in models:
        zoo.check_model(m)
    weights = config.get("weights")
    if weights is not None and (len(models) > 1 or ":" in models[0]):
        raise ValueError(f"weights: a .pth file is for a run on one zoo model, got models {config.models!r}")
    settings = {}
    for v in variants:
        settings.setdefault(v.mask_mode, evaluation.check_settings(
            mask_mode=v.mask_mode, convention=config.convention, step=config.step, batch_size=config.batch_size,
            seed=config.seed, warmup=config.warmup))
    samples = select_samples(config)
    out = Path(config.out)
    state = provenance.code_state()
    check_clean(out, state, allow_dirty)
    lock = lock_folder(out, process[0])
    try:
        check_same_run(out / "config.json", config)
        columns = study_columns(study)
        identity = {s.name: file_sha256(s.image) for s in samples}
        done, notes, other = read_done(out, columns, identity, (state.code_id, evaluation.rexjax_version()))
        if other and not allow_other_commit:
            raise Refused(f"{str(out)!r} holds rows written by other code ({', '.join(other[:2])}; this run: "
                          f"{_describe_code(state.code_id, evaluation.rexjax_version())}); resume with "
                          "--allow_other_commit (recorded in provenance.json) or use another out folder")
        todo = todo_list(samples, models, [v.name for v in variants], done, process)
    except BaseException:
        unlock(lock)
        raise
    permissions = {"allow_dirty": allow_dirty, "allow_other_commit": allow_other_commit, "other_code": other}
    return Plan(config, study, out, models, variants, settings, samples, columns, todo, process, identity, state,
                tuple(notes), permissions, lock)


def _describe_code(code_id: str, version: str) -> str:
    return f"commit {code_id}" if code_id else f"rexjax {version} without git"


def read_done(out: Path, columns: Sequence[str], identity: Mapping[str, str],
              code: tuple[str, str]) -> tuple[set, list[str], list[str]]:
    """What the folder's result files hold for a run of the images `identity` (name -> content
    SHA-256) by `code` ((rexjax_commit, rexjax_version)): the (image, model, method) of its good
    rows whose image is unchanged, one note per file that had rows dropped (bad lines, or
    `stale` rows), and the other code its kept rows came from."""
    done, notes, other = set(), [], set()
    for f in result_files(out):
        reading = rowlog.read_valid(f, columns, check_row)
        changed = [r["image"] for r in reading.rows if stale(identity, r)]
        kept = [r for r in reading.rows if not stale(identity, r)]
        done.update((r["image"], r["model"], r["method"]) for r in kept
                    if identity.get(r["image"]) == r["image_sha256"])
        other.update((r["rexjax_commit"], r["rexjax_version"]) for r in kept)
        dropped = []
        if reading.bad:
            n, why = reading.bad[0]
            dropped.append(f"{len(reading.bad)} bad lines (first: line {n}, {why})")
        if changed:
            dropped.append(f"{len(changed)} rows of images whose content changed (first: {changed[0]})")
        if dropped:
            notes.append(f"{f.name}: dropped {' and '.join(dropped)}; their rows are computed again")
    return done, notes, sorted(_describe_code(*c) for c in other - {code})


def load_classifiers(plan: Plan) -> dict[str, Classifier]:
    """The Classifier of every model this process has work for."""
    weights = plan.config.get("weights")
    return {m: classifier(m, weights) for m in dict.fromkeys(t.model for t in plan.todo)}


def pair_rows(plan: Plan, clf: Classifier, todo: Todo, evaluators: dict, prepared: dict) -> list[dict]:
    """The rows of one (image, model) for `todo.variants`, with the study's columns, maps
    saved (config.save_maps). `evaluators` ({(model, mask_mode): Evaluator}) and `prepared`
    (this model's prepared samples) are reused across calls."""
    config, sample = plan.config, plan.samples[todo.index]
    sha = plan.identity[sample.name]
    if not sha:
        raise ValueError(f"{sample.name} is not a regular file that can be read")
    hook: Optional[Callable] = getattr(plan.study, "columns", None)
    ctx = Context(clf, todo.index, sample, keys.stream(keys.for_image(config.seed, sample.name), "study_context"),
                  plan.samples, config, prepared)

    def on_map(row, x, measured):
        extra = hook(ctx, row, x, measured) if hook else {}
        row.update({c: extra.get(c) for c in plan.study.EXTRA_COLUMNS})
        if config.save_maps:
            map_files.save(plan.out, row, clf, x, measured)

    rows = []
    wanted = [v for v in plan.variants if v.name in todo.variants]
    for mode in dict.fromkeys(v.mask_mode for v in wanted):
        if (todo.model, mode) not in evaluators:
            group = {v.name: v.method for v in plan.variants if v.mask_mode == mode}
            evaluators[(todo.model, mode)] = evaluation.Evaluator(clf, group, **plan.settings[mode])
        names = [v.name for v in wanted if v.mask_mode == mode]
        rows += evaluators[(todo.model, mode)].image_rows(sample, names, on_map=on_map)
    if file_sha256(sample.image) != sha:  # the rows would name content they were not computed on
        raise ValueError(f"{sample.name} changed while it was explained; rerun to explain its new content")
    for row in rows:
        row.update(image_sha256=sha, rexjax_commit=plan.code.code_id)
    return rows


def failure_line(prog: str, failure: Failure, n_models: int) -> str:
    """`prog: image: Error: message` (`image on model` when the run has several models)."""
    where = failure.image if n_models == 1 else f"{failure.image} on {failure.model}"
    return f"{prog}: {where}: {failure.line}"


def execute(plan: Plan, classifiers: Mapping[str, Classifier], *, progress: Optional[bool] = None,
            prog: Optional[str] = None) -> Executed:
    """Computes `plan.todo`, appending each pair's rows to `plan.csv`; returns the rows
    computed and the pairs that failed (each also one line on stderr, `failure_line`). `prog` names the run in those
    lines (default: the study's name); `progress`: the tqdm bar (None: when stderr is a
    terminal)."""
    from tqdm.auto import tqdm

    prog = prog or plan.config.study
    for note in plan.notes:
        print(f"{prog}: {note}", file=sys.stderr)
    plan.out.mkdir(parents=True, exist_ok=True)
    if plan.process[0] == 0:
        config = json.loads(plan.config.to_json())
        (plan.out / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True))
        write_provenance(plan, config)
    log = rowlog.RowLog(plan.csv, plan.columns)
    evaluators: dict = {}
    prepared: dict = {}
    failed, maps = [], 0
    with tqdm(total=sum(len(t.variants) for t in plan.todo), desc=prog, unit="map",
              disable=None if progress is None else not progress) as bar:
        for t in plan.todo:
            name = plan.samples[t.index].name
            bar.set_postfix_str(f"{name} {t.model}", refresh=False)
            try:
                rows = pair_rows(plan, classifiers[t.model], t, evaluators, prepared.setdefault(t.model, {}))
            except Exception as err:  # this pair has no rows; the others go on
                failed.append(Failure(name, t.model, f"{type(err).__name__}: {first_line(err)}"))
                bar.write(failure_line(prog, failed[-1], len(plan.models)), file=sys.stderr)
                continue
            log.append(rows)
            bar.update(len(rows))
            maps += len(rows)
    return Executed(maps, failed)


def write_provenance(plan: Plan, config: dict) -> None:
    """`<out>/provenance.json`: this run's record (`rexjax.provenance.record`, with the study,
    the process count and the permissions it was given); a record already there moves, less
    its config (a folder holds one config), into `earlier`."""
    record = provenance.record(config=config, state=plan.code, study=plan.config.study, **plan.permissions)
    try:
        before = provenance.read(plan.out)
    except ValueError as err:
        before = {"unreadable": first_line(err)}
    if before:
        record["earlier"] = [*before.pop("earlier", []), {k: v for k, v in before.items() if k != "config"}]
    provenance.write(plan.out, record)


def row_order(plan: Plan) -> Callable[[Mapping[str, str]], tuple]:
    """The order of the merged CSV: images in the run's order (rows of images outside it
    after, by name), then models and variants in the config's order."""
    position = {s.name: j for j, s in enumerate(plan.samples)}
    model_rank = {m: a for a, m in enumerate(plan.models)}
    variant_rank = {v.name: b for b, v in enumerate(plan.variants)}
    return lambda r: (position.get(r["image"], len(position)), r["image"], model_rank.get(r["model"], len(model_rank)),
                      r["model"], variant_rank.get(r["method"], len(variant_rank)), r["method"])


def _write_failed(path: Path, failed: Sequence[Failure]) -> None:
    if failed:
        path.write_text("".join(f"{f.image}\t{f.model}\t{f.line}\n" for f in sorted(failed)))
    else:
        path.unlink(missing_ok=True)  # a rerun that retried them all


def read_failed(path: Path) -> list[Failure]:
    """The pairs listed in a failed file (`<out>/failed.txt`; none when there is no such file)."""
    path = Path(path)
    return [Failure(*line.split("\t", 2)) for line in path.read_text().splitlines()] if path.exists() else []


def finish(plan: Plan, failed: Sequence[Failure], *, analyse: bool = True) -> Path:
    """After `execute` on every process: process 0 merges the result files into
    `results.csv`, writes `failed.txt` (every process's failures) and, with `analyse`, the
    report. Raises StudyIncomplete when a pair failed (process 0: on any process; another
    process: its own); returns `plan.out`."""
    out, (index, count) = plan.out, plan.process
    try:
        if count > 1:
            from jax.experimental import multihost_utils

            _write_failed(out / f"failed.p{index}-of-{count}.txt", failed)
            multihost_utils.sync_global_devices("rexjax study rows written")
        if index == 0:
            rowlog.merge(out / RESULTS, [f for f in result_files(out) if f.name != RESULTS], plan.columns, KEY,
                         row_order(plan), check_row, plan.keep)
            if count > 1:
                failed = [f for part in sorted(out.glob(f"failed.p*-of-{count}.txt")) for f in read_failed(part)]
            _write_failed(out / "failed.txt", failed)
            for stale in out.glob("failed.p*-of-*.txt"):
                stale.unlink()
            if analyse and run_rows(out):
                report(plan.config, plan.study)
    finally:
        plan.release()
    if failed:
        first = sorted(failed)[0]
        raise StudyIncomplete(f"{len(failed)} (image, model) pairs failed and have no rows (first: {first.image} on "
                              f"{first.model}: {first.line}); listed in {out / 'failed.txt'}; rerun the same "
                              "command to retry them")
    return out


def run(config, study, *, progress: Optional[bool] = None, analyse: bool = True, allow_dirty: bool = False,
        allow_other_commit: bool = False) -> Path:
    """Runs `study` with `config` into `config.out` (module doc); returns that folder."""
    p = plan(config, study, allow_dirty=allow_dirty, allow_other_commit=allow_other_commit)
    try:
        return finish(p, execute(p, load_classifiers(p), progress=progress).failed, analyse=analyse)
    finally:
        p.release()


def start_processes(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
                    process_id: Optional[int] = None) -> None:
    """`jax.distributed.initialize(coordinator_address, num_processes, process_id)` when any
    is given (those not given are detected, e.g. under SLURM); nothing otherwise. ValueError
    naming a bad argument."""
    if coordinator_address is None and num_processes is None and process_id is None:
        return
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    if process_id is not None and (process_id < 0 or (num_processes is not None and process_id >= num_processes)):
        raise ValueError(f"process_id must be in [0, num_processes), got {process_id} of {num_processes}")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id)


def run_rows(out: Path) -> list[dict[str, str]]:
    """Every good row of a run so far: `results.csv` and the parts not merged yet, each key
    once (a folder written before rows carried `image_sha256`: by the other key columns)."""
    rows: dict[tuple, dict[str, str]] = {}
    for f in result_files(Path(out)):
        if f.exists():
            for r in rowlog.read_rows(f):
                rows.setdefault(tuple(r.get(k) for k in KEY), r)
    return list(rows.values())


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
