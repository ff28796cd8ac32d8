"""experiments/run.py on two processes (jax.distributed on 127.0.0.1, CPU collectives gloo):
each process computes its share of the images, process 0 merges, and the merged CSV equals a
one-process run (in process) except for the timing columns."""

from tests.experiments.helpers import tiny_images
from tests.experiments.test_run_driver import finish, free_port, rows_without_timing, run_in_process, start

N_IMAGES = 3  # process 0: images 0 and 2, process 1: image 1 (2 methods each)


def test_two_processes_merge_to_the_one_process_csv(tmp_path):
    images = tiny_images(tmp_path / "images", N_IMAGES)
    reference = run_in_process(images, tmp_path / "one", N_IMAGES)
    assert len(reference) == 2 * N_IMAGES
    out = tmp_path / "two"
    address = f"--coordinator_address=127.0.0.1:{free_port()}"
    procs = [start(images, out, N_IMAGES, address, "--num_processes=2", f"--process_id={p}") for p in range(2)]
    outputs = [finish(p) for p in procs]
    assert "process 0 of 2: 4 maps computed here" in outputs[0], outputs[0]
    assert "process 1 of 2: 2 maps computed here" in outputs[1], outputs[1]
    assert rows_without_timing(out) == reference, outputs
    assert sorted(f.name for f in out.iterdir() if f.name.startswith(("results", "failed"))) == ["results.csv"]
    assert (out / "report.html").is_file()
