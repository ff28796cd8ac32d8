"""`rexjax explain --model PATH.onnx`: the ReX tool's preprocessing flags (--norm, --means,
--stds), grey (1-channel) and RGBA (4-channel) models fed any image, --binary_threshold on a
one-output model, --db rows, and the one-line refusals (bad flags, an unsupported op).

Every number is checked against an outside answer: onnxruntime on the tool's pipeline
re-derived with PIL and numpy (`onnx_models.tool_input`), hashlib for the SHA-256s, the
saved .npz for areas. All command lines run in one process (`cli_probe`: one JAX import);
the models are tiny graphs built with onnx.helper and compiled by `rexjax.models.onnx`."""

import hashlib
import json
import os
import sqlite3

import numpy as np
import pytest
from PIL import Image

from tests.commands import onnx_models
from tests.commands.test_cli_errors import _probe
from tests.helpers import tiny_pth_model as tiny

pytest.importorskip("onnxruntime")

GREY_SIZE, RGBA_SIZE, BINARY_SIZE = (10, 14), (10, 14), (12, 12)  # (H, W): non-square catches swapped axes
QUICK = ["--iters", "1", "--noprogress", "--config.extract.prune_grids=()"]
SPOTLIGHTS = ["--multiple", "2", "--config.spotlight.spotlights=2", "--config.spotlight.budget=4"]


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx_cli")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 30, 3), np.uint8)).save(d / "rgb.png")
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (16, 16, 4), np.uint8), "RGBA").save(d / "rgba.png")
    (d / "notes.db").write_text("not a database\n")
    (d / "model.pt").write_text("x")
    (d / "folder.onnx").mkdir()
    tiny.write_weights(d / "tiny.pth", 0)
    return {
        "dir": str(d), "rgb": str(d / "rgb.png"), "rgba": str(d / "rgba.png"), "notes_db": str(d / "notes.db"),
        "grey": onnx_models.cnn(d / "grey.onnx", channels=1, size=GREY_SIZE, seed=0),
        "rgb_model": onnx_models.cnn(d / "rgb.onnx", channels=3, size=GREY_SIZE, seed=0),
        "rgba_model": onnx_models.cnn(d / "rgba.onnx", channels=4, size=RGBA_SIZE, seed=1),
        "binary": onnx_models.binary(d / "binary.onnx", size=BINARY_SIZE, seed=3),
        "unsupported": onnx_models.cnn(d / "hardmax.onnx", extra_op="Hardmax"),
        "db": str(d / "results" / "r.db"), "zoo_db": str(d / "zoo.db"), "ort_db": str(d / "ort.db"),
        "weights": str(d / "tiny.pth"),
    }


# (argv after `explain`, with {placeholders} of `files`; text the one stderr line must hold)
USAGE = [
    (["{rgb}", "--model", "{dir}/missing.onnx"], "--model: no such model file"),
    (["{rgb}", "--model", "{dir}/folder.onnx"], "folder.onnx' is not a regular file"),
    (["{rgb}", "--model", "{dir}/model.pt"], "model.pt' is not an ONNX file"),
    (["{rgb}", "--model", "{grey}", "--weights", "{dir}/model.pt"], "--weights: an ONNX model file holds its own"),
    (["{rgb}", "--norm", "255"], "--norm: applies to ONNX models (--model PATH.onnx)"),
    (["{rgb}", "--means", "0.5,0.5,0.5"], "--means: applies to ONNX models"),
    (["{rgb}", "--binary_threshold", "0.5"], "--binary_threshold: applies to ONNX models"),
    (["{rgb}", "--model", "{grey}", "--norm", "0"], "--norm: must be a finite number > 0"),
    (["{rgb}", "--model", "{grey}", "--means", "a"], "--means: 'a' is not a number"),
    (["{rgb}", "--model", "{grey}", "--stds", "0"], "--stds: every value must be finite and non-zero"),
    (["{rgb}", "--model", "{binary}", "--binary_threshold", "1"], "--binary_threshold: must be in (0, 1)"),
    # flags before the model: a bad threshold is reported, not the graph's unsupported op
    (["{rgb}", "--model", "{unsupported}", "--binary_threshold", "0"], "--binary_threshold: must be in (0, 1)"),
    (["{rgb}", "--model", "{grey}", "--db", "{notes_db}"], "--db: results database"),
    # after the graph is read: counts against its channels and outputs
    (["{rgb}", "--model", "{rgb_model}", "--means", "0.5,0.5"], "--means: 2 values for"),
    (["{rgb}", "--model", "{grey}", "--stds", "0.2,0.2,0.2"], "whose input has 1 channel(s)"),
    (["{rgb}", "--model", "{rgb_model}", "--binary_threshold", "0.5"], "is for a model with one output; "),
    (["{rgb}", "--model", "{binary}"], "has one output (a binary classifier): give --binary_threshold"),
    (["{rgb}", "--model", "{rgb_model}", "--target", "3"], "--target: must be in [0, 2]"),
    (["{rgb}", "--model", "{unsupported}"], "unsupported ONNX op 'Hardmax' (node 'hardmax_1')"),
    (["{rgb}", "--onnx_runtime"], "--onnx_runtime: applies to ONNX models"),
    (["{rgb}", "--model", "{grey}", "--onnx_runtime", "--mask_mode", "ad"], "--onnx_runtime: --mask_mode ad needs"),
]


def _runs(f):
    return {
        "grey": ["{rgb}", "--model", "{grey}", "--norm", "255", "--means", "0.5", "--stds", "0.25", "--mask_mode",
                 "ad", "--db", "{db}", "--out", "{dir}/grey"],
        "rgba": ["{rgb}", "{rgba}", "--model", "{rgba_model}", "--db", "{db}", "--out", "{dir}/rgba"],
        "binary": ["{rgb}", "--model", "{binary}", "--binary_threshold", "0.8", "--out", "{dir}/binary"],
        "zoo": ["{rgb}", "--model", tiny.NAME, "--weights", "{weights}", "--db", "{zoo_db}", "--out", "{dir}/zoo"],
        "compiled": ["{rgb}", "--model", "{grey}", "--means", "0.5", "--stds", "0.25", "--out", "{dir}/compiled"],
        "onnxruntime": ["{rgb}", "--model", "{grey}", "--means", "0.5", "--stds", "0.25", "--onnx_runtime",
                        "--db", "{ort_db}", "--out", "{dir}/onnxruntime"],
    }


@pytest.fixture(scope="module")
def results(files, tmp_path_factory):
    cases = [["explain", *(a.format(**files) for a in args)] for args, _ in USAGE]
    cases += [["explain", *(a.format(**files) for a in args), *QUICK] for args in _runs(files).values()]
    before = _sha(files["notes_db"])
    out = _probe(cases, tmp_path_factory.mktemp("cache"))
    assert _sha(files["notes_db"]) == before  # the refused --db file is untouched
    return {"usage": out[:len(USAGE)], **dict(zip(_runs(files), out[len(USAGE):]))}


@pytest.mark.parametrize("i", range(len(USAGE)), ids=[u[1][:40] for u in USAGE])
def test_usage_error_is_one_line_exit_2(results, i):
    r, text = results["usage"][i], USAGE[i][1]
    lines = r["stderr"].strip().splitlines()
    assert r["code"] == 2 and r["stdout"] == "", r
    assert len(lines) == 1 and "Traceback" not in r["stderr"], r["stderr"]
    assert lines[0].startswith("rexjax explain: ") and text in lines[0], lines[0]


def _records(r) -> list[dict]:
    assert r["code"] == 0, r["stderr"][-3000:]
    assert "Traceback" not in r["stderr"]
    return [json.loads(line) for line in r["stdout"].splitlines()]


def _rows(db) -> list[dict]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM explanations ORDER BY id")]


def test_grey_model_with_the_tools_flags_and_convad(results, files):
    """A 1-channel graph fed an RGB image with --norm/--means/--stds and --mask_mode ad: the
    target and full-image confidence are onnxruntime's on the tool's pipeline (L conversion,
    / 255, - 0.5, / 0.25). Catches the flags not reaching the preprocessing (the default x /
    255 gives other probabilities), the image not converted to grey, and H/W swapped."""
    (rec,) = _records(results["grey"])
    x = onnx_models.tool_input(files["rgb"], GREY_SIZE, channels=1, means=[0.5], stds=[0.25])
    probs = onnx_models.ort_probs(files["grey"], x)[0]
    default = onnx_models.ort_probs(files["grey"], onnx_models.tool_input(files["rgb"], GREY_SIZE, channels=1))[0]
    assert np.abs(probs - default).max() > 1e-3  # the test can tell the flags were applied
    assert rec["target"] == int(np.argmax(probs)) and rec["label"] == str(rec["target"])
    assert rec["full_confidence"] == pytest.approx(probs[rec["target"]], abs=1e-5)
    assert rec["model_sha256"] == _sha(files["grey"]) and rec["mask_mode"] == "ad"
    with np.load(rec["npz"]) as z:
        assert z["responsibility"].shape == z["mask"].shape == GREY_SIZE
    with Image.open(rec["png"]) as im:
        assert im.info["Title"].startswith("rgb:") and im.size[0] > 100


def test_onnx_runtime_explains_as_the_compiled_graph(results, files):
    """--onnx_runtime: the same target and confidence as onnxruntime on the tool's pipeline
    (the --means/--stds reach the session's input), the compiled run's explanation, and the
    executor named in the JSON line. Catches the flag ignored (no `executor`), the tool's
    flags dropped when the session is built, and a different model behind the session."""
    (ort,), (jax,) = _records(results["onnxruntime"]), _records(results["compiled"])
    probs = onnx_models.ort_probs(files["grey"], onnx_models.tool_input(files["rgb"], GREY_SIZE, channels=1,
                                                                        means=[0.5], stds=[0.25]))[0]
    assert (ort["executor"], jax["executor"]) == ("onnxruntime", "xla")
    assert ort["target"] == jax["target"] == int(np.argmax(probs))
    assert ort["full_confidence"] == pytest.approx(probs[ort["target"]], abs=1e-5)
    with np.load(ort["npz"]) as a, np.load(jax["npz"]) as b:
        np.testing.assert_array_equal(a["mask"], b["mask"])
    assert ort["forward_images"] == jax["forward_images"] and ort["model_sha256"] == jax["model_sha256"]
    (row,) = _rows(files["ort_db"])  # the database says what ran too
    assert (row["executor"], row["forward_images"]) == ("onnxruntime", ort["forward_images"])


def test_rgba_model_keeps_the_files_alpha(results, files):
    """A 4-channel graph: an RGB image gets alpha 255, an RGBA file keeps its alpha; both
    match onnxruntime on the tool's pipeline (no means/stds: x / 255). Catches the alpha
    dropped on the way (io.open_image converting to RGB first)."""
    recs = _records(results["rgba"])
    assert [os.path.basename(r["image"]) for r in recs] == ["rgb.png", "rgba.png"]
    for rec, image in zip(recs, (files["rgb"], files["rgba"])):
        probs = onnx_models.ort_probs(files["rgba_model"], onnx_models.tool_input(image, RGBA_SIZE, channels=4))[0]
        assert rec["target"] == int(np.argmax(probs))
        assert rec["full_confidence"] == pytest.approx(probs[rec["target"]], abs=1e-5)
        assert rec["model_sha256"] == _sha(files["rgba_model"])
    opaque = np.asarray(Image.open(files["rgba"]).convert("RGB").convert("RGBA"))
    Image.fromarray(opaque).save(os.path.join(files["dir"], "opaque.png"))
    flat = onnx_models.ort_probs(files["rgba_model"], onnx_models.tool_input(
        os.path.join(files["dir"], "opaque.png"), RGBA_SIZE, channels=4))[0]
    assert abs(flat[recs[1]["target"]] - recs[1]["full_confidence"]) > 1e-3  # alpha 255 would be seen


def test_binary_threshold_decides_the_explained_side(results, files):
    """One sigmoid output p with --binary_threshold 0.8 and 0.5 < p < 0.8: the explained side
    is class 0 (the argmax of [1 - p, p], or a threshold left at 0.5, would say 1), and its
    confidence is the presented class-0 probability sigmoid(logit(t) - logit(p))."""
    p = float(onnx_models.ort_probs(files["binary"], onnx_models.tool_input(files["rgb"], BINARY_SIZE))[0, 0])
    assert 0.5 < p < 0.8  # the premise: threshold and argmax disagree
    (rec,) = _records(results["binary"])
    assert (rec["target"], rec["label"]) == (0, "0")
    d = np.log(p / (1 - p)) - np.log(0.8 / 0.2)
    assert rec["full_confidence"] == pytest.approx(1 / (1 + np.exp(d)), abs=1e-5)


def _check_rows(rows: list[dict], want: list[tuple[dict, int | None]], folder: str) -> None:
    """Each row against (its image's JSON record, its part): names relative to `folder` that
    exist, the target and area of the mask saved in the .npz, the SHA-256s, the settings."""
    assert [(r["image"], r["part"]) for r in rows] == [(rec["image"], part) for rec, part in want]
    for row, (rec, part) in zip(rows, want):
        assert os.path.normpath(os.path.join(folder, row["npz"])) == os.path.normpath(os.path.abspath(rec["npz"]))
        assert os.path.exists(os.path.join(folder, row["png"]))
        with np.load(os.path.join(folder, row["npz"])) as z:
            mask = z["mask"] if part is None else z["multiple_masks"][part]
            assert row["target"] == int(z["target"]) == rec["target"]
        assert row["area"] == pytest.approx(mask.mean(), abs=1e-6)
        assert row["image_sha256"] == _sha(rec["image"]) and row["model_sha256"] == rec["model_sha256"]
        assert row["full_confidence"] == rec["full_confidence"] and row["seed"] == 0
        assert json.loads(row["config"])["search"]["iters"] == 1
        if part is None:
            assert (row["sufficient"], row["forward_images"]) == (int(rec["sufficient"]), rec["forward_images"])
    assert len({r["uid"] for r in rows}) == len(rows)


def test_db_rows_match_the_saved_files(results, files):
    """--db: one row per explanation (the grey run, then the RGBA run's two images) with the
    target, the area of the mask saved in the .npz, the SHA-256s and file names relative to
    the database's folder. Catches rows for the wrong image, areas not of the saved mask, and
    names relative to the working directory."""
    recs = _records(results["grey"]) + _records(results["rgba"])
    rows = _rows(files["db"])
    _check_rows(rows, [(rec, None) for rec in recs], os.path.dirname(files["db"]))
    assert [r["mask_mode"] for r in rows] == ["ad", "0.0", "0.0"]
    assert [r["executor"] for r in rows] == ["xla"] * 3
    assert all(r["composite_png"] is None for r in rows)


def test_db_row_of_a_zoo_model_has_its_weights_sha256(results, files):
    """A zoo model's row names the weights file's SHA-256 (there is no model file); its JSON
    line has no model_sha256 (that field is the ONNX file's)."""
    (rec,) = _records(results["zoo"])
    assert "model_sha256" not in rec
    (row,) = _rows(files["zoo_db"])
    assert (row["model"], row["model_sha256"], row["target"]) == (tiny.NAME, _sha(files["weights"]), rec["target"])
    assert row["executor"] == "xla"


@pytest.mark.slow
def test_db_has_a_row_per_multiple_part(files, tmp_path):
    """With --multiple: the primary row, then one per part with its index, whose area is
    `multiple_masks[i]`'s and whose composite_png exists. Catches parts without their index
    or with the primary's numbers."""
    db = tmp_path / "m.db"
    argv = ["explain", files["rgb"], "--model", files["rgba_model"], *SPOTLIGHTS, "--db", str(db), "--out",
            str(tmp_path / "out"), *QUICK]
    (r,) = _probe([argv], tmp_path)
    (rec,) = _records(r)
    rows = _rows(db)
    _check_rows(rows, [(rec, part) for part in [None, *range(rec["multiple"]["count"])]], str(tmp_path))
    assert rec["multiple"]["count"] >= 1 and all(os.path.exists(tmp_path / row["composite_png"]) for row in rows)
    parts = rec["multiple"]["parts"]
    assert [(row["explanation_confidence"], row["forward_images"]) for row in rows[1:]] == \
        [(p["confidence"], p["forward_images"]) for p in parts]
