"""experiments/run.py as users run it: killed (SIGKILL) after its first rows, then resumed,
must end with the CSV of the same run done uninterrupted (in process), except for the
timing columns (time_s, compile_s) and the commit (another process may see a later one). The
helpers here also serve the two-process test."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from rexjax import studies
from rexjax.studies import runner
from rexjax.studies.rowlog import read_rows
from tests.experiments.helpers import REPO, TINY_A, tiny_images

N_IMAGES = 6
ARGS = [f"--config={REPO / 'experiments' / 'configs' / 'rex_compare.py'}", f"--config.models={TINY_A}",
        "--config.methods=rise,occlusion", "--config.rise.n_masks=8", "--config.occlusion.window=8",
        "--config.occlusion.stride=8", "--config.step=64", "--config.warmup=False", "--config.save_maps=False"]


def start(images, out, n_images=N_IMAGES, *extra):
    """experiments/run.py on `images` into `out` in a subprocess (CPU, one device)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    cmd = [sys.executable, str(REPO / "experiments" / "run.py"), *ARGS, f"--config.images={images / 'images'}",
           f"--config.out={out}", f"--config.max_images={n_images}", *extra]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc):
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    return output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows_without_timing(out):
    return [{k: v for k, v in r.items() if k not in runner.VOLATILE} for r in read_rows(out / "results.csv")]


def run_in_process(images, out, n_images=N_IMAGES):
    """The uninterrupted run in this process, with the subprocesses' config; its rows."""
    from absl import flags
    from ml_collections import config_flags

    argv = ["run.py", *ARGS, f"--config.images={images / 'images'}", f"--config.out={out}",
            f"--config.max_images={n_images}"]
    fv = flags.FlagValues()
    holder = config_flags.DEFINE_config_file("config", None, flag_values=fv, sys_argv=argv)
    fv(argv)
    runner.run(holder.value, studies.study("rex_compare"), progress=False, analyse=False)
    return rows_without_timing(out)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return tiny_images(tmp_path_factory.mktemp("images"), N_IMAGES)


def test_killed_run_resumed_gives_the_uninterrupted_csv(images, tmp_path):
    reference = run_in_process(images, tmp_path / "whole")
    assert len(reference) == 2 * N_IMAGES
    out = tmp_path / "killed"
    proc = start(images, out)
    csv = out / "results.csv"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # kill after the first rows are on disk
        if csv.exists() and len(csv.read_text().splitlines()) >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.communicate(timeout=60)
    written = len(read_rows(csv))
    assert proc.returncode == -signal.SIGKILL and 0 < written < len(reference), (proc.returncode, written)
    # --allow_other_commit: in a shared checkout a commit may land between the two processes
    output = finish(start(images, out, N_IMAGES, "--allow_other_commit"))
    assert f"process 0 of 1: {len(reference) - written} maps computed here" in output
    assert rows_without_timing(out) == reference, output
    assert json.loads((out / "provenance.json").read_text())["allow_other_commit"] is True
