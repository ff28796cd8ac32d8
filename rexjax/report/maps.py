"""The PNGs a study run keeps per row, under `<out>/maps/<model>/<method>/<image stem>`:

    .map.png     the method's map, min-max scaled, "inferno" colours (H x W of the model input)
    .expl.png    the input with everything outside the explanation dimmed
    .mask.png    the explanation as 0 / 255: the method's own binary mask when its
                 Attribution record has one (ReX's sufficient explanation, the extremal
                 region), else the area extraction of its map
    .map.npy     the map itself, f32[H, W], bit for bit (what `rexjax explain` writes as
                 `responsibility` for the same image, seed and config)
and the model's input image once per (model, image): `<out>/maps/<model>/<stem>.input.png`.

`paths(out, model, method, image)` names them; the study runner writes them (`save`), the
report's gallery shows them and the studies' analyses read the masks back (`read_mask`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import numpy as np

KINDS = ("map", "expl", "mask")


def slug(text: str) -> str:
    """`text` with every character but letters, digits and _.=+- replaced by _ (a file name)."""
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", str(text))


def paths(out: str | Path, model: str, method: str, image: str) -> dict[str, Path]:
    """{kind: path} of one row's PNGs (KINDS), relative names under `out`."""
    base = Path(out) / "maps" / slug(model) / slug(method) / slug(Path(image).stem)
    return {k: base.with_name(f"{base.name}.{k}.png") for k in KINDS}


def array_path(out: str | Path, model: str, method: str, image: str) -> Path:
    """The row's raw map, f32[H, W] as `.map.npy` beside its PNGs."""
    png = paths(out, model, method, image)["map"]
    return png.with_name(png.name[: -len(".png")] + ".npy")


def input_path(out: str | Path, model: str, image: str) -> Path:
    """The model's input image of `image` (as the model saw it)."""
    return Path(out) / "maps" / slug(model) / f"{slug(Path(image).stem)}.input.png"


def own_mask(measured) -> np.ndarray:
    """The method's own binary explanation if its record has a `mask`, else the extraction."""
    mask = getattr(measured.attribution.record, "mask", None)
    return np.asarray(measured.extraction if mask is None else mask, bool)


def save(out, row: Mapping, classifier, x, measured) -> dict[str, Path]:
    """Writes one row's files (module doc); returns their paths."""
    import matplotlib
    from PIL import Image

    from rexjax.viz.explanation import display_image
    from rexjax.viz.figure import composite_image

    p = paths(out, row["model"], row["method"], row["image"])
    p["map"].parent.mkdir(parents=True, exist_ok=True)
    m = np.asarray(measured.map, np.float32)
    np.save(array_path(out, row["model"], row["method"], row["image"]), m)
    lo, hi = float(m.min()), float(m.max())
    scaled = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    Image.fromarray((matplotlib.colormaps["inferno"](scaled)[..., :3] * 255).astype(np.uint8)).save(p["map"])
    mask = own_mask(measured)
    image = display_image(classifier.model, np.asarray(x))
    Image.fromarray(composite_image(image, [mask], dim=0.25)).save(p["expl"])
    Image.fromarray(mask.astype(np.uint8) * 255).save(p["mask"])
    source = input_path(out, row["model"], row["image"])
    if not source.exists():
        Image.fromarray(image).save(source)
    return p


def read_mask(path: str | Path, hw=None) -> np.ndarray:
    """bool[H, W] from a .mask.png (resized NEAREST to hw = (H, W) when given)."""
    from rexjax.data import read_segment
    from PIL import Image

    if hw is None:
        with Image.open(path) as im:
            hw = (im.height, im.width)
    return read_segment(path, hw)
