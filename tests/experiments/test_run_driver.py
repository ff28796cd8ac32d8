"""experiments/run.py as users run it: killed (SIGKILL) on 1 device after its first rows,
then resumed on 4 host devices (XLA_FLAGS=--xla_force_host_platform_device_count=4), must
end with the CSV of the same run done uninterrupted on 1 device (in process), except for
the timing columns (time_s, compile_s). (Two subprocesses, not four, to keep `make test`
fast: the resumed part covers both the resume path and rows computed on devices 1-3.)
"""

import os
import signal
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


def _start(images, out, devices=1):
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    cmd = [sys.executable, str(REPO / "experiments" / "run.py"), *ARGS, f"--config.images={images / 'images'}",
           f"--config.out={out}", f"--config.max_images={N_IMAGES}"]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc):
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    return output


def _rows(out):
    return [{k: v for k, v in r.items() if k not in runner.TIMING} for r in read_rows(out / "results.csv")]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return tiny_images(tmp_path_factory.mktemp("images"), N_IMAGES)


@pytest.fixture(scope="module")
def reference(images, tmp_path_factory):
    """The uninterrupted run, in process (1 device), with the subprocesses' config."""
    from absl import flags
    from ml_collections import config_flags

    out = tmp_path_factory.mktemp("whole")
    argv = ["run.py", *ARGS, f"--config.images={images / 'images'}", f"--config.out={out}",
            f"--config.max_images={N_IMAGES}"]
    fv = flags.FlagValues()
    holder = config_flags.DEFINE_config_file("config", None, flag_values=fv, sys_argv=argv)
    fv(argv)
    runner.run(holder.value, studies.study("rex_compare"), progress=False, analyse=False)
    rows = _rows(out)
    assert len(rows) == 2 * N_IMAGES
    return rows


def test_killed_run_resumed_on_four_devices_gives_the_uninterrupted_csv(images, reference, tmp_path):
    out = tmp_path / "killed"
    proc = _start(images, out)
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
    output = _finish(_start(images, out, devices=4))
    assert "4 devices" in output
    assert _rows(out) == reference, output
