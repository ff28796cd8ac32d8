"""`rexjax explain --mode spectral|tabular|voxel`: arrays from hostile files are one line each,
and oracle models whose true explanation is known are explained end to end.

`io.read_npy` is checked in process on crafted files (a header claiming 1e12 elements in a
small file, a pickle that would run code, a FIFO, truncated data, NaN, ...). The command
lines run in one subprocess (`cli_probe`: one JAX import); the models are the oracle
factories of `tests/commands/nd_models.py`, and every explanation is checked against a numpy
re-derivation (the saved mask, occluded as the mode occludes, re-run through the oracle in
numpy), not against the engine's own `sufficient`.
"""

import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from rexjax import io
from tests.commands import nd_models, onnx_models
from tests.commands.test_cli_errors import ROOT, _probe

QUICK = ["--iters", "3", "--noprogress"]
ONNX_DIR = os.path.join(ROOT, "tests", "fixtures", "onnx")
ONNX_SIGNAL, ONNX_VOLUME = (64, 1), (8, 10, 12, 1)  # [*S, C] for the torch exports' [B, 1, 64] and [B, 1, 8, 10, 12]
SIGNAL_MODEL = "tests.commands.nd_models:signal_model"
VOLUME_MODEL = "tests.commands.nd_models:volume_model"


def _header_only(path, shape, data=b""):
    """A .npy (format 1.0) header declaring float32 of `shape`, followed by `data` bytes."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        f.write(data)


class _Opens:
    """Unpickling this opens (creates) `path`: a pickle that runs code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _refusal(path, text, **kw) -> str:
    with pytest.raises(ValueError) as err:
        io.read_npy(path, **kw)
    message = str(err.value)
    assert "\n" not in message and message.startswith(repr(str(path))) and text in message, message
    return message


# --- io.read_npy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["<f2", ">f4", "<f8", "|i1", "<i2", ">i4", "<i8", "|u1", "<u2", "<u4", ">u8", "|b1"])
@pytest.mark.parametrize("fortran", [False, True])
def test_reads_numeric_dtypes_and_fortran_order(tmp_path, dtype, fortran):
    """Every accepted dtype (both byte orders) in C and Fortran order comes back as the same
    values in float32, C order. Catches Fortran data read as C order (a transposed matrix),
    byte order ignored, an accepted dtype refused."""
    a = np.random.default_rng(0).integers(0, 100, (3, 5)).astype(dtype)
    a = np.asfortranarray(a) if fortran else a
    np.save(tmp_path / "a.npy", a)
    got = io.read_npy(tmp_path / "a.npy")
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, a.astype(np.float64))


def test_reads_format_2(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    with open(tmp_path / "v2.npy", "wb") as f:
        np.lib.format.write_array(f, a, version=(2, 0))
    np.testing.assert_array_equal(io.read_npy(tmp_path / "v2.npy"), a)


def test_header_claiming_1e12_elements_is_refused_before_reading(tmp_path):
    """A 200-byte file whose header declares 10^12 float32s: refused by the cap on the header
    alone (numpy would try to allocate 4 TB). Catches the cap checked after the read, or not
    at all."""
    path = tmp_path / "huge.npy"
    _header_only(path, (10**6, 10**6), data=b"\0" * 64)
    assert os.path.getsize(path) <= 200
    _refusal(path, "declares shape (1000000, 1000000) (1000000000000 elements), more than the 268435456")


def test_cap_and_file_length(tmp_path):
    """The cap is on elements (a smaller cap refuses what the default reads); a header under
    the cap that claims more data than the file holds is 'truncated' before any read, and
    trailing bytes are refused too. Catches the length check dropped (np.load then reads a
    short file: ValueError with another message, or garbage from trailing bytes)."""
    np.save(tmp_path / "ok.npy", np.zeros(100, np.float32))
    assert io.read_npy(tmp_path / "ok.npy").shape == (100,)
    _refusal(tmp_path / "ok.npy", "(100 elements), more than the 99", max_elements=99)
    _header_only(tmp_path / "claims.npy", (2**27,), data=b"\0" * 40)
    _refusal(tmp_path / "claims.npy", "is truncated: its header declares float32 (134217728,) (536870912 bytes")
    raw = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(raw[:-3])
    _refusal(tmp_path / "short.npy", "is truncated")
    (tmp_path / "long.npy").write_bytes(raw + b"\0" * 4)
    _refusal(tmp_path / "long.npy", "has trailing bytes")


def test_object_array_pickle_is_never_loaded(tmp_path):
    """An object array whose pickle creates a file when loaded: refused by its dtype, and the
    file is never created. The premise is checked last: numpy with allow_pickle=True does
    create it. Catches a load before the dtype check with pickles allowed."""
    marker = tmp_path / "pwned"
    np.save(tmp_path / "evil.npy", np.array([_Opens(str(marker))], dtype=object), allow_pickle=True)
    _refusal(tmp_path / "evil.npy", "holds object values; only real numbers are read")
    assert not marker.exists()
    np.load(tmp_path / "evil.npy", allow_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize("make,text", [
    (lambda p: np.save(p, np.zeros(3, np.complex64)), "holds complex64 values"),
    (lambda p: np.save(p, np.array(["ab", "cd"])), "holds <U2 values"),
    (lambda p: np.save(p, np.zeros(3, [("a", "<f4"), ("b", "<i4")])), "only real numbers are read"),
    (lambda p: np.save(p, np.zeros(3, np.longdouble)), "only real numbers are read"),
    (lambda p: np.save(p, np.zeros((0, 4), np.float32)), "holds an empty array of shape (0, 4)"),
    (lambda p: _header_only(p, (-1, 4)), "declares an invalid shape (-1, 4)"),
    (lambda p: np.savez(open(p, "wb"), a=np.zeros(3)), "is a .npz archive"),
    (lambda p: open(p, "wb").write(b"hello, not an array"), "is not a readable .npy file (the magic string"),
    (lambda p: open(p, "wb").write(b"\x93NUMPY\x02\x00" + b"\xff\xff\xff\x7f"), "is not a readable .npy file"),
    (lambda p: open(p, "wb").write(b"\x93NUMPY\x03\x00" + b"\x00" * 8), "format version 3.0"),
    (lambda p: np.save(p, np.array([1.0, np.nan, 2.0])), "holds 1 NaN or infinite value(s) among 3"),
    (lambda p: np.save(p, np.array([[np.inf, -np.inf]], np.float16)), "holds 2 NaN or infinite"),
    (lambda p: np.save(p, np.array([1e39, 1.0])), "holds 1 NaN or infinite value(s) among 2 (values beyond float32"),
], ids=["complex", "str", "structured", "longdouble", "empty", "negative", "npz", "garbage", "v2-header-2GB",
        "v3", "nan", "inf-f16", "beyond-f32"])
def test_refusals_are_one_line_naming_the_file(tmp_path, make, text):
    """Each crafted file is one ValueError naming it, with its problem. Catches a dtype
    let through (complex cast to float32 drops the imaginary part with only a warning), NaN
    or float64 overflow to inf reaching the model, a huge declared header allocated."""
    path = str(tmp_path / "x.npy")
    make(path)
    _refusal(path, text)


def test_fifo_is_refused_without_waiting(tmp_path):
    """A FIFO named x.npy (no writer): refused at once. Catches a blocking open (a plain
    `open` waits forever for a writer) or a check on the path instead of the descriptor."""
    path = tmp_path / "x.npy"
    os.mkfifo(path)
    result = []

    def read():
        try:
            io.read_npy(path)
        except ValueError as e:
            result.append(str(e))

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "read_npy waited on a FIFO"
    assert result == [f"{str(path)!r} is a FIFO (named pipe), not an array file"]


def test_nifti_without_nibabel_is_one_line(tmp_path):
    """Without nibabel (not a rexjax dependency) a NIfTI file is one line saying how to get it."""
    if importlib.util.find_spec("nibabel") is not None:
        pytest.skip("nibabel is installed")
    (tmp_path / "v.nii").write_bytes(b"\0" * 400)
    with pytest.raises(ValueError, match=r"^'.*v\.nii': reading NIfTI files needs nibabel \(pip install nibabel\)$"):
        io.read_nifti(tmp_path / "v.nii")


def test_nifti_through_nibabel(tmp_path):
    """With nibabel: a .nii and a .nii.gz volume come back as nibabel's array, scaled and in
    float32; a header declaring more than the cap is refused before the data is read."""
    nibabel = pytest.importorskip("nibabel")
    v = np.random.default_rng(0).integers(0, 50, (4, 5, 6)).astype(np.int16)
    image = nibabel.Nifti1Image(v, np.eye(4))
    image.header.set_slope_inter(2.0, 1.0)
    for name in ("v.nii", "v.nii.gz"):
        nibabel.save(image, tmp_path / name)
        np.testing.assert_allclose(io.read_nifti(tmp_path / name), v * 2.0 + 1.0)
    with pytest.raises(ValueError, match="more than the 100"):
        io.read_nifti(tmp_path / "v.nii.gz", max_elements=100)
    (tmp_path / "bad.nii").write_bytes(b"\1" * 400)
    with pytest.raises(ValueError, match="is not a readable NIfTI file"):
        io.read_nifti(tmp_path / "bad.nii")


# --- the command line ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("modes")
    np.save(d / "sig.npy", nd_models.signal(channels=2))
    np.save(d / "vol.npy", nd_models.volume())
    np.save(d / "row.npy", nd_models.signal(channels=1)[:, 0][None])  # [1, N]: the tool's one-channel layout
    np.save(d / "cube.npy", np.zeros((4, 4, 4), np.float32))
    np.save(d / "nan.npy", np.where(np.arange(64) == 5, np.nan, 0.0))
    _header_only(d / "huge.npy", (10**12,), data=b"\0" * 64)
    np.save(d / "trunc.npy", np.zeros(64, np.float32))
    with open(d / "trunc.npy", "r+b") as f:
        f.truncate(os.path.getsize(d / "trunc.npy") - 8)
    np.save(d / "evil.npy", np.array([_Opens(str(d / "pwned"))], dtype=object), allow_pickle=True)
    os.mkfifo(d / "fifo.npy")
    (d / "v.nii").write_bytes(b"\0" * 400)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "img.png")
    onnx_models.cnn(d / "image_model.onnx")
    rng = np.random.default_rng(0)
    np.save(d / "onnx_sig.npy", rng.standard_normal(ONNX_SIGNAL).astype(np.float32))
    np.save(d / "onnx_vol.npy", rng.standard_normal(ONNX_VOLUME).astype(np.float32))
    return {"dir": str(d), **{p.stem: str(p) for p in d.iterdir()}}


# (argv after `explain`, with {name} placeholders, text the one stderr line must hold)
USAGE = [
    (["{sig}", "--mode", "voxel", "--mask_mode", "spectral", "--model", VOLUME_MODEL],
     "--mask_mode: 'spectral' interpolates along 1-D signals: it is for --mode spectral, not voxel"),
    (["{sig}", "--mode", "tabular", "--mask_mode", "spectral", "--model", SIGNAL_MODEL],
     "--mask_mode: 'spectral' interpolates along 1-D signals: it is for --mode spectral, not tabular"),
    (["{img}", "--mask_mode", "spectral"], "--mask_mode: 'spectral' interpolates along 1-D signals"),
    (["{sig}", "--mode", "spectral"], "--model: 'efficientnet_lite0' is a zoo image model; --mode spectral needs a "
                                      "model taking x[B, N, C]"),
    (["{vol}", "--mode", "voxel", "--model", VOLUME_MODEL, "--input_size", "32"], "--input_size: is for images"),
    (["{img}", "--mode", "spectral", "--model", SIGNAL_MODEL], "--mode spectral reads .npy files; "),
    (["{vol}", "--mode", "voxel", "--model", VOLUME_MODEL, "--multiple", "2"],
     "--mode voxel: strategy 'spatial', --multiple and --contrastive grow circles on images only"),
    (["{sig}"], "sig.npy is an array file, not an image: give --mode spectral, tabular or voxel"),
    (["{v}", "--mode", "voxel", "--model", VOLUME_MODEL], "reading NIfTI files needs nibabel, which is not installed "
                                                           "(pip install nibabel)"),
    (["{sig}", "--mode", "spectral", "--model", "{image_model}"], "image_model.onnx takes inputs with 2 spatial axes; "
                                                                  "--mode spectral needs a model taking x[B, N, C]"),
]
REFUSED = [("cube", "holds an array of shape (4, 4, 4); --mode spectral takes [N] or [N, C]"),
           ("nan", "holds 1 NaN or infinite value(s) among 64"), ("fifo", "is a FIFO (named pipe), not an array file"),
           ("trunc", "is truncated"), ("huge", "(1000000000000 elements), more than the 268435456"),
           ("evil", "holds object values")]


def _runs(f) -> dict:
    return {
        "spectral": [f["sig"], f["row"], "--mode", "spectral", "--mask_mode", "spectral", "--model", SIGNAL_MODEL,
                     "--db", f"{f['dir']}/r.db", "--out", f"{f['dir']}/spectral", *QUICK],
        "voxel": [f["vol"], "--mode", "voxel", "--model", VOLUME_MODEL, "--db", f"{f['dir']}/r.db", "--out",
                  f"{f['dir']}/voxel", *QUICK],
        "onnx_spectral": [f["onnx_sig"], "--mode", "spectral", "--model", f"{ONNX_DIR}/signal_cnn_dynamo18.onnx",
                          "--out", f"{f['dir']}/onnx_spectral", *QUICK],
        "onnx_voxel": [f["onnx_vol"], "--mode", "voxel", "--model", f"{ONNX_DIR}/volume_cnn_torchscript17.onnx",
                       "--out", f"{f['dir']}/onnx_voxel", *QUICK],
        "refused": [*(f[name] for name, _ in REFUSED), "--mode", "spectral", "--model", SIGNAL_MODEL, "--out",
                    f"{f['dir']}/refused", "--noprogress"],
    }


@pytest.fixture(scope="module")
def results(files, tmp_path_factory):
    runs = _runs(files)
    cases = [["explain", *(a.format(**files) for a in args)] for args, _ in USAGE]
    cases += [["explain", *args] for args in runs.values()]
    out = _probe(cases, tmp_path_factory.mktemp("cache"))
    return {"usage": out[:len(USAGE)], **dict(zip(runs, out[len(USAGE):]))}


@pytest.mark.parametrize("i", range(len(USAGE)), ids=[u[1][:40] for u in USAGE])
def test_usage_error_is_one_line_exit_2(results, i):
    """Each misuse of --mode is one stderr line naming the flag or file, exit 2, before the
    model loads. Catches the tool's silent fallback (spectral masking on a volume or image
    replaced by 0), a zoo image model fed an array, image-only flags ignored."""
    if "nibabel" in USAGE[i][1] and importlib.util.find_spec("nibabel") is not None:
        pytest.skip("nibabel is installed")
    r, text = results["usage"][i], USAGE[i][1]
    lines = r["stderr"].strip().splitlines()
    assert r["code"] == 2 and r["stdout"] == "", r
    assert len(lines) == 1 and "Traceback" not in r["stderr"], r["stderr"]
    assert lines[0].startswith("rexjax explain: ") and text in lines[0], lines[0]


def _records(r) -> list[dict]:
    assert r["code"] == 0 and "Traceback" not in r["stderr"], r["stderr"][-3000:]
    return [json.loads(line) for line in r["stdout"].splitlines()]


def _row(db, image) -> dict:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        (row,) = [dict(r) for r in conn.execute("SELECT * FROM explanations WHERE image = ?", (image,))]
    return row


def _spectral_fill(x, visible):
    """numpy: each hidden element linearly interpolated between the nearest visible ones per
    channel, the edge runs taking their one visible neighbour (np.interp's clamping)."""
    i = np.arange(len(x))
    return np.stack([np.interp(i, i[visible], x[visible, c]) for c in range(x.shape[1])], axis=1)


def _signal_fires(x) -> bool:
    a, b = nd_models.SEGMENT
    return bool((x[a:b, 0] * np.sign(nd_models.PATTERN) > 1.0).all())


def _check_png(path, size, title):
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG" and im.size == size and im.info["Title"].startswith(title), (im.size, im.info)


def test_spectral_end_to_end(results, files):
    """A 2-channel signal [N, C] and a one-channel row in the tool's layout [1, N], whose class
    rests on a planted segment, under spectral masking: each saved mask covers the segment and
    little else, and the signal with everything outside the mask interpolated (numpy) still
    fires the oracle; the map, mask, figure and --db row are the mode's. Catches a mask of the
    wrong shape or shifted, [1, N] read as one element of N channels (refused by the engine),
    --mask_mode not reaching the explainer, a map not pointing at the segment, files or row
    missing their fields."""
    rec, row_rec = _records(results["spectral"])
    assert (rec["mode"], rec["target"], rec["mask_mode"], rec["sufficient"]) == ("spectral", 1, "spectral", True)
    x = np.load(files["sig"])
    mask, r = np.load(rec["mask_npy"]), np.load(rec["map_npy"])
    assert mask.dtype == bool and mask.shape == r.shape == (nd_models.N,) and r.dtype == np.float32
    a, b = nd_models.SEGMENT
    assert mask[a:b].all() and mask.mean() <= 0.25, np.flatnonzero(mask)
    assert rec["area"] == pytest.approx(mask.mean(), abs=1e-6)
    assert _signal_fires(_spectral_fill(x, mask))
    assert r[a:b].mean() > r[~mask].mean()
    _check_png(rec["png"], (990, 550), "sig: class 1, p=")
    row = _row(f"{files['dir']}/r.db", files["sig"])
    assert (row["mode"], row["npz"], row["mask_mode"]) == ("spectral", None, "spectral")
    assert os.path.samefile(os.path.join(files["dir"], row["map_npy"]), rec["map_npy"])
    assert os.path.samefile(os.path.join(files["dir"], row["mask_npy"]), rec["mask_npy"])
    assert row["area"] == pytest.approx(mask.mean(), abs=1e-6) and row["sufficient"] == 1
    one = np.load(files["row"])[0][:, None]
    mask = np.load(row_rec["mask_npy"])
    assert mask.shape == (nd_models.N,) and mask[a:b].all() and mask.mean() <= 0.25, np.flatnonzero(mask)
    assert _signal_fires(_spectral_fill(one, mask))
    _check_png(row_rec["png"], (990, 550), "row: class 1, p=")


def test_voxel_end_to_end(results, files):
    """A [D, H, W] volume (no channel axis) whose class rests on a planted cube, masked with
    0: the saved mask covers the cube and little else, and the volume zeroed outside it
    (numpy) still has the cube. Catches D/H/W axes swapped in the mask (the cube is off the
    diagonal), the channel axis not added, the figure or row missing."""
    (rec,) = _records(results["voxel"])
    assert (rec["mode"], rec["target"], rec["sufficient"]) == ("voxel", 1, True)
    mask, r = np.load(rec["mask_npy"]), np.load(rec["map_npy"])
    assert mask.dtype == bool and mask.shape == r.shape == nd_models.VOLUME
    assert mask[nd_models.CUBE].all() and mask.mean() <= 0.25, np.argwhere(mask)
    kept = np.load(files["vol"]) * mask
    assert (kept[nd_models.CUBE] > 1.5).all()
    _check_png(rec["png"], (1100, 726), "vol: class 1, p=")
    row = _row(f"{files['dir']}/r.db", files["vol"])
    assert (row["mode"], row["npz"]) == ("voxel", None) and row["area"] == pytest.approx(mask.mean(), abs=1e-6)


@pytest.mark.parametrize("mode,onnx_file,shape", [
    ("spectral", "signal_cnn_dynamo18.onnx", ONNX_SIGNAL), ("voxel", "volume_cnn_torchscript17.onnx", ONNX_VOLUME)])
def test_onnx_file_end_to_end(results, files, mode, onnx_file, shape):
    """A 1-D and a 3-D torch CNN exported to ONNX, given on the command line: the target is
    onnxruntime's top-1 class on the whole array, and onnxruntime, shown only the saved
    explanation (the rest 0, the default mask value), still picks it. Catches the channel
    axis put on the wrong side of the position axes for a channels-first graph, a mask
    reshaped on the wrong axes, and the figure or files missing."""
    ort = pytest.importorskip("onnxruntime")
    (rec,) = _records(results[f"onnx_{mode}"])
    mask = np.load(rec["mask_npy"])
    assert rec["mode"] == mode and mask.shape == shape[:-1] and 0 < mask.mean() < 1
    x = np.load(files[f"onnx_{'sig' if mode == 'spectral' else 'vol'}"])
    session = ort.InferenceSession(os.path.join(ONNX_DIR, onnx_file), providers=["CPUExecutionProvider"])
    batch = np.stack([x, x * mask[..., None]])  # [2, *S, 1] -> the graph's channels-first [2, 1, *S]
    logits = session.run(None, {session.get_inputs()[0].name: np.moveaxis(batch, -1, 1)})[0]
    assert logits.argmax(1).tolist() == [rec["target"]] * 2 and rec["sufficient"]
    assert os.path.getsize(rec["png"]) > 0


def test_refused_arrays_fail_alone_with_one_line(results, files):
    """A wrong-rank array, NaN, a FIFO, a truncated file, a header claiming 10^12 elements and
    a pickle bomb, in one run: each is one JSON error line naming its problem (in order), the
    run ends (the FIFO is not waited on) with status 1, no traceback, and the pickle never
    ran."""
    r = results["refused"]
    assert r["code"] == 1 and "Traceback" not in r["stderr"], r["stderr"][-3000:]
    lines = [json.loads(line) for line in r["stdout"].splitlines()]
    assert [rec["image"] for rec in lines] == [files[name] for name, _ in REFUSED]
    for rec, (name, text) in zip(lines, REFUSED):
        assert rec["error"].startswith(f"ValueError: {files[name]!r}") and text in rec["error"], rec
    assert not os.path.exists(os.path.join(files["dir"], "pwned"))
    assert "6 of 6 inputs failed" in r["stderr"]


@pytest.mark.slow
def test_tabular_end_to_end(files, tmp_path):
    """--mode tabular on the [1, N] row with the default occlusion (0): the mask covers the
    segment, and the row zeroed outside it (numpy) still fires the oracle."""
    argv = ["explain", files["row"], "--mode", "tabular", "--model", SIGNAL_MODEL, "--out", str(tmp_path / "out"),
            *QUICK]
    (r,) = _probe([argv], tmp_path)
    (rec,) = _records(r)
    assert (rec["mode"], rec["target"], rec["mask_mode"], rec["sufficient"]) == ("tabular", 1, 0.0, True)
    mask = np.load(rec["mask_npy"])
    a, b = nd_models.SEGMENT
    assert mask.shape == (nd_models.N,) and mask[a:b].all() and mask.mean() <= 0.25, np.flatnonzero(mask)
    assert _signal_fires(np.load(files["row"])[0][:, None] * mask[:, None])
    _check_png(rec["png"], (990, 550), "row: class 1, p=")


@pytest.mark.slow
def test_nifti_volume_end_to_end(files, tmp_path):
    """With nibabel: a gzipped NIfTI volume is explained as its .npy twin is, its outputs named
    after the scan (`vol.map.npy`, not `vol.nii.map.npy`)."""
    nibabel = pytest.importorskip("nibabel")
    nibabel.save(nibabel.Nifti1Image(np.load(files["vol"]), np.eye(4)), tmp_path / "vol.nii.gz")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
           "REXJAX_COMPILE_CACHE": "0"}
    argv = [str(tmp_path / "vol.nii.gz"), "--mode", "voxel", "--model", VOLUME_MODEL, "--out", str(tmp_path / "o"),
            *QUICK]
    out = subprocess.run([sys.executable, "-m", "rexjax.cli", "explain", *argv], capture_output=True, text=True,
                         timeout=600, env=env, cwd=ROOT)
    (rec,) = _records({"code": out.returncode, "stdout": out.stdout, "stderr": out.stderr})
    assert rec["mask_npy"] == str(tmp_path / "o" / "vol.mask.npy")
    mask = np.load(rec["mask_npy"])
    assert mask.shape == nd_models.VOLUME and mask[nd_models.CUBE].all() and mask.mean() <= 0.25
