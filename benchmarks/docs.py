"""Writes the measurement docs from the committed results files (never by hand):

    python -m benchmarks.docs            # rewrite them (`make docs`)
    python -m benchmarks.docs --check    # exit 1 naming every file that differs

Outputs:
    docs/benchmarks.md                 every bench-compare run, the frontier, the screens and
                                       the oracle table, from their CSV / JSON / table files
    benchmarks/results/<bench>/README.md   what the benchmark measures (its script's
                                       docstring), each dated run's provenance and headline
    <study results folder>/README.md   what the study measures (its config's docstring), the
                                       command, what the files record, the headline table

Results are found under `benchmarks/results/` and `experiments/results/`, at any depth (a
benchmark's dated runs sit in one folder each), by the files a folder holds:

    facts.json + pairs.csv       a bench-compare run (rexjax against the ReX tool)
    frontier.csv                 the quality-cost frontier
    pairs.csv with a point column + summary.md   a screen of rexjax points
    table.md of oracle_quality   the oracle size bound at several budgets
    results.csv + config.json    a study run by `experiments/run.py`
    photobomb.csv                the photobombing set

Only the standard library; every number is read or computed (medians) from those files, so a
rerun that rewrites a results folder and `make docs` keep the docs true.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_ROOTS = ("benchmarks/results", "experiments/results")
BENCHMARKS_DOC = "docs/benchmarks.md"
TOOL, REXJAX = "rex-xai", "rexjax"
# The budget fields a bench-compare run's rexjax point is described by (as its facts.json
# records them; nested configs are flattened to their leaf names).
POINT_FIELDS = ("iters", "tree_depth", "max_active", "refine_static", "responsibility",
                "prefix_growth", "prune_grids")
# The command that wrote a study folder whose files do not record it (a provenance.json with a
# "command" field takes precedence).
STUDY_COMMANDS = {
    "rex_compare": "python experiments/run.py --config experiments/configs/rex_compare.py "
                   "--config.out=experiments/results/rex_compare --config.rex.iters=5 "
                   "--config.rise.n_masks=500 --config.integrated_gradients.n_steps=16 "
                   "--config.lime.n_samples=200 --config.kernel_shap.n_samples=100 --config.step=500 "
                   "--config.warmup=False --config.batch_size=32",
    "rex_compare_photobomb": "python experiments/run.py --config experiments/configs/rex_compare.py "
                             "--config.images=experiments/results/photobomb/images "
                             "--config.data.masks=experiments/results/photobomb/masks "
                             "--config.out=experiments/results/rex_compare_photobomb "
                             "--config.methods=rex,gradcam --config.rex.iters=5 --config.step=500 "
                             "--config.warmup=False --config.batch_size=32",
    "convad_robustness": "python experiments/run.py --config experiments/configs/convad_robustness.py "
                         "--config.out=experiments/results/convad_robustness --config.max_images=3 "
                         "--config.rex.iters=5 --config.lime.n_samples=200 --config.step=500 "
                         "--config.warmup=False",
    "concentration": "python experiments/run.py --config experiments/configs/concentration.py "
                     "--config.out=experiments/results/concentration --config.rex.iters=5 "
                     "--config.step=500 --config.warmup=False --config.batch_size=32 --config.max_images=3",
    "shape_vs_metrics": "python experiments/run.py --config experiments/configs/shape_vs_metrics.py "
                        "--config.out=experiments/results/shape_vs_metrics --config.rise.n_masks=1000 "
                        "--config.shape.n_masks=1000 --config.warmup=False --config.max_images=3",
    "photobomb": "python experiments/photobomb.py --images=third_party/images "
                 "--out=experiments/results/photobomb --model=efficientnet_lite0 --seed=0",
}
# The script that writes each benchmark kind's results (its docstring says what it measures).
SCRIPTS = {"bench_compare": "benchmarks/compare.py", "frontier": "benchmarks/frontier.py",
           "screen": "benchmarks/screen.py", "oracle": "tests/causal/oracle_quality.py"}
# A dated run folder: YYYY-MM-DD at the start of its name.
DATED = re.compile(r"^\d{4}-\d{2}-\d{2}")
# Decimals per measured quantity.
DIGITS = {"seconds": 1, "forward_images": 0, "area": 3, "insertion": 3, "deletion": 3}


# ---------------------------------------------------------------------------------- reading

def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _median(values) -> float:
    values = [float(v) for v in values]
    return statistics.median(values) if values else float("nan")


def _fmt(v, digits: int = 3) -> str:
    """`v` with `digits` decimals; '-' for NaN or a missing value."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "-"
    return "-" if v != v else f"{v:.{digits}f}"


def _true(v) -> bool:
    return str(v).strip().lower() in ("true", "1", "yes")


def _flatten(d: dict) -> dict:
    flat = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat.update(_flatten(v))
        else:
            flat[k] = v
    return flat


def _docstring_paragraph(path: Path) -> str:
    """The first paragraph of a Python file's module docstring on one line, without the colon
    that introduces the command after it."""
    if not path.is_file():
        return ""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    text = " ".join(re.sub(r"-\n\s*", "-", doc.split("\n\n")[0]).split()).rstrip(":").rstrip()
    return text if not text or text.endswith(".") else text + "."


def _rel(path: Path, start: Path) -> str:
    """`path` relative to the folder `start` (both under the repository), '/'-separated."""
    a, b = path.resolve().relative_to(ROOT).parts, start.resolve().relative_to(ROOT).parts
    common = 0
    while common < min(len(a), len(b)) and a[common] == b[common]:
        common += 1
    return "/".join([".."] * (len(b) - common) + list(a[common:])) or "."


def find_results(root: Path = ROOT) -> dict[str, list[Path]]:
    """Results folders by kind (bench_compare, frontier, screen, oracle, study, photobomb)."""
    found: dict[str, list[Path]] = defaultdict(list)
    for base in RESULTS_ROOTS:
        base = root / base
        if not base.is_dir():
            continue
        for folder in sorted(p for p in [base, *base.rglob("*")] if p.is_dir()):
            names = {p.name for p in folder.iterdir()}
            if {"facts.json", "pairs.csv"} <= names:
                found["bench_compare"].append(folder)
            elif "frontier.csv" in names:
                found["frontier"].append(folder)
            elif {"pairs.csv", "summary.md"} <= names:
                found["screen"].append(folder)
            elif "table.md" in names and "oracle_quality" in (folder / "table.md").read_text():
                found["oracle"].append(folder)
            elif {"results.csv", "config.json"} <= names:
                found["study"].append(folder)
            elif "photobomb.csv" in names:
                found["photobomb"].append(folder)
    return found


def _provenance(folder: Path) -> dict:
    path = folder / "provenance.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _provenance_lines(folder: Path) -> list[str]:
    """A run's provenance.json as bullets: date, command, commits, versions, machine, note."""
    prov = _provenance(folder)
    if not prov:
        return ["- no provenance.json: `git log -- <this folder>` names the commit that wrote it"]
    out = []
    for key, label in (("date", "date"), ("command", "command"), ("commit", "code commit"),
                       ("dirty", "tree with changes"),
                       ("image_set", "images"), ("rexjax_commit", "rexjax commit"),
                       ("results_commit", "results commit"), ("results_commits", "results commits"),
                       ("versions", "versions"), ("machine", "machine"), ("images", "images"),
                       ("seeds", "seeds"), ("note", "note")):
        value = prov.get(key)
        if value in (None, "", [], {}) and value is not False:
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        code = key == "command" and "`" not in str(value)
        out.append(f"- {label}: `{value}`" if code else f"- {label}: {value}")
    return out


def group_of(folder: Path) -> Path:
    """The benchmark folder a run belongs to: the parent of a dated run folder, else itself."""
    return folder.parent if DATED.match(folder.name) else folder


# ------------------------------------------------------------------------- bench-compare

def bench_compare_run(folder: Path) -> dict:
    """One bench-compare run: facts, per-tool medians over (image, seed) pairs, per-pair ratio medians."""
    facts = json.loads((folder / "facts.json").read_text())
    rows = _read_csv(folder / "pairs.csv")
    pairs: dict[tuple, dict] = defaultdict(dict)
    for r in rows:
        pairs[(r["image"], r["seed"])][r["tool"]] = r
    both = [p for p in pairs.values() if TOOL in p and REXJAX in p]
    med = {tool: {k: _median(r[k] for r in rows if r["tool"] == tool)
                  for k in ("seconds", "forward_images", "area", "insertion", "deletion")}
           for tool in (TOOL, REXJAX)}
    suff = {tool: (sum(_true(r["sufficient_torch"]) for r in rows if r["tool"] == tool),
                   sum(r["tool"] == tool for r in rows)) for tool in (TOOL, REXJAX)}
    ratios = {k: _median(float(p[TOOL][k]) / float(p[REXJAX][k]) for p in both)
              for k in ("seconds", "forward_images", "area", "insertion")}
    config = _flatten(facts.get("rexjax_config", {}))
    point = ", ".join(f"{k} {config[k]}" for k in POINT_FIELDS if k in config)
    # runs made before the validation set existed ran on the vendored images, the tuning set
    image_set = _provenance(folder).get("image_set") or facts.get("image_set") or "tuning set (third_party/images)"
    return dict(folder=folder, facts=facts, pairs=len(both), medians=med, sufficient=suff,
                ratios=ratios, point=point, images=len({p[0] for p in pairs}), image_set=image_set.split(" (")[0])


def _bench_compare_table(runs: list[dict], start: Path) -> list[str]:
    head = ("| run | images | rexjax commit | rexjax point | pairs | s per image, tool / rexjax | forward images "
            "| area | insertion | deletion | per pair, tool / rexjax: s, forward images, area, insertion "
            "| sufficient (torch) |")
    lines = [head, "| " + " | ".join(["---"] * (head.count("|") - 1)) + " |"]
    for run in runs:
        m, s, r = run["medians"], run["sufficient"], run["ratios"]
        two = lambda k: f"{_fmt(m[TOOL][k], DIGITS[k])} / {_fmt(m[REXJAX][k], DIGITS[k])}"  # noqa: E731
        lines.append(
            f"| [{run['folder'].name}]({_rel(run['folder'] / 'summary.md', start)}) | {run['image_set']} "
            f"| {run['facts'].get('rexjax_source', '-')} | {run['point']} | {run['pairs']} "
            f"| {two('seconds')} | {two('forward_images')} | {two('area')} | {two('insertion')} "
            f"| {two('deletion')} | {_fmt(r['seconds'], 2)}, {_fmt(r['forward_images'], 2)}, "
            f"{_fmt(r['area'], 2)}, {_fmt(r['insertion'], 2)} "
            f"| {s[TOOL][0]}/{s[TOOL][1]}, {s[REXJAX][0]}/{s[REXJAX][1]} |")
    return lines


def _machine_lines(runs: list[dict]) -> list[str]:
    lines = ["| run | tool | jax, device | CPUs | load average at start -> end | bare model images/s "
             "(batch) before, after | rexjax compile s (excluded) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        f = run["facts"]
        tool = f.get("tool", {})
        load = lambda v: "(" + ", ".join(_fmt(x, 2) for x in v) + ")" if v else "-"  # noqa: E731
        raw = (f"{_fmt(f.get('raw_images_per_s_start', float('nan')), 1)}, "
               f"{_fmt(f.get('raw_images_per_s_end', float('nan')), 1)} ({f.get('raw_batch', '-')})")
        lines.append(f"| {run['folder'].name} | rex-xai {tool.get('rex_xai', '-')}, torch "
                     f"{tool.get('torch', '-')}, {tool.get('threads', '-')} threads | jax {f.get('jax', '-')}, "
                     f"{f.get('device', '-')} | {f.get('cpus', '-')} | {load(f.get('load_start'))} -> "
                     f"{load(f.get('load_end'))} | {raw} | {_fmt(f.get('rexjax_compile_s', float('nan')), 1)} |")
    return lines


# ------------------------------------------------------------------- frontier, screen, oracle

def _frontier_lines(folder: Path, start: Path) -> list[str]:
    rows = _read_csv(folder / "frontier.csv")
    images = sorted({r["images"] for r in rows})
    seeds = sorted({r["seeds"] for r in rows})
    lines = [f"Folder [{_rel(folder, start)}]({_rel(folder / 'frontier.md', start)}) "
             f"(plot: `frontier.png`). Images: {'; '.join(images)}; seeds: {', '.join(seeds)}. "
             "Medians over the runs of each point. A point names the fields it sets over the defaults "
             "of the run that measured it; `frontier.md` says which rows ran together and over "
             "which defaults. Seconds compare only between rows of one run.", "",
             "| tool | point | runs | forward images | s | area | insertion | deletion | sufficient |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        cells = " | ".join(_fmt(r[k], DIGITS[k]) for k in ("forward_images", "seconds", "area", "insertion", "deletion"))
        lines.append(f"| {r['tool']} | {r['point']} | {int(float(r['runs']))} | {cells} "
                     f"| {int(float(r['sufficient']))}/{int(float(r['runs']))} |")
    return lines


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def _screen_lines(folder: Path, start: Path) -> list[str]:
    summary = (folder / "summary.md").read_text()
    first = next((line for line in summary.splitlines() if line.strip()), "")
    return [f"Folder [{_rel(folder, start)}]({_rel(folder / 'summary.md', start)}). {first}", "",
            *_table_lines(summary)]


def oracle_blocks(text: str) -> list[dict]:
    """The blocks of an oracle_quality table.md: its command line and its rows by oracle."""
    blocks: list[dict] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            blocks.append({"command": line[2:].strip(), "rows": {}})
        elif blocks and line.startswith("| ") and not line.startswith("| rule") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            blocks[-1]["rows"][cells[1]] = cells
    return blocks


def _oracle_lines(folder: Path, start: Path) -> list[str]:
    blocks = oracle_blocks((folder / "table.md").read_text())
    lines = [f"Folder [{_rel(folder, start)}]({_rel(folder / 'table.md', start)}) (every block with "
             "its command line and config). Ratio = explanation pixels / pixels needed, over the "
             "keys; the bound is median <= 2 and worst <= 3.", "",
             "| options (of the block's command line) | rule | single: median / worst | or | and "
             "| forward images (mean, and) |", "| --- | --- | --- | --- | --- | --- |"]
    for block in blocks:
        opts = " ".join(a for a in block["command"].split()[3:])
        cells = block["rows"]
        rule = next(iter(cells.values()))[0] if cells else "-"
        mw = lambda o: f"{cells[o][4]} / {cells[o][5]}" if o in cells else "-"  # noqa: E731
        fwd = cells["and"][8] if "and" in cells else "-"
        lines.append(f"| `{opts}` | {rule} | {mw('single')} | {mw('or')} | {mw('and')} | {fwd} |")
    return lines


# ------------------------------------------------------------------------------- studies

def _study_rows(folder: Path) -> list[dict]:
    return _read_csv(folder / "results.csv")


def _first_section(tables_md: Path) -> list[str]:
    """The first `## ` section of a study's tables.md (its heading and table)."""
    if not tables_md.is_file():
        return []
    out, started = [], False
    for line in tables_md.read_text().splitlines():
        if line.startswith("## "):
            if started:
                break
            started = True
        if started:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return out


def study_readme(folder: Path) -> str:
    config = json.loads((folder / "config.json").read_text())
    study = config.get("study", folder.name)
    rows = _study_rows(folder)
    prov = _provenance(folder)
    about = _docstring_paragraph(ROOT / "experiments" / "configs" / f"{study}.py")
    command = prov.get("command") or STUDY_COMMANDS.get(folder.name, "(not recorded)")
    versions = sorted({r.get("rexjax_version", "") for r in rows} - {""})
    models = sorted({r["model"] for r in rows})
    weights = sorted({r.get("weights", "") for r in rows} - {""})
    images = sorted({r["image"] for r in rows})
    methods = sorted({r["method"] for r in rows})
    lines = [f"# {folder.name}", "",
             about or f"Study `{study}`.", "",
             "## Command", "", "```", command, "```", "",
             "## What the files record", "",
             f"- `results.csv`: {len(rows)} rows, one per (image, model, method); models "
             f"{', '.join(models)}; weights {', '.join(weights) or '-'}; {len(images)} images from "
             f"`{config.get('images', '-')}`"
             + (f" with masks from `{config['data']['masks']}`" if (config.get("data") or {}).get("masks") else "")
             + f"; seed {config.get('seed', '-')}; methods {', '.join(methods)}.",
             f"- rexjax version {', '.join(versions) or '-'} (column `rexjax_version`)"
             + (f"; commit {prov['commit']}" if prov.get("commit") else
                "; the files record no commit (`git log -- <this folder>` names the one that wrote them)")
             + ".",
             "- `config.json`: every setting of the run; `method_config` in each row: the method's "
             "full configuration (`methods.make(method, **json.loads(method_config))` rebuilds it).",
             "- `tables.md`: every table of the study; `report.html`: tables, plots and every image's "
             "maps in one self-contained page.", "",
             "## Provenance", "", *_provenance_lines(folder), "",
             "## Headline", ""]
    section = _first_section(folder / "tables.md")
    lines += [("### " + line[3:]) if line.startswith("## ") else line for line in section] or ["(no tables.md)"]
    lines += ["", _REGENERATE]
    return "\n".join(lines) + "\n"


def photobomb_readme(folder: Path) -> str:
    rows = _read_csv(folder / "photobomb.csv")
    kept = [r for r in rows if not r["skipped"]]
    occluded = [float(r["occluded"]) for r in kept]
    about = _docstring_paragraph(ROOT / "experiments" / "photobomb.py")
    lines = [f"# {folder.name}", "", about, "",
             "## Command", "", "```", _provenance(folder).get("command") or STUDY_COMMANDS.get("photobomb", "-"),
             "```", "",
             "## What the files record", "",
             "- `photobomb.csv`: per image the target, its confidence before and after the occluders, "
             "the occluded fraction, the placement kept, or why the image was skipped.",
             "- `masks/`: the occluders as a folder of same-stem masks (the images themselves are "
             "regenerated by the command, not committed).", "",
             "## Provenance", "", *_provenance_lines(folder), "",
             "## Headline", "",
             f"{len(kept)} of {len(rows)} images kept; occluders cover "
             f"{_fmt(min(occluded) * 100, 1)}-{_fmt(max(occluded) * 100, 1)} % of an image (mean "
             f"{_fmt(100 * statistics.fmean(occluded), 1)} %: a pixel set placed at random scores OUT "
             f"{_fmt(1 - statistics.fmean(occluded), 3)}, the chance level)." if kept else
             f"0 of {len(rows)} images kept."]
    lines += [f"- skipped {r['image']}: {r['skipped']}" for r in rows if r["skipped"]]
    lines += ["", _REGENERATE]
    return "\n".join(lines) + "\n"




# ------------------------------------------------------------------------- the documents

_REGENERATE = "Regenerate this file with `make docs` (it is written by `benchmarks/docs.py`)."


def _bench_compare_headline(run: dict) -> str:
    m, r, s = run["medians"], run["ratios"], run["sufficient"]
    return (f"{run['image_set'].capitalize()}: rexjax at {run['point'] or 'its defaults'} against the tool "
            f"at its defaults, {run['pairs']} "
            f"(image, seed) pairs: {_fmt(r['seconds'], 2)}x faster per image and {_fmt(r['forward_images'], 2)}x "
            f"fewer forward images (per-pair medians); median area {_fmt(m[REXJAX]['area'])} vs "
            f"{_fmt(m[TOOL]['area'])}, insertion {_fmt(m[REXJAX]['insertion'])} vs {_fmt(m[TOOL]['insertion'])}; "
            f"sufficient (torch) {s[REXJAX][0]}/{s[REXJAX][1]} vs {s[TOOL][0]}/{s[TOOL][1]}.")


def _headline(kind: str, folder: Path, start: Path) -> list[str]:
    if kind == "bench_compare":
        return [_bench_compare_headline(bench_compare_run(folder))]
    if kind == "frontier":
        rows = _read_csv(folder / "frontier.csv")
        return [f"{len(rows)} points ({sum(r['tool'] == TOOL for r in rows)} of the tool, "
                f"{sum(r['tool'] == REXJAX for r in rows)} of rexjax); the table is `frontier.md`, the plot "
                "`frontier.png`, every row `frontier.csv`."]
    if kind == "screen":
        return _screen_lines(folder, start)[2:]
    return _oracle_lines(folder, start)[2:]


def benchmark_readme(group: Path, kind: str, runs: list[Path]) -> str:
    about = _docstring_paragraph(ROOT / SCRIPTS[kind])
    lines = [f"# {group.name}", "", about, "",
             f"Script: `{SCRIPTS[kind]}`. One folder per run, named by its date; each holds the files "
             "the script wrote and a `provenance.json` (command, commits, versions). Every run's "
             "numbers are also in [docs/benchmarks.md]" f"({_rel(ROOT / BENCHMARKS_DOC, group)}).", ""]
    for folder in runs:
        lines += [f"## {folder.name}", "", *_provenance_lines(folder), "", *_headline(kind, folder, folder), ""]
    lines.append(_REGENERATE)
    return "\n".join(lines) + "\n"


def benchmarks_md(root: Path = ROOT) -> str:
    found = find_results(root)
    start = root / "docs"
    runs = [bench_compare_run(f) for f in found["bench_compare"]]
    lines = ["# Benchmarks", "",
             "Written by `python -m benchmarks.docs` (`make docs`) from the results files; do not "
             "edit by hand. Every number below is read or computed (medians) from the files linked. "
             "Forward images, areas, insertion and sufficiency are deterministic for a seed; seconds "
             "depend on the machine and its load and compare only within one run. A run's "
             "`provenance.json` records its command, commits and versions (also in the README of its "
             "benchmark folder); config values are shown as the run recorded them.", ""]
    lines += ["## rexjax against the ReX tool (bench-compare)", "",
              "`make bench-compare` runs rexjax and the ReX tool (rex-xai 0.4.1, torch) on the vendored "
              "images for several seeds in one process pair, alternating which goes first, on the same "
              "input arrays and weights, and scores every map with one metric code (rexjax's "
              "insertion/deletion, ReX convention; area = explanation pixels / image pixels; "
              "sufficiency re-checked by the torch model). Medians over (image, seed) pairs; the run's "
              "`summary.md` has bootstrap intervals and the per-image table. The tool always runs at "
              "its defaults; \"rexjax point\" is the budget the run's `facts.json` records.", ""]
    lines += _bench_compare_table(runs, start) if runs else ["(no bench-compare run found)"]
    if runs:
        lines += ["", "Machines and load, as each run's `facts.json` records them:", "", *_machine_lines(runs)]
    for kind, title, render in (("frontier", "Quality-cost frontier", _frontier_lines),
                                ("screen", "Screens of rexjax points against the tool's rows", _screen_lines),
                                ("oracle", "The oracle size bound at several budgets", _oracle_lines)):
        for folder in found[kind]:
            lines += ["", f"## {title}", "", *render(folder, start)]
    studies = found["study"] + found["photobomb"]
    if studies:
        lines += ["", "## Studies", "",
                  "The papers' studies at CPU scale; each folder's README says what it measures, the "
                  "command and the headline table.", ""]
        for folder in studies:
            lines.append(f"- [{folder.name}]({_rel(folder / 'README.md', start)})")
    return "\n".join(lines) + "\n"


def outputs(root: Path = ROOT) -> dict[Path, str]:
    """Every generated file: path -> the text `benchmarks.docs` writes there now."""
    found = find_results(root)
    out = {root / BENCHMARKS_DOC: benchmarks_md(root)}
    for kind in SCRIPTS:
        groups: dict[Path, list[Path]] = defaultdict(list)
        for folder in found[kind]:
            groups[group_of(folder)].append(folder)
        for group, runs in groups.items():
            out[group / "README.md"] = benchmark_readme(group, kind, runs)
    for folder in found["study"]:
        out[folder / "README.md"] = study_readme(folder)
    for folder in found["photobomb"]:
        out[folder / "README.md"] = photobomb_readme(folder)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if path.is_file() and path.read_text() == text:
            continue
        if args.check:
            stale.append(path.relative_to(ROOT).as_posix())
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT).as_posix()}")
    if stale:
        print("out of date (run `make docs`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
