"""The weights cache cannot be made to serve one file's weights for another's: not by
replacing the source between hashing and parsing (replaced by a rename, or rewritten in
place), not by an entry planted as a symlink to, a copy of, or symlinks into another entry;
an entry reached through symlinks is refused even when its content is right, and an entry
holding a FIFO neither hangs the load nor survives it. After each attack the
right weights load, and every entry left on disk holds the weights of the content it is
keyed by. Uses the tiny `.pth` model of `tests/helpers/tiny_pth_model`."""

import hashlib
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import rexjax.models as M
from rexjax.models import cache, registry
from rexjax.models.model import variables_template
from tests.helpers import tiny_pth_model as tiny

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def conversions(monkeypatch) -> list:
    """One item per conversion of a weights file (a cache miss)."""
    calls, real = [], registry.convert_weights
    monkeypatch.setattr(registry, "convert_weights", lambda *a: calls.append(1) or real(*a))
    return calls


def _fc(model) -> np.ndarray:
    return np.asarray(model.variables["params"]["fc"]["kernel"])


def _template():
    spec = registry.get_spec(tiny.NAME)
    return variables_template(spec.make_module(), spec.input_size)


def _entry_of(data: bytes) -> "cache.Entry":
    return cache.Entry(tiny.NAME, hashlib.sha256(data).hexdigest())


def _entries(folder) -> list[str]:
    return sorted(os.listdir(folder))


def _load_new_entry(folder, weights):
    """Loads `weights` (a miss) and returns the one entry that load added under `folder`."""
    before = set(_entries(folder)) if folder.exists() else set()
    M.load(tiny.NAME, weights)
    (added,) = set(_entries(folder)) - before
    return folder / added


def _every_entry_holds_its_content(folder, sources: dict[bytes, dict]) -> None:
    """Each entry under `folder` is a plain directory, is the entry of one of `sources`
    (file bytes -> state_dict) and restores that state_dict's weights."""
    by_path = {_entry_of(data).path.name: (data, sd) for data, sd in sources.items()}
    for name in _entries(folder):
        assert name in by_path and not os.path.islink(folder / name), (name, _entries(folder))
        data, sd = by_path[name]
        restored = cache.restore(_entry_of(data), _template())
        np.testing.assert_array_equal(restored["params"]["fc"]["kernel"], sd["fc.weight"].T)


class _ReplaceWhenHashed:
    """Stands in for `hashlib.sha256`: the moment a digest equal to the source's (file A) is
    taken, the source becomes file B (as a concurrent download or `cp` would, between the
    cache hashing the file and the reader parsing it)."""

    def __init__(self, real, digest_a: str, swap):
        self.real, self.digest_a, self.swap, self.swapped = real, digest_a, swap, False

    def __call__(self, *args, **kwargs):
        h, outer = self.real(*args, **kwargs), self

        class Hash:
            def __getattr__(self, name):  # update, digest, copy, ...: the real hash's
                return getattr(h, name)

            def hexdigest(self):
                out = h.hexdigest()
                if out == outer.digest_a and not outer.swapped:
                    outer.swapped = True
                    outer.swap()
                return out

        return Hash()


@pytest.mark.parametrize("how", ["replaced", "rewritten_in_place"])
def test_source_replaced_between_hashing_and_parsing(cached, tmp_path, monkeypatch, conversions, how):
    a, b, live = tmp_path / "a.pth", tmp_path / "b.pth", tmp_path / "live.pth"
    sd_a, sd_b = tiny.write_weights(a, 1), tiny.write_weights(b, 2)
    bytes_a, bytes_b = a.read_bytes(), b.read_bytes()
    shutil.copy(a, live)

    def swap():
        if how == "replaced":
            shutil.copy(b, tmp_path / "incoming.pth")
            os.replace(tmp_path / "incoming.pth", live)
        else:
            with open(live, "r+b") as f:  # same inode, same size: what `cp b live` does
                f.write(bytes_b)

    hook = _ReplaceWhenHashed(hashlib.sha256, hashlib.sha256(bytes_a).hexdigest(), swap)
    monkeypatch.setattr(hashlib, "sha256", hook)
    first = M.load(tiny.NAME, live)
    monkeypatch.setattr(hashlib, "sha256", hook.real)
    assert hook.swapped and live.read_bytes() == bytes_b
    # the load parsed what it hashed (A), and the entry keyed by A holds A
    np.testing.assert_array_equal(_fc(first), sd_a["fc.weight"].T)
    np.testing.assert_array_equal(_fc(M.load(tiny.NAME, live)), sd_b["fc.weight"].T)  # B now, converted
    live.write_bytes(bytes_a)
    np.testing.assert_array_equal(_fc(M.load(tiny.NAME, live)), sd_a["fc.weight"].T)
    assert len(conversions) == 2  # A's entry served A's weights back
    _every_entry_holds_its_content(cached, {bytes_a: sd_a, bytes_b: sd_b})


def _plant(entry_a, entry_b, elsewhere, how: str) -> None:
    """Replaces A's entry by a symlink to B's entry, a copy of it, or a directory of symlinks
    to B's files; or (`*_own_copy`) by a symlink to, or symlinks into, a copy of A's own entry
    outside the cache (right today, but the cache no longer controls what it serves)."""
    source = entry_b
    if how.endswith("own_copy"):
        shutil.copytree(entry_a, elsewhere)
        source = elsewhere
    shutil.rmtree(entry_a)
    if how.startswith("symlink_to"):
        os.symlink(source, entry_a)
    elif how.startswith("copy_of"):
        shutil.copytree(source, entry_a)
    else:  # files_symlinked_to: a real directory, each file a symlink to the same file of the source
        shutil.copytree(source, entry_a, copy_function=os.symlink)


@pytest.mark.parametrize("how", ["symlink_to_other_entry", "copy_of_other_entry", "files_symlinked_to_other_entry",
                                 "symlink_to_own_copy", "files_symlinked_to_own_copy"])
def test_planted_entry_is_refused_and_rebuilt(cached, tmp_path, caplog, conversions, how):
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    sd_a, sd_b = tiny.write_weights(a, 1), tiny.write_weights(b, 2)
    entry_a, entry_b = _load_new_entry(cached, a), _load_new_entry(cached, b)
    _plant(entry_a, entry_b, tmp_path / "elsewhere", how)
    with caplog.at_level(logging.WARNING, logger=cache.__name__):
        np.testing.assert_array_equal(_fc(M.load(tiny.NAME, a)), sd_a["fc.weight"].T)
    warnings = [r.getMessage() for r in caplog.records if r.name == cache.__name__]
    assert len(warnings) == 1, warnings
    assert "ignoring broken weights cache entry" in warnings[0] and entry_a.name in warnings[0], warnings
    assert len(conversions) == 3  # A converted again
    caplog.clear()
    np.testing.assert_array_equal(_fc(M.load(tiny.NAME, a)), sd_a["fc.weight"].T)
    np.testing.assert_array_equal(_fc(M.load(tiny.NAME, b)), sd_b["fc.weight"].T)  # B's entry untouched
    assert len(conversions) == 3 and not caplog.records
    _every_entry_holds_its_content(cached, {a.read_bytes(): sd_a, b.read_bytes(): sd_b})
    assert not [p for p in cached.rglob("*") if p.is_symlink()]
    if how.endswith("own_copy"):  # the links were removed, not followed
        assert (tmp_path / "elsewhere" / cache.MANIFEST).is_file()


_LOAD_BOTH = r"""
import sys
from tests.helpers import tiny_pth_model as tiny
import rexjax.models as M
tiny.register()
for path in sys.argv[1:]:
    print(float(abs(M.load(tiny.NAME, path).variables["params"]["fc"]["kernel"]).sum()))
"""


def test_fifo_in_an_entry_neither_hangs_nor_survives(cached, tmp_path):
    # A FIFO in place of the manifest blocked the restore forever; one in place of a data
    # file must not be opened either. Both are broken entries: one warning line each.
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    sums = [float(np.abs(tiny.write_weights(p, seed)["fc.weight"]).sum()) for p, seed in ((a, 1), (b, 2))]
    entry_a, entry_b = _load_new_entry(cached, a), _load_new_entry(cached, b)
    (entry_a / cache.MANIFEST).unlink()
    os.mkfifo(entry_a / cache.MANIFEST)
    data_files = [p for p in entry_b.rglob("*") if p.is_file() and p.name != cache.MANIFEST]
    data_file = max(data_files, key=lambda p: p.stat().st_size)
    data_file.unlink()
    os.mkfifo(data_file)
    out = subprocess.run([sys.executable, "-c", _LOAD_BOTH, str(a), str(b)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, cwd=ROOT, timeout=120)  # the bug: never returned
    assert out.returncode == 0, out.stderr[-2000:]
    assert [float(x) for x in out.stdout.split()] == pytest.approx(sums, rel=1e-6)
    warnings = [ln for ln in out.stderr.splitlines() if "weights cache" in ln]
    assert len(warnings) == 2, out.stderr
    assert all("ignoring broken" in w and "not a regular file" in w for w in warnings), out.stderr
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    assert not [p for p in cached.rglob("*") if not (p.is_dir() or p.is_file()) or p.is_symlink()]
    _every_entry_holds_its_content(cached, {a.read_bytes(): tiny.state_dict(1), b.read_bytes(): tiny.state_dict(2)})
