"""Hostile and careless command lines: every usage error is one stderr line naming the flag,
exit status 2, no traceback (one parametrised test over all of them); one bad image never
stops a batch; duplicate stems get unique outputs; outputs are written atomically; Ctrl-C
and unexpected errors are one line (tracebacks only under --debug).

Command lines run in one subprocess per command (`tests/commands/cli_probe.py`), so JAX is
imported once; the model is the tiny `.pth` model of `tests/helpers/tiny_pth_model`."""

import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.helpers import tiny_pth_model as tiny
from tests.security import corpus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--model", tiny.NAME]


def _unwritable(tmp) -> str:
    return "/proc/self/rexjax-out" if os.geteuid() == 0 else str(_ro_dir(tmp) / "out")


def _ro_dir(tmp):
    d = tmp / "ro"
    d.mkdir(exist_ok=True)
    d.chmod(0o555)
    return d


def bomb_png(path) -> None:
    """A ~60-byte PNG declaring 30000 x 30000 pixels (PIL: DecompressionBombError)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 12, 3), np.uint8)).save(d / "img.png")
    tiny.write_weights(d / "tiny.pth", 0)
    (d / "text.pth").write_text("not a checkpoint")
    tiny.write_weights(d / "wrong.pth", sd={k: np.zeros((2,) + v[1:], np.float32) for k, v in tiny.SHAPES.items()})
    evil = corpus.build(d / "corpus")["global_reduce"][0]
    (d / "a_file").write_text("x")
    return {"dir": d, "img": str(d / "img.png"), "w": str(d / "tiny.pth"), "text": str(d / "text.pth"),
            "wrong": str(d / "wrong.pth"), "evil": evil, "file": str(d / "a_file"), "unwritable": _unwritable(d)}


def _probe(cases, cache_dir, timeout=600):
    path = cache_dir / f"cases-{abs(hash(str(cases)))}.json"
    path.write_text(json.dumps(cases))
    env = {**os.environ, "REXJAX_CACHE_DIR": str(cache_dir), "PYTHONPATH": ROOT, "REXJAX_COMPILE_CACHE": "0"}
    out = subprocess.run([sys.executable, "-m", "tests.commands.cli_probe", str(path), "--tiny"], capture_output=True,
                         text=True, timeout=timeout, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


# (command, argv after the command with {img} {w} ... placeholders, text the one line must hold)
USAGE = [
    ("explain", [], "give at least one image"),
    ("explain", ["{dir}/nope.png"], "no such file"),
    ("explain", ["{img}", "--iters", "-1"], "--iters"),
    ("explain", ["{img}", "--iters", "abc"], "--iters"),
    ("explain", ["{img}", "--batch_size", "0"], "--batch_size"),
    ("explain", ["{img}", "--batch_size", "100000000", *TINY], "--batch_size: 100000000 images need"),
    ("explain", ["{img}", "--seed", "-1"], "--seed: must be in [0, 4294967295]"),
    ("explain", ["{img}", "--seed", str(2**70)], "--seed: must be in"),
    ("explain", ["{img}", "--mask_mode", "1e308"], "--mask_mode: a number must be within"),
    ("explain", ["{img}", "--mask_mode", "inf"], "--mask_mode"),
    ("explain", ["{img}", "--mask_mode", "blur:10000"], "--mask_mode: blur sigma must be in"),
    ("explain", ["{img}", "--mask_mode", "purple"], "unknown --mask_mode 'purple'"),
    ("explain", ["{img}", "--target", "7", *TINY], "--target: must be in [0, 4]"),
    ("explain", ["{img}", "--config.extract.min_confidence=2"], "--config: ExtractConfig: min_confidence must be in [0, 1]"),
    ("explain", ["{img}", "--input_size", "0"], "--input_size"),
    ("explain", ["{img}", "--config.search.responsibility=bogus"], "--config: SearchConfig: responsibility must be one of"),
    ("explain", ["{img}", "--config.search.responsibility=rex"], "responsibility 'rex' is now 'tool'"),
    ("explain", ["{img}", "--config.search.no_such_field=1"], "no_such_field"),
    ("explain", ["{img}", "--tree_depth=4"], "tree_depth"),
    ("explain", ["{img}", "--no_such_flag=1"], "no_such_flag"),
    ("explain", ["{img}", "--model", "nope"], "--model: unknown model 'nope'"),
    ("explain", ["{img}", "--weights", "{dir}/missing.pth"], "--weights: no such file"),
    ("explain", ["{img}", *TINY, "--weights", "{text}", "--out", "{dir}/o"], "text.pth' is not a readable torch .pth file (ValueError: byte 0x6e is not a pickle opcode"),
    ("explain", ["{img}", *TINY, "--weights", "{wrong}", "--out", "{dir}/o"], "--weights: weights file"),
    ("explain", ["{img}", *TINY, "--weights", "{evil}", "--out", "{dir}/o"], "refusing to unpickle global os.system"),
    ("explain", ["{img}", "--out", "{file}"], "--out: cannot write to"),
    ("explain", ["{img}", "--out", "{unwritable}"], "--out: cannot write to"),
    ("evaluate", ["--config.model=nope"], "unknown model 'nope'"),
    ("evaluate", ["--config.images={dir}/nope"], "images"),
    ("evaluate", ["--config.batch_size=0", "--config.images={img}"], "batch_size"),
    ("evaluate", ["--config.batch_size=abc"], "batch_size"),
    ("evaluate", ["--config.mask_mode=1e308", "--config.images={img}"], "mask_mode: a number must be within"),
    ("evaluate", ["--config.seed=-1", "--config.images={img}", "--config.methods=rise"], "seed"),
    ("evaluate", ["--config.out={file}", "--config.images={img}", "--config.methods=rise"], "out: cannot write to"),
    ("evaluate", [f"--config.model={tiny.NAME}", "--config.weights={evil}", "--config.images={img}",
                  "--config.methods=rise", "--config.out={dir}/e"], "refusing to unpickle global os.system"),
    ("evaluate", ["--config={dir}/nope.py"], "--config: cannot load"),
    ("evaluate", ["--config.nofield=3"], "the config has no field 'nofield'"),
    ("models", ["extra"], "takes no positional arguments"),
]


@pytest.fixture(scope="module")
def usage_results(files, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    results = {}
    for command in ("explain", "evaluate", "models"):
        cases = [[command, *(a.format(**files) for a in args)] for c, args, _ in USAGE if c == command]
        for case, result in zip(cases, _probe(cases, cache)):
            results[json.dumps(case)] = result
    return results


@pytest.mark.parametrize("command,args,text", USAGE, ids=[f"{c}:{' '.join(a)[:40]}" for c, a, _ in USAGE])
def test_usage_error_is_one_line_exit_2(usage_results, files, command, args, text):
    r = usage_results[json.dumps([command, *(a.format(**files) for a in args)])]
    lines = r["stderr"].strip().splitlines()
    assert r["code"] == 2, r
    assert len(lines) == 1 and "Traceback" not in r["stderr"], r["stderr"]
    assert lines[0].startswith(f"rexjax {command}: ") and text in lines[0], lines[0]
    assert r["stdout"] == ""


# The experiment driver shares the CLI's error handling (`rexjax.cli.guarded` / `flags_parser`).
RUN_PY_USAGE = [
    ([], "--config: is required"),
    (["--config={dir}/nope.py"], "--config: cannot load"),
    (["--config=experiments/configs/rex_compare.py", "--config.nofield=3"], "the config has no field 'nofield'"),
    (["--config=experiments/configs/rex_compare.py", "--config.max_images=abc"], "--config.max_images"),
    (["--config=experiments/configs/rex_compare.py", "--config.images={img}", "--config.out={file}"],
     "--config.out: cannot write to"),
]


def test_experiment_driver_usage_errors_are_one_line_exit_2(files):
    """Catches run.py going back to absl's default parser (tracebacks for a missing config
    file or an unknown field) or to exit 1 for a bad --config.out."""
    env = {**os.environ, "PYTHONPATH": ROOT, "REXJAX_COMPILE_CACHE": "0"}
    for args, text in RUN_PY_USAGE:
        argv = [a.format(**files) for a in args]
        r = subprocess.run([sys.executable, "experiments/run.py", *argv], capture_output=True, text=True,
                           timeout=300, env=env, cwd=ROOT)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2, (argv, r.stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith("run.py: ") and text in lines[0], (argv, r.stderr[-2000:])
