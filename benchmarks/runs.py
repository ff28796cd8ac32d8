"""One explanation per tool and one scorer for both (used by `compare`, `frontier`, `screen`).

`ToolWorker` drives the ReX tool's torch process (`tool_worker.py`, in the venv `tool_env`
builds) with glibc's malloc tuned as in the tool's documented baseline; `run_tool` /
`run_rexjax` give a `Run` per (image, seed); `Scorer` scores any tool's map and mask with
rexjax's metrics and re-checks sufficiency with the torch model.

Keys: the tool takes the seed (its own scheme); rexjax explains image `name` at seed s with
`keys.for_image(s, name)`, the key `rexjax explain --seed s` gives that image.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np

from benchmarks.stats import Run

ROOT = Path(__file__).resolve().parents[1]
GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=2147483647:glibc.malloc.trim_threshold=4294967295"
TOOL_BATCH = 64  # the tool's documented batch size (tool_worker.py sets it)
WORKER = Path(__file__).resolve().parent / "tool_worker.py"


def source_state() -> str:
    """The rexjax commit measured (short), plus the files under rexjax/ that differ from it
    (`rexjax.provenance.code_state`: the rexjax this process imported)."""
    from rexjax import provenance

    state = provenance.code_state()
    dirty = [p for p in state.changed if p.startswith("rexjax/")]
    return (state.commit or "unknown")[:7] + (f" + uncommitted {dirty}" if dirty else "")


def write_provenance(out: Path, benchmark: str, module: str, **facts) -> dict:
    """Writes out/provenance.json (`rexjax.provenance.record`: commit, dirty tree, versions,
    device, date) with the benchmark, the command (`python -m benchmarks.<module>` and this
    process's flags) and `facts` (more versions, the machine, ...)."""
    import shlex
    import sys

    from rexjax import provenance

    command = " ".join(["python", "-m", f"benchmarks.{module}", *map(shlex.quote, sys.argv[1:])])
    prov = provenance.record(command=command, benchmark=benchmark, **facts)
    provenance.write(out, prov)
    return prov


# --- the tool's worker --------------------------------------------------------------------


class ToolWorker:
    """The torch process of `tool_worker.py`; `ask(request) -> answer` (JSON lines)."""

    def __init__(self, python: Path, log: Path):
        env = dict(os.environ, GLIBC_TUNABLES=GLIBC_TUNABLES)
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [str(python), str(WORKER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
        )
        self._read()  # {"ready": true} once the model is loaded

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the tool's worker exited (see {self.log.name})")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the tool's worker: {answer['error']}")
        return answer

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.log.close()


# --- one explanation per tool ----------------------------------------------------------------

def run_tool(worker: ToolWorker, x_path: Path, image: str, seed: int, args: dict, tmp: Path) -> Run:
    out = tmp / "tool.npz"
    a = worker.ask({"op": "explain", "x": str(x_path), "out": str(out), "seed": seed, "args": args})
    saved = np.load(out)
    return Run("rex-xai", image, seed, a["target"], a["wall_s"], a["map_s"], a["extract_s"], a["forward_images"],
               a["forward_images_map"], a["forward_images_extract"], saved["responsibility"], saved["mask"])


def run_rexjax(explainer, x: np.ndarray, image: str, seed: int) -> Run:
    from rexjax import keys

    ex = explainer(x, key=keys.for_image(seed, image))
    return Run("rexjax", image, seed, ex.target, ex.wall_time, ex.time_map, ex.time_extract, ex.forward_images,
               ex.forward_images_map, ex.forward_images_extract, np.asarray(ex.responsibility), np.asarray(ex.mask))


# --- one metric implementation for both --------------------------------------------------------


class Scorer:
    """Scores any (map, mask) with rexjax's metrics and the torch model's sufficiency check."""

    def __init__(self, classifier, worker: ToolWorker):
        self.classifier = classifier
        self.worker = worker

    def __call__(self, run: Run, x: np.ndarray, x_path: Path, tmp: Path) -> dict:
        from rexjax.metrics import REX, insertion_deletion

        curves = insertion_deletion(self.classifier, x, run.responsibility, run.target, convention=REX, mask_mode=0.0)
        masks = tmp / "masks.npy"
        np.save(masks, run.mask[None])
        torch_check = self.worker.ask({"op": "check", "x": str(x_path), "masks": str(masks)})
        jax_probs = np.asarray(self.classifier.probs(np.where(run.mask[None, ..., None], x[None], 0.0)))[0]
        return {
            "area": float(run.mask.mean()),
            "insertion": curves.insertion_auc,
            "deletion": curves.deletion_auc,
            "sufficient_torch": bool(run.mask.any() and torch_check["top1"][0] == run.target),
            "sufficient_jax": bool(run.mask.any() and int(np.argmax(jax_probs)) == run.target),
            "images_per_s": run.forward_images / run.seconds,
        }
