"""`report.html`: one self-contained page per study run, made from its CSV rows and PNGs.

    write_report(out, rows, sections, title, config_text) -> Path     <out>/report.html
    markdown_table(header, rows) -> str                                a GitHub markdown table

The page holds, in order: the study's sections (title, table, plots), a gallery with one
block per image (the input as each model saw it, then every (model, method): its map and
its explanation side by side, captioned with area / ins / del), the table of every row's
numbers (`<table id="rows">`, one `<tr>` per CSV row in CSV order), and the config. Every
image is embedded as a data URI (gallery thumbnails as JPEG, at most THUMB pixels wide), so
the file can be mailed or committed alone. When the page has loaded, a script sets
`data-images-loaded` / `data-images-total` on `<body>` (images decoded / present), which
the browser test reads. Also writes `<out>/tables.md` (the sections' tables).
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Mapping, Sequence

from rexjax.report import maps as map_files

THUMB = 160
ROW_COLUMNS = ("image", "model", "method", "target", "label", "full_confidence", "area", "ins", "del", "IN", "OUT",
               "segment_area", "time_s", "forward_images")

SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', ok);
  document.body.setAttribute('data-images-total', imgs.length);
});
</script>"""

STYLE = """<style>
body{font-family:sans-serif;margin:1.5em;color:#222} table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px;text-align:right} th{background:#eee}
td.t{text-align:left} .img{display:inline-block;margin:3px;text-align:center;font-size:11px;vertical-align:top}
.gallery>div{border-top:1px solid #ddd;padding:6px 0} h3{margin:.3em 0}
</style>"""


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table; floats with 4 decimals, None as '-'."""

    def cell(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _table_html(markdown: str) -> str:
    lines = [ln.strip().strip("|").split("|") for ln in markdown.strip().splitlines() if ln.strip()]
    if len(lines) < 2:
        return ""
    head = "".join(f"<th>{html.escape(c.strip())}</th>" for c in lines[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>" for r in lines[2:])
    return f'<table class="summary"><tr>{head}</tr>{body}</table>'


def _data_uri(path: Path, thumb: bool) -> str:
    from PIL import Image

    if not thumb:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.width > THUMB:
            im = im.resize((THUMB, max(1, round(im.height * THUMB / im.width))), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _img(path: Path, caption: str, thumb: bool = True) -> str:
    if not path.is_file():
        return f'<div class="img">missing: {html.escape(path.name)}</div>'
    return (f'<div class="img"><img src="{_data_uri(path, thumb)}" alt="{html.escape(path.name)}"><br>'
            f"{html.escape(caption)}</div>")


def _number(value: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return value or ""
    return value if v.is_integer() and "." not in value and "e" not in value else f"{v:.4f}"


def _gallery(out: Path, rows: Sequence[Mapping[str, str]]) -> str:
    blocks = []
    for image in dict.fromkeys(r["image"] for r in rows):
        rs = [r for r in rows if r["image"] == image]
        first = rs[0]
        parts = [f"<h3>{html.escape(image)}: {html.escape(first['label'] or first['target'])} "
                 f"(p = {float(first['full_confidence']):.3f})</h3>"]
        for model in dict.fromkeys(r["model"] for r in rs):
            parts.append(_img(map_files.input_path(out, model, image), f"{model} input"))
            for r in (r for r in rs if r["model"] == model):
                p = map_files.paths(out, model, r["method"], image)
                numbers = f"area {_number(r['area'])} ins {_number(r['ins'])} del {_number(r['del'])}"
                parts.append(_img(p["map"], f"{r['method']} map"))
                parts.append(_img(p["expl"], f"{r['method']}: {numbers}"))
        blocks.append("<div>" + "".join(parts) + "</div>")
    return '<div class="gallery">' + "".join(blocks) + "</div>"


def _rows_table(rows: Sequence[Mapping[str, str]], extra: Sequence[str]) -> str:
    cols = [c for c in ROW_COLUMNS if rows and c in rows[0]] + list(extra)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = "".join(
            f'<td class="t">{html.escape(r[c])}</td>' if c in ("image", "model", "method", "label")
            else f'<td title="{html.escape(r[c])}">{html.escape(_number(r[c]))}</td>' for c in cols)
        body.append(f"<tr>{cells}</tr>")
    return f'<table id="rows"><tr>{head}</tr>{"".join(body)}</table>'


def write_report(out, rows: Sequence[Mapping[str, str]], sections: Sequence, *, title: str,
                 config_text: str = "", extra_columns: Sequence[str] = ()) -> Path:
    """Writes `<out>/report.html` and `<out>/tables.md` (module doc); returns the report path.
    rows: the run's CSV rows (strings); sections: `rexjax.studies.runner.Section`s whose
    images are paths relative to `out`; extra_columns: study columns for the rows table."""
    out = Path(out)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}</head>",
             f"<body><h1>{html.escape(title)}</h1><p>{len(rows)} rows, "
             f"{len(set(r['image'] for r in rows))} images. Tables: means over images.</p>"]
    md = [f"# {title}\n"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{html.escape(s.text)}</p>")
        if s.table:
            parts.append(_table_html(s.table))
        parts += [_img(out / p, Path(p).name, thumb=False) for p in s.images]
        md.append(f"## {s.title}\n\n{s.text + chr(10) + chr(10) if s.text else ''}{s.table}\n")
    parts += ["<h2>Gallery</h2>", _gallery(out, rows), "<h2>Every row</h2>", _rows_table(rows, extra_columns),
              f"<h2>Config</h2><pre>{html.escape(config_text)}</pre>", SCRIPT, "</body></html>"]
    (out / "tables.md").write_text("\n".join(md))
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path
