"""`import rexjax` alone reaches the public subpackages."""

import subprocess
import sys


def test_import_rexjax_reaches_models_load():
    code = "import rexjax; print(callable(rexjax.models.load), callable(rexjax.data.list_images), rexjax.metrics.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.split() == ["True", "True", "rexjax.metrics"], out.stderr[-2000:]
