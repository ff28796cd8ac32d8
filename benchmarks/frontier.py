"""The quality-cost frontier of ReX: median area and normalised insertion against forward
images and against seconds, for the ReX tool (rex-xai 0.4.1) over its iteration budget and for
rexjax over every knob that trades forward images for quality.

Each point is one configuration run on images x seeds and scored exactly as in
`benchmarks.compare` (rexjax's insertion AUC, REX convention, on each tool's own map; the
area of each tool's own explanation; sufficiency by the torch model). rexjax points are
RexConfig fields (flat names, as `RexConfig.replace` takes them) over the `--rex` config, one
knob at a time (`DEFAULT_GRID`; a point the config refuses, e.g. a field this version lacks,
is reported and skipped, so options added later join by adding a line); compile time is
excluded (each configuration is compiled on a warm-up call first). Forward images, areas and
insertion are deterministic for a seed, so they are valid on a busy machine; seconds are not
(the load average is written with the table).

Writes `frontier.csv` (one row per point and tool: medians and counts), `frontier.md`,
`frontier.png` and `provenance.json` under --out after every point; a rerun with the same
images and seeds skips the points already in `frontier.csv` (a long sweep can be stopped and
resumed).

  .venv/bin/python -m benchmarks.frontier --out=benchmarks/results/frontier/<YYYY-MM-DD>-<setting>   # hours on 2 cores
  .venv/bin/python -m benchmarks.frontier --limit 1 --seeds 1 --tool_iters 2,5 \\
      --grid '[{"iters": 2}, {"iters": 5}, {"iters": 5, "refine_static": false}]'   # smoke
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmarks import config as rex_flags
from benchmarks import image_sets, tool_env
from benchmarks.runs import Scorer, ToolWorker, run_rexjax, run_tool, source_state, write_provenance

ROOT = Path(__file__).resolve().parents[1]

# rexjax: RexConfig fields over the --rex config, one knob at a time.
DEFAULT_GRID = (
    {}, {"iters": 4}, {"iters": 8}, {"iters": 12},
    {"refine_static": False}, {"responsibility": "alg1"}, {"responsibility": "sufficient"},
    {"max_active": 2}, {"max_active": 3}, {"tree_depth": 5}, {"tree_depth": 9},
    {"queue_len": 2}, {"queue_style": "all"}, {"min_box_size": 20}, {"search_limit": 100},
    {"prefix_step": 25}, {"prefix_search": "coarse"}, {"prefix_growth": 0.0},
    {"prune_grids": []}, {"prune_grids": [8, 16]},
)

FLAGS = flags.FLAGS
DEFAULT_IMAGES = image_sets.VALIDATION


def define_flags() -> None:
    """The command line (defined only when run as a script, so tests can import this module)."""
    flags.DEFINE_string("images", str(DEFAULT_IMAGES), "Folder of images (or one image); default: the "
                        "validation set, never tuned on (benchmarks/image_sets.py).")
    flags.DEFINE_list("seeds", ["1", "2", "3"], "Seeds.")
    flags.DEFINE_integer("limit", None, "Only the first N images.")
    flags.DEFINE_list("tool_iters", ["5", "10", "20", "40"], "The tool's iteration budgets (empty: no tool points).")
    rex_flags.define_rex_flag("fast")
    flags.DEFINE_string("grid", None, "JSON list of dicts of RexConfig fields over --rex (default: DEFAULT_GRID).")
    flags.DEFINE_string("out", str(ROOT / "out" / "frontier"), "Output folder.")
    flags.DEFINE_string("venv", str(tool_env.DEFAULT_VENV), "The torch environment (built if missing).")


def label(options: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"


def usable(grid, base, log=print) -> list[tuple[dict, object]]:
    """(point, RexConfig) for every grid point that `base.replace(**point)` accepts; the others
    are reported (the config's one-line reason) and skipped."""
    keep = []
    for point in grid:
        try:
            keep.append((point, base.replace(**point)))
        except ValueError as err:
            log(f"# skipping {label(point)}: {str(err).splitlines()[0]}")
    return keep


def point_row(tool: str, options: dict, runs) -> dict:
    med = lambda k: statistics.median(r.row()[k] for r in runs)
    return {"tool": tool, "point": label(options), "runs": len(runs), "forward_images": med("forward_images"),
            "seconds": med("seconds"), "area": med("area"), "insertion": med("insertion"),
            "deletion": med("deletion"), "sufficient": sum(r.scores["sufficient_torch"] for r in runs)}


def done_rows(out: Path, images, seeds) -> list[dict]:
    """Rows of an earlier run in out/frontier.csv made on the same images and seeds (resume)."""
    path = out / "frontier.csv"
    if not path.is_file():
        return []
    want = (" ".join(p.name for p in images), " ".join(map(str, seeds)))
    with open(path) as f:
        rows = [r for r in csv.DictReader(f) if (r["images"], r["seeds"]) == want]
    for r in rows:
        for k, v in r.items():
            if k not in ("tool", "point", "images", "seeds") and v != "":
                r[k] = float(v)
    return rows


def sweep(images, seeds, tool_iters, grid, base, venv: Path, out: Path, log=print, on_row=None) -> tuple[list[dict], dict]:
    """Runs every tool point and rexjax grid point (RexConfig fields over the RexConfig `base`)
    not already in out/frontier.csv for these images and seeds; `on_row(rows, facts)` after
    each new point (the caller writes files)."""
    import jax

    from rexjax import models
    from rexjax.causal.explainer import Explainer
    from rexjax.classifier import Classifier

    out.mkdir(parents=True, exist_ok=True)
    worker = ToolWorker(tool_env.ensure(venv), out / "tool_worker.log")
    facts = {"tool": worker.ask({"op": "info"}), "jax": jax.__version__, "load_start": os.getloadavg(),
             "cpus": os.cpu_count(), "images": [p.name for p in images], "seeds": seeds,
             "rexjax_source": source_state(), "base_config": base.to_dict(), "image_set": image_sets.describe(images[0])}
    model = models.load("efficientnet_lite0")
    classifier = Classifier.of(model)
    scorer = Scorer(classifier, worker)
    rows = done_rows(out, images, seeds)
    have = {(r["tool"], r["point"]) for r in rows}
    tag = {"images": " ".join(p.name for p in images), "seeds": " ".join(map(str, seeds))}

    def add(row: dict) -> None:
        rows.append(dict(row, **tag))
        log(rows[-1])
        facts["load_end"] = os.getloadavg()
        if on_row is not None:
            on_row(rows, facts)

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        xs = {p.name: model.preprocess(p) for p in images}
        for name, x in xs.items():
            np.save(tmp / f"{name}.npy", x)
        jobs = [(name, s) for s in seeds for name in xs]
        for iters in tool_iters:
            if ("rex-xai", label({"iters": iters})) in have:
                continue
            runs = []
            for name, seed in jobs:
                r = run_tool(worker, tmp / f"{name}.npy", name, seed, {"iters": iters}, tmp)
                r.scores = scorer(r, xs[name], tmp / f"{name}.npy", tmp)
                runs.append(r)
            add(point_row("rex-xai", {"iters": iters}, runs))
        for options, config in usable(grid, base, log):
            if ("rexjax", label(options)) in have:
                continue
            explainer = Explainer(classifier, config, mask_mode=0.0)
            t = time.perf_counter()
            run_rexjax(explainer, xs[jobs[0][0]], jobs[0][0], jobs[0][1])  # compile, not counted
            compile_s = time.perf_counter() - t
            runs = []
            for name, seed in jobs:
                r = run_rexjax(explainer, xs[name], name, seed)
                r.scores = scorer(r, xs[name], tmp / f"{name}.npy", tmp)
                runs.append(r)
            add(dict(point_row("rexjax", options, runs), first_call_s=compile_s))
    worker.close()
    facts["load_end"] = os.getloadavg()
    return rows, facts


def plot(rows: list[dict], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 9))
    axes = fig.subplots(2, 2)
    for col, x_key in enumerate(("forward_images", "seconds")):
        for row, y_key in enumerate(("area", "insertion")):
            ax = axes[row, col]
            tool = sorted((r for r in rows if r["tool"] == "rex-xai"), key=lambda r: r[x_key])
            ax.plot([r[x_key] for r in tool], [r[y_key] for r in tool], "o-", color="tab:red", label="rex-xai 0.4.1 (iters)")
            for r in tool:
                ax.annotate(r["point"].replace("iters=", ""), (r[x_key], r[y_key]), xytext=(4, 4), textcoords="offset points",
                            fontsize=7, color="tab:red")
            ours = [r for r in rows if r["tool"] == "rexjax"]
            ax.plot([r[x_key] for r in ours], [r[y_key] for r in ours], "s", color="tab:blue", label="rexjax")
            for r in ours:
                ax.annotate(r["point"], (r[x_key], r[y_key]), xytext=(4, -8), textcoords="offset points", fontsize=6,
                            color="tab:blue")
            ax.set_xlabel({"forward_images": "median forward images per image", "seconds": "median seconds per image"}[x_key])
            ax.set_ylabel({"area": "median area (lower is better)", "insertion": "median normalised insertion (higher is better)"}[y_key])
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write(rows: list[dict], facts: dict, out: Path) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "frontier.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    title = (f"{len(facts['images'])} images of the {facts.get('image_set', 'unnamed set')} x seeds {facts['seeds']}, rexjax {facts.get('rexjax_source', '?')}, {facts['cpus']} CPUs, load "
             f"{tuple(round(v, 1) for v in facts['load_start'])} -> {tuple(round(v, 1) for v in facts['load_end'])}")
    plot(rows, out / "frontier.png", title)
    lines = [f"Frontier: {title}.", "", "| tool | point | forward images | s | area | insertion | deletion | sufficient |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['tool']} | {r['point']} | {r['forward_images']:.0f} | {r['seconds']:.1f} | {r['area']:.3f} | "
              f"{r['insertion']:.3f} | {r['deletion']:.3f} | {int(r['sufficient'])}/{int(r['runs'])} |" for r in rows]
    text = "\n".join(lines) + "\n"
    (out / "frontier.md").write_text(text)
    return text


def main(argv):
    from rexjax import data
    from rexjax.causal import RexConfig

    images = data.list_images(FLAGS.images)[: FLAGS.limit]
    grid = json.loads(FLAGS.grid) if FLAGS.grid else list(DEFAULT_GRID)
    out = Path(FLAGS.out)

    def on_row(rows, facts):
        write(rows, facts, out)
        write_provenance(out, "frontier", "frontier", rexjax_commit=facts["rexjax_source"], image_set=facts["image_set"],
                         versions={"jax": facts["jax"], "rex_xai": facts["tool"]["rex_xai"],
                                   "torch": facts["tool"]["torch"]}, machine={"cpus": facts["cpus"]})

    rows, facts = sweep(images, [int(s) for s in FLAGS.seeds], [int(i) for i in FLAGS.tool_iters], grid,
                        RexConfig.from_dict(FLAGS.rex), Path(FLAGS.venv), out, on_row=on_row)
    print(write(rows, facts, out) if rows else "no points")
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
