"""report.html in a real headless browser (Debian's chromium): every image decodes, and the
rows table holds the CSV's rows in order; skipped with the reason when no browser exists."""

import csv
import html.parser
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from rexjax.report import html as report
from rexjax.report import maps
from rexjax.studies.rowlog import read_rows
from rexjax.studies.runner import Section

BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
COLUMNS = ["image", "image_index", "model", "method", "target", "label", "full_confidence", "area", "ins", "del",
           "IN", "OUT", "segment_area", "time_s", "forward_images", "rho_k1"]


def fake_run(out):
    """A run folder: results.csv (2 images x 2 methods), every row's PNGs, one plot."""
    rng = np.random.default_rng(0)
    rows = []
    for i, image in enumerate(("cat.jpg", "dog.png")):
        source = maps.input_path(out, "m", image)
        source.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(source)
        for method in ("rex", "rise"):
            for p in maps.paths(out, "m", method, image).values():
                p.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(p)
            rows.append(dict(image=image, image_index=str(i), model="m", method=method, target=str(3 + i),
                             label="tabby" if i == 0 else "", full_confidence="0.9", area=str(rng.random()),
                             ins=str(rng.random()), **{"del": str(rng.random())}, IN="", OUT="", segment_area="", time_s="1.5",
                             forward_images="100", rho_k1="0.25"))
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(out / "plot.png")
    return read_rows(out / "results.csv")


class _Rows(html.parser.HTMLParser):
    """The text of every cell of <table id="rows">, per row."""

    def __init__(self):
        super().__init__()
        self.inside, self.rows, self.cell = False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == "rows":
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def test_report_content(tmp_path):
    rows = fake_run(tmp_path)
    path = report.write_report(tmp_path, rows, [Section("plots", "| a | b |\n|---|---|\n| 1 | 2 |", ("plot.png",))],
                               title="t", extra_columns=("rho_k1",))
    page = path.read_text()
    assert "src=\"file:" not in page and "src=\"maps/" not in page  # self-contained
    parser = _Rows()
    parser.feed(page)
    header, *body = parser.rows
    assert header == list(report.ROW_COLUMNS[:3]) + list(report.ROW_COLUMNS[3:]) + ["rho_k1"]
    assert [(r[0], r[1], r[2]) for r in body] == [(r["image"], r["model"], r["method"]) for r in rows]
    assert [r[header.index("area")] for r in body] == [f"{float(r['area']):.4f}" for r in rows]
    # 1 plot + per image: the input and (map, explanation) per method
    assert page.count("<img ") == 1 + 2 * (1 + 2 * 2)
    assert "| a | b |" in (tmp_path / "tables.md").read_text()


@pytest.mark.skipif(BROWSER is None, reason="no headless browser (chromium) installed: apt-get install chromium")
def test_report_in_headless_chromium(tmp_path):
    rows = fake_run(tmp_path)
    path = report.write_report(tmp_path, rows, [Section("plots", "", ("plot.png",))], title="t")
    shot = tmp_path / "shot.png"
    base = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--virtual-time-budget=5000", "--window-size=1200,1600"]
    dom = subprocess.run(base + ["--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120).stdout
    subprocess.run(base + [f"--screenshot={shot}", path.as_uri()], capture_output=True, timeout=120)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert loaded and total, dom[:500]
    assert int(total.group(1)) == 1 + 2 * (1 + 2 * 2) and loaded.group(1) == total.group(1)
    parser = _Rows()
    parser.feed(dom)
    assert [(r[0], r[2]) for r in parser.rows[1:]] == [(r["image"], r["method"]) for r in rows]
    with Image.open(shot) as im:
        assert im.size == (1200, 1600) and np.asarray(im.convert("L")).std() > 0  # something was drawn
