"""The crafted `.pth` corpus (`tests/security/corpus.py`): every file raises the documented
error naming the file and the problem, with bounded memory, and leaves the reader intact
(a legitimate load right after gives the correct weights)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rexjax.models.convert import pth
from rexjax.models.efficientnet_lite import bundled_weights
from tests.security import corpus

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = [*corpus.CASES, *corpus.BUILDERS]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return corpus.build(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def lite0():
    return pth.load_state_dict(bundled_weights(0))  # before any crafted file is read


def _same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name", NAMES)
def test_crafted_file_is_refused_and_reader_stays_intact(files, lite0, name):
    path, error, regex = files[name]
    with pytest.raises(getattr(pth, error) if error != "ValueError" else ValueError, match=regex) as e:
        pth.load_state_dict(path)
    assert os.path.basename(path) in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, ValueError)  # the only documented error family
    assert _same(pth.load_state_dict(bundled_weights(0)), lite0)


_PROBE = r"""
import json, resource, sys, time
from rexjax.models.convert.pth import load_state_dict
from rexjax.models.efficientnet_lite import bundled_weights
from tests.security import corpus
files = corpus.build(sys.argv[1])
ref = load_state_dict(bundled_weights(0))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = {}
for name, (path, _, _) in files.items():
    t = time.perf_counter()
    try:
        load_state_dict(path)
        err = None
    except Exception as e:
        err = type(e).__name__
    now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows[name] = {"error": err, "s": time.perf_counter() - t, "rss_growth_mb": (now - peak) / 1024}
    peak = max(peak, now)
again = load_state_dict(bundled_weights(0))
ok = list(again) == list(ref) and all((again[k] == ref[k]).all() for k in ref)
print(json.dumps({"rows": rows, "legit_after": ok}))
"""


def test_corpus_in_a_fresh_process_has_bounded_memory(tmp_path):
    out = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.splitlines()[-1])
    assert report["legit_after"]
    for name, row in report["rows"].items():
        assert row["error"] in ("ValueError", "UnsafePickleError"), (name, row)
        assert row["rss_growth_mb"] < 64, (name, row)  # peak RSS over the legitimate load's peak
        assert row["s"] < 5, (name, row)  # a hang guard, not a benchmark (times: BUILD_NOTES)
