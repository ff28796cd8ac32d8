"""Study `convad_robustness` (ConvAD paper, Sec. 5.1: Figs. 5 / 6, Table 1): are explanations
computed under Activation-Deactivation more robust than those computed with an occlusion
value, and are they smaller?

Per model, confidence threshold gamma in `config.gammas` (the paper's "tau" axis: the
explanation must keep gamma of the full confidence; ReX's `min_confidence`) and occlusion in
`config.occlusions` ("ad" and the masking values min / max / zero / mean), ReX explains the
image; its sufficient explanation (the record's mask) is then pasted onto

    K1: `config.k_solid` solid colours over the model's input range (`config.colour_bounds`:
        None = from the model's preprocessing, "image" = the image's own range),
    K2: the other images of the run whose top-1 class differs (`config.k_other` of them at
        random, None = all),

and rho (the fraction of contexts in which the model still answers the target,
`metrics.rho_robustness`) is recorded with the explanation's area and confidence. Every
other method of `config.methods` (LIME: the Fig. 6 replication) runs once per occlusion;
its explanation is the area extraction of its map (gamma empty).

Analysis per model: rho K1 / K2 mean and SEM per occlusion and gamma (+ the Fig. 5 line
plot), Table 1's size difference (below), the explanations' mean confidence, and
the LIME replication.

Table 1's size difference is the paper's sign: mean AD area minus the mean area of the best
masking value (the one with the highest mean rho K1 at that gamma), in % of the image;
positive = AD's explanations are larger.

The masking values min / max / mean are the image's own per-channel statistics (masking.py):
each channel of a hidden pixel takes that channel's min / max / mean over the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rexjax import evaluation, methods, metrics
from rexjax.masking import parse_mask_mode
from rexjax.report import plots
from rexjax.report.html import markdown_table
from rexjax.report.maps import own_mask, slug
from rexjax.studies.runner import Section, Variant, make_method, split_names
from rexjax.studies.tables import mean_sem, values

EXTRA_COLUMNS = ("occlusion", "gamma", "expl_area", "expl_confidence", "rho_k1", "rho_k2")


def gammas(config) -> list[float]:
    out = [float(g) for g in split_names(str(config.gammas), "gammas")]
    bad = [g for g in out if not 0.0 <= g <= 1.0]
    if bad:
        raise ValueError(f"gammas must be in [0, 1], got {bad}")
    return out


def variants(config) -> list[Variant]:
    """For each method of `config.methods` and occlusion: ReX once per gamma (its
    min_confidence), any other method (LIME: Fig. 6) once."""
    out = []
    for name in evaluation.method_names(config.methods):
        canonical = methods.canonical(name)
        settings = config[canonical].to_dict() if canonical in config else {}
        for occlusion in split_names(config.occlusions, "occlusions"):
            mode = parse_mask_mode(occlusion, "occlusions")
            shared = {"batch_size": config.batch_size, "mask_mode": mode}
            if canonical == "rex":
                for g in gammas(config):
                    extract = {**settings.get("extract", {}), "min_confidence": g}
                    made = make_method(canonical, {**settings, "extract": extract}, shared)
                    out.append(Variant(f"{name}[{occlusion},g={g:g}]", made, mode))
            else:
                out.append(Variant(f"{name}[{occlusion}]", make_method(canonical, settings, shared), mode))
    return out


def _parse_name(name: str) -> tuple[str, str]:
    """'rex[ad,g=0.5]' -> ('ad', '0.5'); 'lime[min]' -> ('min', '')."""
    inner = name[name.index("[") + 1: -1].split(",")
    return inner[0], (inner[1].split("=")[1] if len(inner) > 1 else "")


def columns(ctx, row, x, measured) -> dict:
    occlusion, gamma = _parse_name(row["method"])
    mask = own_mask(measured)
    record = measured.attribution.record
    confidence = getattr(record, "explanation_confidence", None)
    others = [ctx.prepared(j) for j in range(len(ctx.samples)) if j != ctx.index]
    config = ctx.config
    k1 = k2 = None
    if mask.any():
        solid = metrics.solid_backgrounds(ctx.key, config.k_solid, x, metrics.colour_bounds(ctx.classifier, x, config.colour_bounds))
        k1 = metrics.rho(ctx.classifier, x, mask, row["target"], solid, config.batch_size)
        if others:
            try:
                other = metrics.other_class_backgrounds(ctx.classifier, np.stack(others), row["target"],
                                                        k=config.k_other, key=ctx.key, batch_size=config.batch_size)
                k2 = metrics.rho(ctx.classifier, x, mask, row["target"], other, config.batch_size)
            except ValueError:  # no (or too few) other-class images among the run's
                k2 = None
    return {"occlusion": occlusion, "gamma": gamma, "expl_area": float(mask.mean()),
            "expl_confidence": None if confidence is None else float(confidence), "rho_k1": k1, "rho_k2": k2}


def _fmt(mean, sem):
    if mean is None:
        return "-"
    return f"{mean:.3f}" + ("" if sem is None else f" ± {sem:.3f}")


def analyse(rows, out, config) -> list[Section]:
    out = Path(out)
    sections = []
    gs = [f"{g:g}" for g in gammas(config)]
    occlusions = split_names(config.occlusions, "occlusions")
    for model in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == model]
        rex = [r for r in rs if r["method"].startswith("rex[")]
        for k in ("rho_k1", "rho_k2"):
            table = [[o] + [_fmt(*mean_sem(values(rex, k, occlusion=o, gamma=g))) for g in gs] for o in occlusions]
            series = {o: [mean_sem(values(rex, k, occlusion=o, gamma=g))[0] for g in gs] for o in occlusions}
            errs = {o: [mean_sem(values(rex, k, occlusion=o, gamma=g))[1] or 0.0 for g in gs] for o in occlusions}
            png = plots.lines(out / f"{k}_{slug(model)}.png", [float(g) for g in gs],
                              {o: [np.nan if v is None else v for v in s] for o, s in series.items()}, errors=errs,
                              xlabel="confidence threshold gamma", ylabel=k.replace("_", " "),
                              title=f"{model}: {k} (mean ± SEM)")
            sections.append(Section(f"{model}: {k} (ConvAD Fig. 5), rows occlusion, columns gamma",
                                    markdown_table(["occlusion"] + gs, table), (png.name,)))
        diff, best_row = [], []
        for g in gs:
            masking = [o for o in occlusions if o != "ad"]
            rho_of = {o: mean_sem(values(rex, "rho_k1", occlusion=o, gamma=g))[0] for o in masking}
            ranked = [o for o in masking if rho_of[o] is not None]
            ad_area = mean_sem(values(rex, "expl_area", occlusion="ad", gamma=g))[0]
            if not ranked or ad_area is None:
                diff.append(None)
                best_row.append("-")
                continue
            best = max(ranked, key=lambda o: rho_of[o])
            best_area = mean_sem(values(rex, "expl_area", occlusion=best, gamma=g))[0]
            diff.append(100.0 * (ad_area - best_area))
            best_row.append(best)
        sections.append(Section(
            f"{model}: size difference, AD minus the best masking value, % of the image (ConvAD Table 1; positive = AD larger)",
            markdown_table(["gamma"] + gs, [["size difference (%)"] + diff, ["best masking value (rho K1)"] + best_row])))
        conf = [[o] + [mean_sem(values(rex, "expl_confidence", occlusion=o, gamma=g))[0] for g in gs] for o in occlusions]
        area = [[o] + [mean_sem(values(rex, "expl_area", occlusion=o, gamma=g))[0] for g in gs] for o in occlusions]
        sections.append(Section(f"{model}: explanation confidence (target probability on the explanation alone)",
                                markdown_table(["occlusion"] + gs, conf)))
        sections.append(Section(f"{model}: explanation area", markdown_table(["occlusion"] + gs, area)))
        for other in dict.fromkeys(r["method"].split("[")[0] for r in rs if not r["method"].startswith("rex[")):
            lime = [r for r in rs if r["method"].startswith(other + "[")]
            table = [[o, _fmt(*mean_sem(values(lime, "rho_k1", occlusion=o))),
                      _fmt(*mean_sem(values(lime, "rho_k2", occlusion=o))),
                      mean_sem(values(lime, "expl_area", occlusion=o))[0]] for o in occlusions]
            sections.append(Section(f"{model}: {other} under each occlusion (ConvAD Fig. 6: LIME)",
                                    markdown_table(["occlusion", "rho K1", "rho K2", "area"], table)))
    return sections
