"""Every study end to end at test size (files, columns, rows, resume), in process."""

import csv
from pathlib import Path

import pytest

from rexjax import evaluation, studies
from rexjax.report import maps
from rexjax.studies import runner
from rexjax.studies.rowlog import read_rows
from tests.experiments.helpers import STUDY_SETTINGS, tiny_config, tiny_images


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return tiny_images(tmp_path_factory.mktemp("images"))


def _without_timing(rows):
    return [{k: v for k, v in r.items() if k not in runner.TIMING} for r in rows]


@pytest.mark.parametrize("study", sorted(STUDY_SETTINGS))
def test_study_end_to_end_and_resume(study, images, tmp_path, monkeypatch):
    config = tiny_config(study, images, tmp_path / "out")
    module = studies.study(config.study)
    n_variants = len(module.variants(config))
    n_models = len(config.models.split(","))
    out = runner.run(config, module, progress=False)

    rows = read_rows(out / "results.csv")
    with open(out / "results.csv") as f:
        header = next(csv.reader(f))
    assert header == evaluation.COLUMNS + list(module.EXTRA_COLUMNS) + ["image_sha256", "rexjax_commit", "row_crc32"]
    assert len(rows) == 2 * n_models * n_variants
    assert len({(r["image"], r["model"], r["method"]) for r in rows}) == len(rows)
    assert [r["image"] for r in rows] == sorted(r["image"] for r in rows)  # the run's order
    for r in rows:
        for c in module.EXTRA_COLUMNS:
            if c not in ("gamma", "rho_k2", "expl_confidence"):  # empty by design here
                assert r[c] != "", (study, c, r)
        if "correct" in r:  # labels im0 -> 0, im1 -> 1
            assert r["correct"] == str(int(int(r["target"]) == int(r["image"][2:-4])))
        assert all(p.is_file() for p in maps.paths(out, r["model"], r["method"], r["image"]).values())
    for name in ("report.html", "tables.md", "config.json"):
        assert (out / name).is_file()
    (out / "report.html").unlink()
    assert runner.report(config, module) == out / "report.html" and (out / "report.html").is_file()
    before = (out / "results.csv").read_text()

    # resume: a finished run computes nothing and leaves the CSV as it was
    def no_call(*args, **kwargs):
        raise AssertionError("a finished row was recomputed")

    with monkeypatch.context() as m:
        m.setattr(evaluation.Evaluator, "measure_maps", no_call)
        runner.run(config, module, progress=False, analyse=False)
    assert (out / "results.csv").read_text() == before

    # an interrupted run (last row cut half-way, the one before it missing) redoes just those two
    lines = before.splitlines(keepends=True)
    (out / "results.csv").write_text("".join(lines[:-2]) + lines[-1][: len(lines[-1]) // 2])
    calls = []
    real = evaluation.Evaluator.measure_maps
    with monkeypatch.context() as m:
        m.setattr(evaluation.Evaluator, "measure_maps", lambda self, *a, **k: calls.append(a[0]) or real(self, *a, **k))
        runner.run(config, module, progress=False, analyse=False)
    assert len(calls) == 2
    assert _without_timing(read_rows(out / "results.csv")) == _without_timing(rows)


def test_resume_with_other_settings_is_refused(images, tmp_path):
    config = tiny_config("shape_vs_metrics", images, tmp_path / "out", methods="rise")
    runner.run(config, studies.study(config.study), progress=False, analyse=False)
    config.max_images = 1  # allowed: a resumed run may cover fewer or more images
    runner.run(config, studies.study(config.study), progress=False, analyse=False)
    config.rise.n_masks = 16
    with pytest.raises(ValueError, match="holds a run with other settings \\(rise\\)"):
        runner.run(config, studies.study(config.study), progress=False, analyse=False)


def test_captum_config_is_the_paper_protocol():
    from tests.experiments.helpers import load_config

    config = load_config("rex_compare_captum")
    assert config.study == "rex_compare" and config.methods.split(",")[0] == "rex"
    assert (config.lime.n_samples, config.kernel_shap.n_samples, config.rise.n_masks) == (25, 25, 6000)


def test_bad_settings_fail_before_any_model(images, tmp_path, monkeypatch):
    monkeypatch.setattr("rexjax.models.load_model", lambda *a, **k: pytest.fail("model loaded before validation"))
    for bad, match in [(dict(methods="rex,nope"), "unknown method 'nope'"), (dict(models="no_such_model"), "no_such_model"),
                       (dict(max_images=0), "max_images must be"), (dict(layout="coco"), "layout must be one of")]:
        config = tiny_config("rex_compare", images, tmp_path / "bad", **bad)
        with pytest.raises(ValueError, match=match):
            runner.run(config, studies.study("rex_compare"), progress=False)


def test_a_bad_image_fails_alone_and_a_rerun_retries_it(tmp_path):
    """A file that is not an image costs only its own rows: the others are written, the report
    is made, failed.txt names it and the run raises StudyIncomplete; once the file is fixed a
    rerun computes just its rows (and failed.txt goes)."""
    folder = tiny_images(tmp_path / "data")
    good = (folder / "images" / "im1.png").read_bytes()
    (folder / "images" / "im1.png").write_bytes(b"not a png")
    config = tiny_config("shape_vs_metrics", folder, tmp_path / "out", methods="rise", max_images=3)
    module = studies.study(config.study)
    with pytest.raises(runner.StudyIncomplete, match=r"1 \(image, model\) pairs failed .*first: im1.png on .*tiny_a"):
        runner.run(config, module, progress=False)
    out = tmp_path / "out"
    assert [r["image"] for r in read_rows(out / "results.csv")] == ["im0.png", "im2.png"]
    assert (out / "report.html").is_file()
    assert (out / "failed.txt").read_text().startswith("im1.png\ttests.experiments.models:tiny_a\t")
    (folder / "images" / "im1.png").write_bytes(good)
    calls = []
    real = evaluation.Evaluator.measure_maps
    with pytest.MonkeyPatch.context() as m:
        m.setattr(evaluation.Evaluator, "measure_maps", lambda self, *a, **k: calls.append(a[0]) or real(self, *a, **k))
        runner.run(config, module, progress=False)
    assert len(calls) == 1 and not (out / "failed.txt").exists()
    assert [r["image"] for r in read_rows(out / "results.csv")] == ["im0.png", "im1.png", "im2.png"]


def test_runs_go_image_major(images, tmp_path, monkeypatch):
    """Every model explains an image before the next image starts, so a run cut short holds
    whole images (paired across models) rather than whole models."""
    config = tiny_config("concentration", images, tmp_path / "out")
    order = []
    real = evaluation.Evaluator.image_rows

    def spy(self, sample, *args, **kwargs):
        order.append((sample.name, self.classifier.name))
        return real(self, sample, *args, **kwargs)

    monkeypatch.setattr(evaluation.Evaluator, "image_rows", spy)
    runner.run(config, studies.study(config.study), progress=False, analyse=False)
    assert [i for i, _ in order] == ["im0.png", "im0.png", "im1.png", "im1.png"] and len({m for _, m in order[:2]}) == 2


def test_rows_are_keyed_by_image_identity(tmp_path):
    """An image's rows (RISE's random masks come from its key) and its study-context key are
    the same whatever other images the run holds: adding an image that sorts first changes
    no other row. The context key is a named stream of the image's key, not the key itself.
    Catches a key by position (fold_in(key(seed), i)) and a context key equal to the methods'."""
    import shutil
    import types

    import jax

    from rexjax import keys
    from rexjax.studies import compare

    seen = {}

    def columns(ctx, row, x, measured):
        seen.setdefault(ctx.sample.name, jax.random.key_data(ctx.key))
        return {}

    study = types.SimpleNamespace(EXTRA_COLUMNS=(), variants=compare.variants, columns=columns,
                                  analyse=compare.analyse)
    folder = tiny_images(tmp_path / "data")
    (folder / "images" / "im2.png").unlink()
    config = tiny_config("shape_vs_metrics", folder, tmp_path / "two", methods="rise", max_images=None)
    runner.run(config, study, progress=False, analyse=False)
    two, two_keys = _without_timing(read_rows(tmp_path / "two" / "results.csv")), dict(seen)

    shutil.copy(folder / "images" / "im1.png", folder / "images" / "a_first.png")
    seen.clear()
    config.out = str(tmp_path / "three")
    runner.run(config, study, progress=False, analyse=False)
    three = _without_timing(read_rows(tmp_path / "three" / "results.csv"))
    assert [r["image"] for r in three] == ["a_first.png", "im0.png", "im1.png"]
    assert three[1:] == two
    for name in ("im0.png", "im1.png"):
        expected = keys.stream(keys.for_image(config.seed, name), "study_context")
        assert (seen[name] == two_keys[name]).all() and (seen[name] == jax.random.key_data(expected)).all()
        assert not (seen[name] == jax.random.key_data(keys.for_image(config.seed, name))).all()
    same_pixels = [(r["ins"], r["del"]) for r in (three[0], three[2])]
    assert same_pixels[0] != same_pixels[1]  # the same pixels under another name: another key


def test_processes_share_the_images_by_position():
    """Process p of P takes the samples at positions j = p mod P, every model on an image, and
    only the variants without a row; the shares are disjoint and cover the run."""
    from rexjax import data

    samples = [data.Sample(Path(f"im{i}.png")) for i in range(5)]
    done = {("im0.png", "m", "b")}
    shares = [runner.todo_list(samples, ["m", "n"], ["a", "b"], done, (p, 2)) for p in range(2)]
    assert [(t.index, t.model) for t in shares[0]] == [(0, "m"), (0, "n"), (2, "m"), (2, "n"), (4, "m"), (4, "n")]
    assert [t.index for t in shares[1]] == [1, 1, 3, 3]
    assert shares[0][0].variants == ("a",) and shares[0][1].variants == ("a", "b")
