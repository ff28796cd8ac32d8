"""The weights cache under hostile and careless conditions: content keys (`cp -p` of another
checkpoint), corrupt and non-finite entries (one warning line, rebuilt), an unwritable cache
directory (no hang, runs uncached), three concurrent cold loads (one valid entry, no
temporary directories left). Uses the tiny `.pth` model of `tests/helpers/tiny_pth_model`."""

import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import rexjax.models as M
from rexjax.models import cache
from tests.helpers import tiny_pth_model as tiny

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fc(model) -> np.ndarray:
    return np.asarray(model.variables["params"]["fc"]["kernel"])


def _entries(folder) -> list[str]:
    return sorted(os.listdir(folder))


def _entry(src) -> cache.Entry:
    return cache.Entry(tiny.NAME, cache.digest(open(src, "rb").read()))


def test_cp_p_of_another_checkpoint_is_not_served_stale(cached, tmp_path):
    a, b, live = tmp_path / "a.pth", tmp_path / "b.pth", tmp_path / "live.pth"
    sd_a, sd_b = tiny.write_weights(a, 1), tiny.write_weights(b, 2)
    assert os.path.getsize(a) == os.path.getsize(b)
    shutil.copy2(a, live)
    np.testing.assert_array_equal(_fc(M.load(tiny.NAME, live)), sd_a["fc.weight"].T)
    stat = os.stat(live)
    shutil.copy2(b, live)  # `cp -p`: same size, and the old mtime put back
    os.utime(live, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    np.testing.assert_array_equal(_fc(M.load(tiny.NAME, live)), sd_b["fc.weight"].T)
    assert len(_entries(cached)) == 2


@pytest.mark.parametrize("damage", ["truncate_data", "delete_file", "nan_weights"])
def test_bad_entry_is_one_warning_and_rebuilt(cached, tmp_path, caplog, damage):
    src = tmp_path / "w.pth"
    sd = tiny.write_weights(src, 3)
    M.load(tiny.NAME, src)
    (entry,) = [cached / e for e in _entries(cached)]
    assert entry == _entry(src).path
    if damage == "nan_weights":  # a well-formed entry holding garbage (an old poisoned cache)
        good = cache.restore(_entry(src), jax.eval_shape(lambda: M.load(tiny.NAME, src).variables))
        good["params"]["fc"]["kernel"] = np.full_like(good["params"]["fc"]["kernel"], np.nan)
        shutil.rmtree(entry)
        cache.save(_entry(src), good)
    else:
        files = sorted(p for p in entry.rglob("*") if p.is_file() and "/d/" in str(p))
        if damage == "truncate_data":
            for f in files:
                f.write_bytes(f.read_bytes()[:10])
        else:
            files[0].unlink()
    if damage == "truncate_data":  # tensorstore prints from its own threads: see a real stderr
        out, err = _spawn(src, cached).communicate(timeout=120)
        assert float(out) == pytest.approx(float(np.abs(sd["fc.weight"]).sum()), rel=1e-6)
        warnings = [ln for ln in err.splitlines() if "weights cache" in ln]
        assert "Traceback" not in err and "Event loop is closed" not in err, err[-2000:]
    else:
        np.testing.assert_array_equal(_fc(M.load(tiny.NAME, src)), sd["fc.weight"].T)
        warnings = [r.getMessage() for r in caplog.records if r.name == cache.__name__]
    assert len(warnings) == 1 and "ignoring" in warnings[0], warnings
    assert np.isfinite(_fc(M.load(tiny.NAME, src))).all() and len(_entries(cached)) == 1


def test_non_finite_weights_are_refused_before_caching(cached, tmp_path):
    sd = tiny.state_dict(4)
    sd["conv.bias"][1] = np.inf
    src = tmp_path / "inf.pth"
    tiny.write_weights(src, sd=sd)
    with pytest.raises(ValueError, match=r"inf\.pth.*1 non-finite values.*conv/bias"):
        M.load(tiny.NAME, src)
    assert _entries(cached) == []


_LOAD = r"""
import os, sys
from tests.helpers import tiny_pth_model as tiny
import rexjax.models as M
tiny.register()
m = M.load(tiny.NAME, sys.argv[1])
print(float(abs(m.variables["params"]["fc"]["kernel"]).sum()))
"""


def _spawn(weights, cache_dir):
    env = {**os.environ, "REXJAX_CACHE_DIR": str(cache_dir), "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, "-c", _LOAD, str(weights)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)


def _unwritable_dir(tmp_path) -> str:
    if os.geteuid() == 0:  # root writes through any mode bits; /proc/self refuses new files
        return "/proc/self"
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    return str(d)


def test_unwritable_cache_warns_once_and_exits(tmp_path):
    src = tmp_path / "w.pth"
    sd = tiny.write_weights(src, 5)
    p = _spawn(src, _unwritable_dir(tmp_path))
    out, err = p.communicate(timeout=120)  # the bug: finished, then never exited
    assert p.returncode == 0, err[-2000:]
    assert float(out) == pytest.approx(float(np.abs(sd["fc.weight"]).sum()), rel=1e-6)
    lines = [ln for ln in err.splitlines() if "weights cache" in ln]
    assert len(lines) == 1 and "not writable" in lines[0] and "Traceback" not in err, err


def test_concurrent_saves_leave_one_valid_entry(cached, tmp_path):
    import threading

    src = tmp_path / "w.pth"
    sd = tiny.write_weights(src, 7)
    variables = M.load(tiny.NAME, src, use_cache=False).variables
    entry = _entry(src)
    threads = [threading.Thread(target=cache.save, args=(entry, variables)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _entries(cached) == [entry.path.name]  # no temporary directories left
    restored = cache.restore(entry, jax.eval_shape(lambda: variables))
    np.testing.assert_array_equal(restored["params"]["fc"]["kernel"], sd["fc.weight"].T)


@pytest.mark.slow
def test_three_concurrent_cold_loads(tmp_path):
    src = tmp_path / "w.pth"
    sd = tiny.write_weights(src, 6)
    folder = tmp_path / "cache"
    procs = [_spawn(src, folder) for _ in range(3)]
    results = [p.communicate(timeout=300) for p in procs]
    want = float(np.abs(sd["fc.weight"]).sum())
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0 and float(out) == pytest.approx(want, rel=1e-6), err[-2000:]
        assert "Traceback" not in err and "weights cache" not in err, err[-2000:]
    names = _entries(folder)
    assert [n for n in names if n.startswith(tiny.NAME)] == names and len(names) == 1, names  # no temp dirs
    entry = folder / names[0]
    assert not [p for p in entry.rglob("*") if "tmp" in p.name]
    out, err = _spawn(src, folder).communicate(timeout=120)  # the entry is complete and valid
    assert float(out) == pytest.approx(want, rel=1e-6) and "weights cache" not in err, err
    assert _entries(folder) == names
