"""A batch with hostile and careless inputs keeps going: a
decompression bomb, an image whose output cannot be written, a good image, two inputs with
the same stem and a 16-bit PNG, in one `rexjax explain` run of the tiny `.pth` model; plus
the pieces in process: atomic output groups under interrupts, 16-bit scaling, unique names,
and the dispatcher's one-line errors."""

import json
import os
import signal

import numpy as np
import pytest
from PIL import Image

from rexjax import cli, io
from rexjax.commands.common import UsageError, is_flat
from tests.commands.test_cli_errors import _probe, bomb_png
from tests.helpers import tiny_pth_model as tiny


def _rgb(path, seed):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 12, 3), np.uint8)).save(path)


def sixteen_bit_png(path) -> np.ndarray:
    """A 16-bit grey PNG (PIL mode I;16) whose 8-bit scaling is known: value 257 v -> v."""
    v = np.arange(64, dtype=np.uint16).reshape(8, 8) * 4
    Image.fromarray(v * 257).save(path)
    return v.astype(np.uint8)


@pytest.mark.slow  # ~40 s: compiles ReX for the tiny model; the loop alone: test_explain_loop_*
def test_batch_goes_on_past_bad_images(tmp_path):
    for d in ("a", "b", "out/blocked.npz"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "out" / "blocked.npz" / "keep").write_text("a directory where an output must go")
    bomb_png(tmp_path / "bomb.png")
    _rgb(tmp_path / "a" / "x.png", 1)
    _rgb(tmp_path / "b" / "x.png", 2)
    _rgb(tmp_path / "blocked.png", 3)
    sixteen_bit_png(tmp_path / "deep.png")
    tiny.write_weights(tmp_path / "w.pth", 0)
    images = [tmp_path / n for n in ("bomb.png", "a/x.png", "blocked.png", "b/x.png", "deep.png")]
    out = tmp_path / "out"
    args = ["explain", *map(str, images), "--model", tiny.NAME, "--weights", str(tmp_path / "w.pth"), "--iters", "2",
            "--out", str(out), "--noprogress"]
    (r,) = _probe([args], tmp_path)
    assert r["code"] == 1, r
    lines = [json.loads(line) for line in r["stdout"].splitlines()]
    assert [line["image"] for line in lines] == list(map(str, images))
    bomb, x, blocked, x2, deep = lines
    assert "too large to open safely" in bomb["error"] and "IsADirectoryError" in blocked["error"]
    assert (x["npz"], x["png"]) == (str(out / "x.npz"), str(out / "x.png"))
    assert (x2["npz"], x2["png"]) == (str(out / "x-2.npz"), str(out / "x-2.png"))
    for rec in (x, x2, deep):
        with np.load(rec["npz"]) as z:
            assert z["responsibility"].shape == (8, 8) and int(z["target"]) == rec["target"]
        assert Image.open(rec["png"]).format == "PNG"
    err = r["stderr"].splitlines()
    assert [e for e in err if e.startswith(f"rexjax explain: {images[0]}: ")] and "Traceback" not in r["stderr"]
    assert len([e for e in err if "images failed" in e]) == 1 and "2 of 5" in r["stderr"]
    assert sorted(os.listdir(out)) == ["blocked.npz", "deep.npz", "deep.png", "x-2.npz", "x-2.png", "x.npz", "x.png"]
    assert os.listdir(out / "blocked.npz") == ["keep"]


LOOP_SCRIPT = """
import os, sys
from PIL import Image
from absl import flags
from rexjax.commands import common, explain
import rexjax.causal

failures = {"a.png": Image.DecompressionBombError("too many pixels"), "c.png": OSError(28, "No space left on device")}

def one(model, explainer, path, name, *run):
    if os.path.basename(path) in failures:
        raise failures[os.path.basename(path)]
    return {"image": path, "name": name}

explain._explain_one = one
common.load_model = lambda name, weights: None
rexjax.causal.Explainer = lambda model, config, **call: None
flags.FLAGS(["explain", "--model", "efficientnet_lite0", "--out", sys.argv[1], "--noprogress"])
sys.exit(explain.main(["explain", *sys.argv[2:]]))
"""


def test_explain_loop_reports_each_failure_and_goes_on(tmp_path):
    """explain.main's per-image loop with the model and explainer stubbed, in a fresh process
    (the command modules each define --config on absl's global flags, as the CLI imports one)."""
    import subprocess
    import sys

    from tests.commands.test_cli_errors import ROOT

    paths = [tmp_path / n for n in ("a.png", "b.png", "c.png", "d.png")]
    for i, p in enumerate(paths):
        _rgb(p, i)
    proc = subprocess.run([sys.executable, "-c", LOOP_SCRIPT, str(tmp_path / "out"), *map(str, paths)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 1, proc.stderr[-2000:]
    out, err = proc.stdout, proc.stderr
    lines = [json.loads(line) for line in out.splitlines()]
    assert [os.path.basename(r["image"]) for r in lines] == ["a.png", "b.png", "c.png", "d.png"]
    assert lines[0]["error"] == "DecompressionBombError: too many pixels" and "No space left" in lines[2]["error"]
    assert lines[1] == {"image": str(paths[1]), "name": "b"} and lines[3]["name"] == "d"
    assert err.splitlines() == [f"rexjax explain: {paths[0]}: DecompressionBombError: too many pixels",
                                f"rexjax explain: {paths[2]}: OSError: [Errno 28] No space left on device",
                                "rexjax explain: 2 of 4 images failed"]


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    want = sixteen_bit_png(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    got = np.asarray(io.open_image(tmp_path / "deep.png"))
    np.testing.assert_array_equal(got, np.repeat(want[..., None], 3, -1))


def test_bomb_is_a_value_error(tmp_path):
    bomb_png(tmp_path / "bomb.png")
    with pytest.raises(ValueError, match="bomb.png' is too large to open safely"):
        io.open_image(tmp_path / "bomb.png")


def test_unique_names():
    assert io.unique_names(["a/x.jpg", "b/x.jpg", "x.png", "y/x-2.jpg", "z.png"]) == ["x", "x-3", "x-4", "x-2", "z"]


def _pair(folder, tag):
    (folder / "a.npz").write_text(tag)
    (folder / "a.png").write_text(tag)


def _contents(folder):
    return {n: (folder / n).read_text() for n in sorted(os.listdir(folder))}


def test_atomic_outputs_all_or_nothing(tmp_path, monkeypatch):
    _pair(tmp_path, "old")
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C between the two writes
        with io.AtomicOutputs(tmp_path) as out:
            open(out.path("a.npz"), "w").write("new")
            raise KeyboardInterrupt
    assert _contents(tmp_path) == {"a.npz": "old", "a.png": "old"}  # no new .npz beside the old .png
    (tmp_path / "b.png").mkdir()  # a rename that would fail: nothing is replaced
    with pytest.raises(IsADirectoryError):
        with io.AtomicOutputs(tmp_path) as out:
            open(out.path("a.npz"), "w").write("new")
            open(out.path("b.png"), "w").write("new")
    assert (tmp_path / "a.npz").read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.npz", "a.png", "b.png"]
    (tmp_path / "b.png").rmdir()
    real, calls = os.replace, []

    def replace_then_interrupt(src, dst):  # Ctrl-C arrives during the renames: deferred
        real(src, dst)
        calls.append(dst)
        if len(calls) == 1:
            signal.raise_signal(signal.SIGINT)  # to this thread, synchronously (os.kill may land on another thread)

    monkeypatch.setattr(io.os, "replace", replace_then_interrupt)
    # Python's own Ctrl-C handler, whatever an earlier test in this worker left installed (in
    # the full suite one left a non-callable handler, under which a deferred Ctrl-C is dropped)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with io.AtomicOutputs(tmp_path) as out:
                open(out.path("a.npz"), "w").write("new")
                open(out.path("a.png"), "w").write("new")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert _contents(tmp_path) == {"a.npz": "new", "a.png": "new"}


_DEFERRED_UNDER = r"""
import os, signal, sys
from rexjax import io
signal.signal(signal.SIGINT, getattr(signal, sys.argv[1]))
real = os.replace
def replace_then_interrupt(src, dst):  # Ctrl-C during the renames: deferred to the block's end
    real(src, dst)
    signal.raise_signal(signal.SIGINT)
os.replace = replace_then_interrupt
with io.AtomicOutputs(sys.argv[2]) as out:
    open(out.path("a.npz"), "w").write("new")
print("survived", flush=True)
"""


@pytest.mark.parametrize("handler,survives", [("SIG_DFL", False), ("SIG_IGN", True)])
def test_deferred_ctrl_c_follows_a_non_python_handler(tmp_path, handler, survives):
    # SIG_DFL: the deferred Ctrl-C must still end the process (it was dropped before the fix);
    # SIG_IGN: it stays ignored. Either way the file is complete.
    import subprocess
    import sys

    from tests.commands.test_cli_errors import ROOT

    p = subprocess.run([sys.executable, "-c", _DEFERRED_UNDER, handler, str(tmp_path)], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert (p.returncode == 0 and "survived" in p.stdout) == survives, (p.returncode, p.stdout, p.stderr[-2000:])
    if not survives:
        assert p.returncode == -signal.SIGINT and "survived" not in p.stdout
    assert (tmp_path / "a.npz").read_text() == "new"


def _main_raising(exc):
    def main(argv):
        raise exc

    return main


@pytest.mark.parametrize("exc,code,text", [
    (UsageError("--iters", "must be >= 1, got -1"), 2, "rexjax explain: --iters: must be >= 1, got -1"),
    (KeyboardInterrupt(), 130, "rexjax explain: interrupted"),
    (RuntimeError("boom\nsecond line"), 1, "rexjax explain: error: RuntimeError: boom (run with --debug for the traceback)"),
])
def test_dispatcher_errors_are_one_line(capsys, exc, code, text):
    assert cli.guarded("rexjax explain", _main_raising(exc), debug=False)(["x"]) == code
    assert capsys.readouterr().err.splitlines() == [text]
    with pytest.raises(type(exc)):  # --debug: the exception (and its traceback) goes through
        cli.guarded("rexjax explain", _main_raising(exc), debug=True)(["x"])


def test_is_flat():
    assert is_flat(np.zeros((4, 4))) and is_flat(np.full((4, 4), 3.0)) and not is_flat(np.eye(4))


_INTERRUPTIBLE = r"""
import sys
from tests.helpers import tiny_pth_model
from rexjax import cli
tiny_pth_model.register()
cli.run(["rexjax", "explain", *sys.argv[1:]])
"""


@pytest.mark.slow  # ~30 s: waits for ReX to be running on the tiny model
def test_ctrl_c_during_explanation_is_prompt_and_one_line(tmp_path):
    import subprocess
    import sys
    import time

    from tests.commands.test_cli_errors import ROOT

    _rgb(tmp_path / "img.png", 0)
    tiny.write_weights(tmp_path / "w.pth", 0)
    env = {**os.environ, "REXJAX_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": ROOT, "REXJAX_COMPILE_CACHE": "0"}
    args = [str(tmp_path / "img.png"), "--model", tiny.NAME, "--weights", str(tmp_path / "w.pth"), "--iters", "500",
            "--out", str(tmp_path / "out")]
    p = subprocess.Popen([sys.executable, "-c", _INTERRUPTIBLE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env, cwd=ROOT)
    time.sleep(20)  # imports, model load and compile: ReX is running by now (or Ctrl-C lands earlier, also fine)
    sent = time.time()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert time.time() - sent < 10, "Ctrl-C took too long to land"
    assert p.returncode == 130 and err.rstrip().endswith("rexjax explain: interrupted"), err[-2000:]
    assert "Traceback" not in err and "Fatal Python error" not in err, err[-2000:]
    assert not os.path.exists(tmp_path / "out") or os.listdir(tmp_path / "out") == []
