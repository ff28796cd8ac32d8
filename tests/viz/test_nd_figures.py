"""Figures of 1-D and 3-D explanations (`rexjax.viz.signal`, `rexjax.viz.volume`), read back
from the PNG files: the pixels where each element or voxel is drawn are located through the
returned Figure's axes (data -> figure fraction -> PNG pixel), and compared with what the
mask and the responsibility say they must show."""

import matplotlib
import numpy as np
import pytest
from PIL import Image

from rexjax.viz.signal import SHADE, SHADE_ALPHA, mask_runs, save_signal_figure
from rexjax.viz.volume import save_volume_figure, slice_point


def _png(path) -> tuple[np.ndarray, dict]:
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB")).astype(int), dict(im.info)


def _pixel(fig, ax, png, x, y) -> tuple[int, int]:
    """(row, column) of the PNG pixel where `ax` draws the data point (x, y)."""
    fx, fy = fig.transFigure.inverted().transform(ax.transData.transform((x, y)))
    h, w = png.shape[:2]
    return int(np.floor((1 - fy) * h)), int(np.floor(fx * w))


def _axes_row(fig, ax, png, frac: float) -> int:
    """The PNG row `frac` of the way up `ax` (0 bottom, 1 top)."""
    box = ax.get_position()
    return int(np.floor((1 - (box.y0 + frac * box.height)) * png.shape[0]))


@pytest.mark.parametrize("mask", [
    np.isin(np.arange(40), [0, 1, 2, 3, 10, 20, 21, 22, 23, 24, 25, 39]),  # runs at both ends, one of length 1
    np.arange(40) % 2 == 1,  # every other element: 20 runs of one
    np.zeros(40, bool),
])
def test_mask_runs_against_a_loop(mask):
    runs, start = [], None
    for i, m in enumerate(list(mask) + [False]):
        if m and start is None:
            start = i
        if not m and start is not None:
            runs.append((start, i))
            start = None
    assert [tuple(r) for r in mask_runs(mask)] == runs


def test_signal_shading_is_exactly_the_masked_elements(tmp_path):
    """In both panels, the pixel at each element's centre, low in the panel (below every
    line), has the band's colour (SHADE at SHADE_ALPHA over white) exactly when the element
    is in the mask. Runs touch both ends and one run is a single element, so shading shifted
    by half an element, a run's last element dropped or added, or the runs of another mask
    fail. Also: a PNG of the figure's size, its Title, one line per channel."""
    n = 40
    mask = np.isin(np.arange(n), [0, 1, 2, 3, 10, 20, 21, 22, 23, 24, 25, 39])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    fig = save_signal_figure(tmp_path / "s.png", x, rng.random(n).astype(np.float32), mask, "s: class 1")
    png, info = _png(tmp_path / "s.png")
    assert png.shape == (550, 990, 3) and info["Title"] == "s: class 1"
    assert len(fig.axes[0].lines) == 3
    shade = np.array(matplotlib.colors.to_rgb(SHADE)) * 255 * SHADE_ALPHA + 255 * (1 - SHADE_ALPHA)
    for ax in fig.axes[:2]:
        row = _axes_row(fig, ax, png, 0.02)
        for i in range(n):
            colour = png[row, _pixel(fig, ax, png, i, 0)[1]]
            if mask[i]:
                assert np.abs(colour - shade).max() <= 6, (i, colour, shade)
            else:
                assert (colour >= 250).all(), (i, colour)


@pytest.fixture
def volume_case():
    """A (6, 7, 8) volume, value 1 except one voxel 0 off every slice (so the slices show pure
    white where undimmed); an L-shaped mask plus a stray voxel; a responsibility whose largest
    value lies outside the mask and whose largest value inside it is at (2, 4, 3)."""
    shape = (6, 7, 8)
    volume = np.ones(shape + (1,), np.float32)
    volume[5, 6, 0] = 0.0
    mask = np.zeros(shape, bool)
    mask[1:4, 2:6, 3:5] = True
    mask[2, 1:3, 3] = True
    mask[5, 0, 7] = True
    r = np.random.default_rng(1).random(shape).astype(np.float32)
    r[2, 4, 3] = 2.0
    r[0, 0, 0] = 3.0
    return volume, r, mask


def test_slice_point_is_the_masks_most_responsible_voxel(volume_case):
    """The slices cross at the argmax inside the mask, not the map's global argmax; with an
    empty mask, at the global argmax; ties go to the first voxel in C order."""
    _, r, mask = volume_case
    assert slice_point(r, mask) == (2, 4, 3)
    assert slice_point(r, np.zeros_like(mask)) == (0, 0, 0)
    tied = np.zeros((3, 3, 3), np.float32)
    tied[1, 2, 0] = tied[2, 0, 1] = 1.0
    assert slice_point(tied, np.ones((3, 3, 3), bool)) == (1, 2, 0)


def test_volume_figure_shows_the_slices_through_the_point(tmp_path, volume_case):
    """Top row: at each voxel centre of the slices [2], [:, 4], [:, :, 3], white where the mask
    holds and dimmed (0.25) where it does not; bottom row: the magma colour of the voxel's
    responsibility on the whole map's scale. The three dimensions differ, so a slice taken on
    the wrong axis, H and W transposed, a slice through another point or a per-slice colour
    scale fail. Also: a PNG of the figure's size, its Title."""
    volume, r, mask = volume_case
    fig = save_volume_figure(tmp_path / "v.png", volume, r, mask, "v: class 1")
    png, info = _png(tmp_path / "v.png")
    assert png.shape == (726, 1100, 3) and info["Title"] == "v: class 1"
    magma = matplotlib.colormaps["magma"]
    lo, hi = r.min(), r.max()
    slices = zip((mask[2], mask[:, 4], mask[:, :, 3]), (r[2], r[:, 4], r[:, :, 3]), fig.axes[:3], fig.axes[3:6])
    for m, values, top, bottom in slices:
        for (i, j), inside in np.ndenumerate(m):
            colour = png[_pixel(fig, top, png, j, i)]
            want = 255 if inside else 255 * 0.25
            assert np.abs(colour - want).max() <= 2, (i, j, inside, colour)
            colour = png[_pixel(fig, bottom, png, j, i)]
            want = np.array(magma((values[i, j] - lo) / (hi - lo))[:3]) * 255
            assert np.abs(colour - want).max() <= 6, (i, j, colour, want)
