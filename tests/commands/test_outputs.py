"""What `rexjax explain` leaves on disk and prints, for careless inputs and concurrent runs:

- one image's files are one unit: a file that cannot be replaced leaves every previous file
  of the image as it was, and two runs on one folder never mix an image's files;
- a file name that is not UTF-8 is explained, and the JSON line is valid UTF-8;
- derived file names (`p_multiple.png`) never collide with another image's files;
- each warning is one stderr line; a directory or FIFO fails alone, without waiting.

The command runs in a subprocess through `tests/commands/fake_explain.py` (the real command,
file handling and figures with a stand-in model and explainer: seconds, no compile); the
pieces (`io.AtomicOutputs`, `io.folder_lock`, `io.unique_names`) are also checked in process.
"""

import errno
import fcntl
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from rexjax import io, keys
from tests.commands import fake_explain
from tests.commands.test_cli_errors import ROOT


def _rgb(path, seed=0):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 12, 3), np.uint8)).save(path)


def _explain(options: dict, *args, timeout=120):
    """(exit status, stdout lines as parsed JSON, stderr lines) of a fake `rexjax explain`;
    stdout must be valid UTF-8 (strict decoding) and every line JSON."""
    env = {**os.environ, "PYTHONPATH": ROOT, "REXJAX_COMPILE_CACHE": "0"}
    p = subprocess.run([sys.executable, "-m", "tests.commands.fake_explain", json.dumps(options), *map(str, args),
                        "--noprogress"], capture_output=True, timeout=timeout, env=env, cwd=ROOT)
    return p.returncode, [json.loads(line) for line in p.stdout.decode("utf-8").splitlines()], \
        p.stderr.decode("utf-8", "backslashreplace").splitlines()


def _start(options: dict, *args):
    env = {**os.environ, "PYTHONPATH": ROOT, "REXJAX_COMPILE_CACHE": "0"}
    return subprocess.Popen([sys.executable, "-m", "tests.commands.fake_explain", json.dumps(options),
                             *map(str, args), "--noprogress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)


def _title(png) -> str:
    with Image.open(png) as im:
        return im.info["Title"]


def _target(npz) -> int:
    with np.load(npz) as z:
        return int(z["target"])


# --- one image's files are one unit ----------------------------------------------------------

def _group(folder, names, text):
    with io.AtomicOutputs(folder) as out:
        for name in names:
            with open(out.path(name), "w") as f:
                f.write(text)


def _contents(folder):
    return {n: (folder / n).read_text() for n in sorted(os.listdir(folder))}


def test_a_file_that_cannot_be_replaced_leaves_the_group_as_it_was(tmp_path, monkeypatch):
    """Catches moving the files one after another without putting back the ones already
    moved: a new a.npz beside the old (immutable) a.png."""
    _group(tmp_path, ["a.npz", "a.png"], "old")
    fake_explain.immutable(str(tmp_path / "a.png"), monkeypatch.setattr)
    with pytest.raises(PermissionError, match=r"cannot write .*a\.png \(Operation not permitted\)"):
        _group(tmp_path, ["a.npz", "a.png"], "new")
    assert _contents(tmp_path) == {"a.npz": "old", "a.png": "old"}  # and no staging folder left


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
def test_a_move_that_fails_half_way_puts_the_moved_files_back(tmp_path, monkeypatch, links):
    """A group of a file that existed (a.npz), one that did not (b.png) and one whose move
    fails (c.png): afterwards a.npz and c.png are the old ones and b.png is gone, whether the
    previous files were kept as hard links or (file systems without them) renamed aside.
    Catches a put-back that skips renamed-aside files or leaves new files behind."""
    (tmp_path / "a.npz").write_text("old")
    (tmp_path / "c.png").write_text("old")
    real = os.replace

    def failing_replace(src, dst):
        if os.path.basename(dst) == "c.png" and os.path.basename(src) == "c.png":  # the move, not the put-back
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    if not links:
        monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EPERM, "no links")))
    with pytest.raises(OSError, match=r"cannot write .*c\.png \(Input/output error\); the previous files"):
        _group(tmp_path, ["a.npz", "b.png", "c.png"], "new")
    assert _contents(tmp_path) == {"a.npz": "old", "c.png": "old"}


def test_a_file_that_cannot_be_put_back_is_kept_and_named(tmp_path, monkeypatch):
    """Catches a put-back failure that loses the previous file: it stays in the staging
    folder, whose path the error names."""
    (tmp_path / "a.npz").write_text("old")
    real = os.replace

    def failing_replace(src, dst):
        if os.path.basename(dst) == "b.png" or "previous-" in str(src):  # the move of b, then the put-back of a
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EPERM, "no links")))
    with pytest.raises(OSError, match=r"could not restore .*a\.npz \(previous version kept as ") as caught:
        _group(tmp_path, ["a.npz", "b.png"], "new")
    kept = str(caught.value).split("previous version kept as ")[1].split(":")[0]
    assert open(kept).read() == "old"


def test_files_get_the_permissions_open_gives(tmp_path):
    """Catches staged files keeping a private mode (mkstemp's 0600) once moved into place."""
    _group(tmp_path, ["a.npz"], "new")
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(tmp_path / "a.npz").st_mode & 0o777 == 0o666 & ~mask


def _locked_elsewhere(path) -> bool:
    """Whether another open file description cannot take an exclusive flock on `path`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_folder_lock_locks_the_folder_and_leaves_nothing(tmp_path):
    """Catches a lock that other writers do not see, or one left held or left as a file."""
    with io.folder_lock(tmp_path):
        assert _locked_elsewhere(tmp_path)
    assert not _locked_elsewhere(tmp_path) and os.listdir(tmp_path) == []


def test_folder_lock_falls_back_to_a_lock_file(tmp_path, monkeypatch):
    """NFS refuses flock on a directory descriptor (EBADF): the lock file is locked instead.
    Catches the fallback locking nothing, or the error escaping."""
    real = fcntl.flock

    def no_directory_locks(fd, op):
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(errno.EBADF, "Bad file descriptor")
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", no_directory_locks)
    with io.folder_lock(tmp_path):
        monkeypatch.setattr(fcntl, "flock", real)
        assert _locked_elsewhere(tmp_path / io.LOCK_FILE)


def test_rerun_over_an_immutable_png_keeps_the_previous_results(tmp_path):
    """The reproduction: a rerun where the old x.png cannot be replaced exited 1 but left the
    new x.npz beside the old x.png. Now x's files are all the first run's, no staging files
    are left, y is explained, exit 1, one stderr line for x."""
    x, y, out = tmp_path / "x.png", tmp_path / "y.png", tmp_path / "out"
    _rgb(x, 1), _rgb(y, 2)
    code, _, _ = _explain({"run": 1}, x, "--out", out)
    assert code == 0
    old_png = (out / "x.png").read_bytes()
    code, lines, err = _explain({"run": 2, "immutable": str(out / "x.png")}, x, y, "--out", out)
    assert code == 1, err
    assert lines[0]["image"] == str(x) and "PermissionError" in lines[0]["error"] and lines[1]["target"] == 2
    assert _target(out / "x.npz") == 1 and (out / "x.png").read_bytes() == old_png
    assert sorted(os.listdir(out)) == ["x.npz", "x.png", "y.npz", "y.png"]
    assert err == [f"rexjax explain: {x}: {lines[0]['error']}", "rexjax explain: 1 of 2 images failed"]


def test_two_runs_on_one_folder_never_mix_an_images_files(tmp_path):
    """The reproduction: two runs with the same stems at once left one run's .npz with the
    other's .png (both exit 0). Each run marks its files (npz target = PNG Title's class =
    the run); the runs reach each image's moves together, and run 2 moves its whole group
    while run 1 pauses after its .npz, which without the lock leaves run 2's .npz beside run
    1's .png for every image."""
    images = [tmp_path / f"im{i}.png" for i in range(3)]
    for i, p in enumerate(images):
        _rgb(p, i)
    out = tmp_path / "out"
    out.mkdir()
    at = [str(tmp_path / "at1"), str(tmp_path / "at2")]
    pauses = {1: [0, 1.0], 2: [0.5, 0]}
    runs = [_start({"run": r, "pause_npz": pauses[r], "barrier": [at[r - 1], at[2 - r]]}, *images, "--multiple", "1",
                   "--out", out) for r in (1, 2)]
    for run in runs:
        _, err = run.communicate(timeout=180)
        assert run.returncode == 0, err.decode()[-2000:]
    mixed = []
    for p in images:
        run = _target(out / f"{p.stem}.npz")
        mixed += [(png, run) for png in (f"{p.stem}.png", f"{p.stem}_multiple.png")
                  if f"run{run} ({run})" not in _title(out / png)]
    assert mixed == []
    assert len(os.listdir(out)) == 3 * len(images)  # no staging folders left


# --- names ----------------------------------------------------------------------------------

def test_a_non_utf8_file_name_is_explained_and_its_json_is_utf8(tmp_path):
    """The reproduction: b"caf\\xff.png" failed in the figure code (and the key) and put a lone
    surrogate in the JSON line. Now it is explained; the JSON line decodes as strict UTF-8 and
    names the image and its files with the byte as the text `\\xff`, which are the files
    written; a newline in a name is escaped in stderr lines (one line each)."""
    odd = tmp_path / os.fsdecode(b"caf\xff.png")
    newline = tmp_path / "new\nline.png"
    _rgb(odd, 1), _rgb(newline, 2)
    missing = tmp_path / os.fsdecode(b"gone\xfe.png")
    code, lines, err = _explain({}, odd, newline, "--out", tmp_path / "out")
    assert code == 0, err
    assert err == []
    shown = lines[0]
    assert shown["image"] == f"{tmp_path}/caf\\xff.png"
    assert shown["npz"] == f"{tmp_path}/out/caf\\xff.npz" and os.path.isfile(shown["npz"])
    assert _title(shown["png"]).startswith("caf\\xff: ")
    assert lines[1]["image"] == str(newline) and os.path.isfile(lines[1]["png"])
    code, lines, err = _explain({}, missing, "--out", tmp_path / "out")
    assert code == 2 and lines == [] and err == [f"rexjax explain: no such file: {tmp_path}/gone\\xfe.png"]


def test_the_key_of_a_non_utf8_name_is_the_key_of_its_bytes():
    """Catches the key refusing such a name (it raised UnicodeEncodeError) or hashing its
    display form (then it would equal the key of a file really named `caf\\xff.png`): the
    name's digest is the CRC-32 of its bytes on disk, as for every other name."""
    import zlib

    import jax

    odd = os.fsdecode(b"caf\xff.png")
    want = jax.random.fold_in(jax.random.fold_in(keys.root(0), keys.IMAGE), zlib.crc32(b"caf\xff.png"))
    bits = [jax.random.key_data(k) for k in (keys.for_image(0, odd), want, keys.for_image(0, "caf\\xff.png"))]
    assert np.array_equal(bits[0], bits[1]) and not np.array_equal(bits[0], bits[2])


def test_derived_file_names_never_collide(tmp_path):
    """The reproduction: with --multiple, p.jpg's composite `p_multiple.png` was overwritten by
    the figure of an image named p_multiple.jpg. Every file of the batch is now distinct, and
    each figure's Title names the image it shows."""
    p, pm = tmp_path / "p.png", tmp_path / "p_multiple.png"
    _rgb(p, 1), _rgb(pm, 2)
    code, lines, err = _explain({}, p, pm, "--multiple", "1", "--out", tmp_path / "out")
    assert code == 0, err
    files = [r[k] for r in lines for k in ("npz", "png", "composite_png")]
    assert len(set(files)) == 6 and all(os.path.isfile(f) for f in files)
    assert [os.path.basename(r["npz"]) for r in lines] == ["p.npz", "p_multiple-2.npz"]
    for r in lines:
        assert _title(r["png"]).startswith(f"{os.path.basename(r['npz'])[:-4]}: ")
        assert _title(r["composite_png"]) == _title(r["png"])


def test_unique_names_with_derived_files():
    """Catches unique_names ignoring derived files, renaming the wrong image, or comparing
    stems before their display form (two names that show alike)."""
    derived = lambda name: [name + ".npz", name + ".png", name + "_multiple.png"]  # noqa: E731
    assert io.unique_names(["a/p.jpg", "b/p_multiple.jpg"], derived) == ["p", "p_multiple-2"]
    assert io.unique_names(["b/p_multiple.jpg", "a/p.jpg"], derived) == ["p_multiple", "p-2"]
    assert io.unique_names(["a/p.jpg", "b/p_multiple.jpg"]) == ["p", "p_multiple"]  # no derived files: no clash
    assert io.unique_names([os.fsdecode(b"caf\xff.png"), "caf\\xff.jpg"]) == ["caf\\xff", "caf\\xff-2"]


# --- stderr and hostile entries ----------------------------------------------------------------

def test_each_warning_is_one_stderr_line(tmp_path):
    """The reproduction: warnings made stderr more than one line per problem (Python's source
    line; matplotlib's missing-glyph warning per draw; multi-line log records). A palette PNG
    with byte transparency (PIL warns), a CJK name (no glyphs in the font) and a two-line
    warning and log records from the explainer: each problem is exactly one line."""
    pal = tmp_path / "pal.png"
    im = Image.new("P", (12, 12))
    im.putpalette(list(range(256)) * 3)
    im.save(pal, transparency=bytes(range(256)))
    cjk = tmp_path / "日本.png"
    _rgb(cjk, 3)
    code, _, err = _explain({"warn": True}, pal, cjk, "--out", tmp_path / "out")
    assert code == 0, err
    assert not [line for line in err if "second line" in line or line.startswith(" ")], err
    for text, count in [("Palette images with Transparency", 1), ("Glyph 26085", 1), ("Glyph 26412", 1),
                        ("UserWarning: first line of a warning", 2), ("first line of a log record", 2),
                        ("first line of an absl record", 2)]:
        assert len([line for line in err if text in line]) == count, (text, err)
    assert len(err) == 9, err
    assert f"rexjax explain: {pal}: warning: UserWarning: Palette images" in "\n".join(err)


def test_a_directory_or_fifo_fails_alone(tmp_path):
    """The reproduction: a directory or FIFO among the images aborted the batch (exit 2).
    Each is one JSON error line and one stderr line, the good image is explained, exit 1,
    and the FIFO is never opened (the stand-in model would wait on it for ever)."""
    folder, fifo, good = tmp_path / "folder.png", tmp_path / "pipe.png", tmp_path / "good.png"
    folder.mkdir()
    os.mkfifo(fifo)
    _rgb(good)
    code, lines, err = _explain({}, folder, fifo, good, "--out", tmp_path / "out", timeout=60)
    assert code == 1, err
    assert lines[0] == {"image": str(folder), "error": f"ValueError: '{folder}' is a directory, not an image file"}
    assert lines[1] == {"image": str(fifo), "error": f"ValueError: '{fifo}' is a FIFO (named pipe), not an image file"}
    assert os.path.isfile(lines[2]["npz"])
    assert err == [f"rexjax explain: {folder}: {lines[0]['error']}", f"rexjax explain: {fifo}: {lines[1]['error']}",
                   "rexjax explain: 2 of 3 images failed"]


_OPEN = """
import sys
from rexjax import io
try:
    io.open_image(sys.argv[1])
except ValueError as e:
    print(e)
    sys.exit(1)
"""


def test_open_image_refuses_a_fifo_without_waiting(tmp_path):
    """A FIFO put where an image was (after any check by name) is refused on its descriptor,
    opened non-blocking. Catches a blocking open: the subprocess would hang to its timeout."""
    os.mkfifo(tmp_path / "pipe.png")
    p = subprocess.run([sys.executable, "-c", _OPEN, str(tmp_path / "pipe.png")], capture_output=True, text=True,
                       timeout=60, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert p.returncode == 1 and p.stderr == ""
    assert p.stdout.splitlines() == [f"'{tmp_path}/pipe.png' is a FIFO (named pipe), not an image file"]
    with pytest.raises(ValueError, match="is a directory, not an image file"):
        io.open_image(tmp_path)
