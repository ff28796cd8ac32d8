"""The photobombing set (ReX paper, Sec. 6): black occluders inserted into an image so that
the model's classification does not change; the occluders are then the region a good
explanation must avoid (their mask is the segmentation, so a study's IN column is the
fraction of the explanation lying on them).

    placed = photobomb(classifier, image, rng, n_occluders=3, size=(0.2, 0.35), placement="uniform",
                       colour="black", tries=16)
    placed.image uint8[H, W, 3] (original resolution), placed.mask bool[H, W], or None

For one image: the model's top-1 t on the original; then `tries` candidate placements, each
`n_occluders` axis-aligned squares with sides uniform in `size` x min(H, W) (drawn from
`rng`, so a seed fixes them); the first candidate whose top-1 is still t is kept (all
candidates go through the model in one batch). `write_set` does this for a folder and writes
the plain layout `<out>/images/<stem>.png`, `<out>/masks/<stem>.png` (255 = occluder) and
`<out>/photobomb.csv` (per image: target, confidence before / after, occluded fraction, the
chance-level OUT `1 - occluded`, index of the kept candidate, or the reason it was skipped).

Placement: "uniform" (positions uniform over the image, squares may overlap: the paper's
"random patches") or "disjoint" (squares never overlap, so the occluded fraction is the sum
of the drawn squares). Colour: "black" (the paper's Sec. 6 set) or "random" (one uniform
RGB colour per square: Sec. 4's description of the same set).

Why the defaults (3 squares, sides 20-35 % of the shorter side):
a method's OUT (the share of its explanation off the occluders) only separates methods when
a pixel set placed at random scores visibly below 1. With the first defaults (2 squares,
sides 10-25 %: 3-7 % of the image) the chance OUT was about 0.95, so any method not drawn to
the occluders scored near 1. The defaults occlude 16 % of a tuning image on average (mean
over 50 placements on each of the 11 vendored photos; 11 % with sides 15-30 %, 19 % with
20-40 %), a chance OUT of about 0.84, the level of the weakest methods in the ReX paper's
photobombing tables (OUT 0.85-0.92); the kept placements, which must leave the top-1
unchanged, can occlude less (photobomb.csv records each, and how many images were skipped).
Study tables print each method's OUT beside this chance level (`evaluation.summary`).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple, Optional

import jax.numpy as jnp
import numpy as np

from rexjax import data

FIELDS = ("image", "target", "confidence", "confidence_after", "occluded", "chance_out", "candidate", "skipped")
PLACEMENTS = ("uniform", "disjoint")
COLOURS = ("black", "random")


class Placed(NamedTuple):
    image: np.ndarray
    mask: np.ndarray
    target: int
    confidence: float
    confidence_after: float
    candidate: int


def occluder_squares(rng: np.random.Generator, hw: tuple[int, int], n_occluders: int, size: tuple[float, float],
                     placement: str = "uniform", attempts: int = 64) -> list[tuple[int, int, int]]:
    """[(y, x, side)] of `n_occluders` squares, sides uniform in size x min(H, W), positions
    uniform; "disjoint" redraws a square's position (up to `attempts` times) until it overlaps
    none before it (a square that never fits is dropped)."""
    h, w = hw
    squares: list[tuple[int, int, int]] = []
    for _ in range(n_occluders):
        side = max(1, int(round(rng.uniform(*size) * min(h, w))))
        for _ in range(attempts if placement == "disjoint" else 1):
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            if placement != "disjoint" or all(y + side <= yy or yy + s <= y or x + side <= xx or xx + s <= x
                                               for yy, xx, s in squares):
                squares.append((y, x, side))
                break
    return squares


def occluder_mask(rng: np.random.Generator, hw: tuple[int, int], n_occluders: int, size: tuple[float, float],
                  placement: str = "uniform") -> np.ndarray:
    """bool[H, W]: the union of the `occluder_squares`."""
    mask = np.zeros(hw, bool)
    for y, x, side in occluder_squares(rng, hw, n_occluders, size, placement):
        mask[y: y + side, x: x + side] = True
    return mask


def _occlude(image: np.ndarray, rng: np.random.Generator, n_occluders: int, size, placement: str,
             colour: str) -> tuple[np.ndarray, np.ndarray]:
    """(occluded uint8 image, bool mask) for one candidate placement."""
    out, mask = image.copy(), np.zeros(image.shape[:2], bool)
    for y, x, side in occluder_squares(rng, image.shape[:2], n_occluders, size, placement):
        out[y: y + side, x: x + side] = 0 if colour == "black" else rng.integers(0, 256, 3, dtype=np.uint8)
        mask[y: y + side, x: x + side] = True
    return out, mask


def photobomb(classifier, image: np.ndarray, rng: np.random.Generator, *, n_occluders: int = 3,
              size: tuple[float, float] = (0.2, 0.35), placement: str = "uniform", colour: str = "black",
              tries: int = 16) -> tuple[Optional[Placed], int, float]:
    """(the first placement keeping the top-1, or None; the original top-1; its probability).
    image: uint8[H, W, 3] at its own resolution; the classifier prepares it (`prepare`)."""
    from PIL import Image

    probs = np.asarray(classifier.full_probs(classifier.prepare(Image.fromarray(image))))
    target, confidence = int(probs.argmax()), float(probs.max())
    candidates, masks = zip(*(_occlude(image, rng, n_occluders, size, placement, colour) for _ in range(tries)))
    batch = jnp.stack([classifier.prepare(Image.fromarray(c)) for c in candidates])
    after = np.asarray(classifier.probs(batch))
    for k in range(tries):
        if int(after[k].argmax()) == target:
            return Placed(candidates[k], masks[k], target, confidence, float(after[k, target]), k), target, confidence
    return None, target, confidence


def write_set(classifier, images, out, *, seed: int = 0, n_occluders: int = 3, size=(0.2, 0.35),
              placement: str = "uniform", colour: str = "black", tries: int = 16,
              max_images: Optional[int] = None) -> list[dict]:
    """Photobombs every image of `images` (a folder or file, `data.list_images`) into `out`
    (module doc); image i draws from np.random.default_rng([seed, i]). Returns the manifest rows."""
    from PIL import Image

    lo, hi = (float(v) for v in size)
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"size must be (low, high) with 0 < low <= high <= 1, got {size!r}")
    for name, v in (("n_occluders", n_occluders), ("tries", tries)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if colour not in COLOURS:
        raise ValueError(f"colour must be one of {COLOURS}, got {colour!r}")
    paths = data.list_images(images)[:max_images]
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB"))
        placed, target, confidence = photobomb(classifier, image, np.random.default_rng([seed, i]),
                                               n_occluders=n_occluders, size=(lo, hi), placement=placement,
                                               colour=colour, tries=tries)
        row = dict(image=path.name, target=target, confidence=confidence, confidence_after="", occluded="",
                   chance_out="", candidate="", skipped="")
        if placed is None:
            row["skipped"] = f"every one of {tries} placements changed the top-1"
        else:
            Image.fromarray(placed.image).save(out / "images" / f"{path.stem}.png")
            Image.fromarray(placed.mask.astype(np.uint8) * 255).save(out / "masks" / f"{path.stem}.png")
            row.update(confidence_after=placed.confidence_after, occluded=float(placed.mask.mean()),
                       chance_out=1.0 - float(placed.mask.mean()), candidate=placed.candidate)
        rows.append(row)
    with open(out / "photobomb.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return rows
