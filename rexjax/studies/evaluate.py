"""Study `evaluate`: what `rexjax evaluate` runs - every method of `config.methods` on every
image of one model, measured alike by `rexjax.evaluation.Evaluator`, no extra columns.

    config = evaluate.study_config(command_config)   # `rexjax/configs/evaluate.py`'s fields
    runner.run(config, evaluate)

Analysis: the ReX paper's Table 1 summary (`evaluation.summary_table`: per method n, area
mean and sample std, ins, del, IN, time, compile time, forward images) under a header that
names the run (`header`; both: `summary`), written to `<out>/summary.txt` with the config,
and as the report's one section.
"""

from __future__ import annotations

from pathlib import Path

import ml_collections

from rexjax import evaluation
from rexjax.studies import compare
from rexjax.studies.runner import Section, read_failed
from rexjax.studies.tables import numeric

EXTRA_COLUMNS: tuple = ()

variants = compare.variants


def study_config(config) -> ml_collections.ConfigDict:
    """The study config of an evaluate config (fields of `rexjax/configs/evaluate.py`): its
    model and weights the run's one model, its images and masks the "folder" layout; map files
    (PNGs and the raw `.map.npy`, `rexjax.report.maps`) only with `save_maps`."""
    study = ml_collections.ConfigDict(config.to_dict())
    study.study = "evaluate"
    study.models = study.model
    study.layout = "folder"
    study.data = ml_collections.ConfigDict({"masks": study.masks}, type_safe=False)
    study.save_maps = bool(config.get("save_maps", False))
    del study["model"], study["masks"]
    return study


def header(rows, config, failed=()) -> str:
    """One line naming the run: model, images (and the failed ones), weights, convention,
    mask_mode, seed, methods and the rexjax version, from the rows' run columns."""
    run = rows[0] if rows else {}
    images = len(dict.fromkeys(r["image"] for r in rows))
    names = ", ".join(sorted({f.image for f in failed}))
    evaluated = f"{images} images" + (f" ({len(failed)} failed: {names})" if failed else "")
    return (f"model {config.models}, {evaluated}, weights {run.get('weights') or '-'}, "
            f"convention {run.get('convention', config.convention)} (step {run.get('step', '-')}, insertion over "
            f"{run.get('ins_substrate', '-')}, deletion over {run.get('del_substrate', '-')}), "
            f"mask_mode {run.get('mask_mode', config.mask_mode)}, seed {config.seed}, methods {config.methods}, "
            f"rexjax {run.get('rexjax_version', evaluation.rexjax_version())}")


def summary(rows, config, failed=()) -> str:
    """`header` over `evaluation.summary_table` of the rows (CSV strings)."""
    return f"{header(rows, config, failed)}\n{evaluation.summary_table(numeric(rows))}"


def analyse(rows, out, config) -> list[Section]:
    """Writes `<out>/summary.txt` (`summary`, then the config); the report's section."""
    out = Path(out)
    failed = read_failed(out / "failed.txt")
    (out / "summary.txt").write_text(f"{summary(rows, config, failed)}\n\nconfig:\n{config}")
    return [Section("ReX paper Table 1 format", compare.paper_table(rows), text=header(rows, config, failed))]
