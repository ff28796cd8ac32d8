"""rexjax.evaluation (the Evaluator, method building, summary) and the evaluate configs."""

import ast
import csv
import importlib.metadata
import json
import math
import sys
import time
import types
from pathlib import Path

import jax
import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags
from PIL import Image

from rexjax import evaluation, keys, methods, metrics
from rexjax.classifier import Classifier
from rexjax.configs import evaluate as default_config
from rexjax.masking import parse_mask_mode
from rexjax.types import Attribution
from tests.helpers.tiny import TinyModel

REPO = Path(__file__).resolve().parent.parent
STUDY_CONFIG = REPO / "experiments" / "configs" / "evaluate.py"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """images/{a,b}.png (random, 20 x 24; TinyModel's top-1: a 0, b 1 (bluish)) and masks/a.png
    (top half = segment)."""
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(1)
    (root / "images").mkdir()
    for name in ("a", "b"):
        pixels = (rng.random((20, 24, 3)) * 255).astype(np.uint8)
        if name == "b":
            pixels[..., :2] //= 3
        Image.fromarray(pixels).save(root / "images" / f"{name}.png")
    (root / "masks").mkdir()
    seg = np.zeros((20, 24), np.uint8)
    seg[:10] = 255
    Image.fromarray(seg).save(root / "masks" / "a.png")
    return root


@pytest.fixture(scope="module")
def classifier():
    return Classifier(TinyModel())


SMALL = {"rise": {"n_masks": 16}, "integrated_gradients": {"n_steps": 4}, "occlusion": {"window": 8, "stride": 8}}


@pytest.fixture(scope="module")
def rows(folder, classifier):
    made = evaluation.make_methods("rise,ig,gradcam,occlusion", SMALL, shared={"mask_mode": 0.0, "batch_size": 8})
    ev = evaluation.Evaluator(classifier, made, batch_size=8, seed=3, masks_dir=folder / "masks")
    return ev.evaluate(sorted((folder / "images").iterdir()))


def test_rows_one_per_image_and_method(rows, folder, classifier):
    assert [(r["image"], r["method"]) for r in rows] == [
        (i, m) for i in ("a.png", "b.png") for m in ("rise", "ig", "gradcam", "occlusion")
    ]
    for r in rows:
        assert list(r) == evaluation.COLUMNS
        x = classifier.prepare(folder / "images" / r["image"])
        probs = np.asarray(classifier.full_probs(x))
        assert r["target"] == int(probs.argmax()) and r["label"] == TinyModel.labels[r["target"]]
        assert r["full_confidence"] == pytest.approx(float(probs.max()))
        assert 0 < r["area"] <= 1 and r["forward_images"] > 0 and r["forward_images_area"] > 0
        for c in ("ins", "del", "time_s"):
            assert math.isfinite(r[c]) and r[c] >= 0
        assert (r["convention"], r["step"]) == ("rex", 100)
        if r["image"] == "a.png":
            assert 0 <= r["IN"] <= 1 and r["IN"] + r["OUT"] == pytest.approx(1.0)
            assert r["segment_area"] == pytest.approx(0.5)  # the fixture's segment: the top half
        else:
            assert r["IN"] is None and r["OUT"] is None and r["segment_area"] is None
    assert [r["target"] for r in rows[::4]] == [0, 1]
    fwd = {r["method"]: r["forward_images"] for r in rows}
    assert fwd["rise"] == 16 and fwd["ig"] == 4  # the methods' own counts, settings applied


def test_row_values_are_the_metrics_of_the_map(folder, classifier):
    """area / ins / del / IN / OUT are the metrics of the method's map, measured directly."""
    made = evaluation.make_methods("ig", SMALL)
    ev = evaluation.Evaluator(classifier, made, convention="rise", step=50, seed=5, masks_dir=folder / "masks")
    (row,) = ev.evaluate([folder / "images" / "a.png"])
    x = classifier.prepare(folder / "images" / "a.png")
    target = row["target"]
    att = made["ig"](classifier, x, target, key=keys.for_image(5, "a.png"))
    area, ex = metrics.make_area(classifier)(x, att.map, target, row["full_confidence"])
    conv = metrics.RISE._replace(step=50)
    curves = metrics.insertion_deletion(classifier, x, att.map, target, conv)
    seg = np.zeros((16, 16), bool)
    seg[:8] = True
    io = metrics.in_out(ex.mask, seg)
    assert (row["area"], row["forward_images_area"]) == (area, ex.forward_images)
    assert (row["ins"], row["del"]) == (curves.insertion_auc, curves.deletion_auc)
    assert (row["IN"], row["OUT"]) == (io.inside, io.outside)
    assert (row["convention"], row["step"]) == ("rise", 50)


def _fake_factory(scale=1.0, batch_size=None, mask_mode=0.0):
    """A method no code knows by name: map = scale * mean over channels; records its calls."""
    calls = []

    def fn(classifier, x, target, *, key):
        calls.append((jax.random.key_data(key), target))
        return Attribution(scale * x.mean(-1), 7, {"batch_size": batch_size, "mask_mode": mask_mode})

    fn.calls = calls
    return fn


@pytest.fixture
def fake_method(monkeypatch):
    module = types.ModuleType("fake_method_module")
    module.fake = _fake_factory
    monkeypatch.setitem(sys.modules, "fake_method_module", module)
    monkeypatch.setitem(methods.REGISTRY, "fake", methods.Entry("fake_method_module:fake"))
    return "fake"


def test_registered_fake_method_runs_through_the_evaluator(fake_method, folder, classifier):
    made = evaluation.make_methods(["fake"], {"fake": {"scale": 2.0}}, shared={"batch_size": 5, "mask_mode": "max"})
    assert made["fake"].config == {"scale": 2.0, "batch_size": 5, "mask_mode": "max"}
    images = sorted((folder / "images").iterdir())
    rows = evaluation.Evaluator(classifier, made, seed=11).evaluate(images)
    assert [(r["image"], r["method"], r["forward_images"]) for r in rows] == [("a.png", "fake", 7), ("b.png", "fake", 7)]
    calls = made["fake"].fn.calls
    assert len(calls) == 3 and (calls[0][0] == calls[1][0]).all()  # a warm-up call (same key) on image 0
    for i, (key_data, target) in enumerate(calls[1:]):  # keyed by file name (not position), its top-1 class
        np.testing.assert_array_equal(key_data, jax.random.key_data(keys.for_image(11, rows[i]["image"])))
        assert target == rows[i]["target"]
    x = classifier.prepare(images[0])
    area, _ = metrics.make_area(classifier)(x, 2.0 * x.mean(-1), rows[0]["target"], rows[0]["full_confidence"])
    assert rows[0]["area"] == area


def parse_config(*args, path=default_config.__file__):
    """The config `rexjax evaluate` would get from `args` (config_flags, as on the command line)."""
    argv = ["rexjax evaluate", *args]
    fv = flags.FlagValues()
    holder = config_flags.DEFINE_config_file("config", str(path), flag_values=fv, sys_argv=argv)
    fv(argv)
    return holder.value


def test_config_overrides_reach_the_methods(folder, classifier):
    config = parse_config("--config.methods=rise,ig", "--config.rise.n_masks=8",
                          "--config.integrated_gradients.n_steps=3", "--config.batch_size=8", "--config.mask_mode=max")
    made = evaluation.make_methods(config.methods, config, shared={"mask_mode": config.mask_mode, "batch_size": 8})
    defaults = default_config.get_config().rise.to_dict()
    assert made["rise"].config == {**defaults, "n_masks": 8, "mask_mode": "max", "batch_size": 8}
    assert made["ig"].config["n_steps"] == 3
    rows = evaluation.Evaluator(classifier, made, batch_size=8).evaluate([folder / "images" / "b.png"])
    assert {r["method"]: r["forward_images"] for r in rows} == {"rise": 8, "ig": 3}


def test_every_config_entry_builds_its_method():
    config = default_config.get_config()
    subs = [k for k, v in config.items() if hasattr(v, "to_dict")]
    assert subs and set(subs) <= set(methods.names())
    shared = {"mask_mode": config.mask_mode, "batch_size": config.batch_size}
    for name, method in evaluation.make_methods(subs, config, shared=shared).items():
        for key, value in config[name].to_dict().items():
            assert method.config[key] == value, (name, key)
    evaluation.make_methods(config.methods, config, shared=shared)  # the default methods too


def _load_study(arg=None):
    return parse_config(*([f"--config={STUDY_CONFIG}:{arg}"] if arg else []), path=STUDY_CONFIG)


def test_study_config_extends_the_default():
    paper, cpu = _load_study(), _load_study("cpu")
    base = default_config.get_config()
    assert paper.rise.n_masks == base.rise.n_masks == 4000 and paper.step is None
    assert (paper.rex.search.iters, paper.rex.search.responsibility) == (20, "alg1")  # the paper's ReX budget
    assert (cpu.rex.search.iters, cpu.rise.n_masks, cpu.integrated_gradients.n_steps, cpu.lime.n_samples, cpu.step) == (
        10, 1000, 32, 500, 250)
    assert cpu.methods == base.methods and set(cpu.keys()) == set(base.keys())
    with pytest.raises(flags.IllegalFlagValueError, match="config argument"):
        _load_study("huge")


def test_captum_config_has_captum_defaults():
    """The named config with Captum 0.9's defaults (RISE: the authors'
    notebook settings) builds every method of the ReX paper's Table 1 that rexjax has."""
    captum = _load_study("captum")
    assert captum.methods == "rex,gradcam,kernel_shap,gradient_shap,rise,lime,ig,noise_tunnel"
    assert (captum.kernel_shap.n_samples, captum.lime.n_samples, captum.gradient_shap.n_samples) == (25, 25, 5)
    assert captum.lime.kernel_width == pytest.approx(2 ** -0.5)
    nt = captum.noise_tunnel
    assert (nt.n_samples, nt.stdev, nt.relative, nt.nt_type) == (5, 1.0, False, "smoothgrad")
    assert captum.gradcam.relu is False and captum.lrp.eps == 1e-9
    assert (captum.rise.n_masks, captum.rise.grid, captum.rise.p) == (6000, 8, 0.1)
    assert captum.integrated_gradients.n_steps == 50 and captum.integrated_gradients.rule == "gausslegendre"
    shared = {"mask_mode": captum.mask_mode, "batch_size": captum.batch_size}
    made = evaluation.make_methods(captum.methods, captum, shared=shared)
    assert made["noise_tunnel"].config["stdev"] == 1.0 and made["lime"].config["n_samples"] == 25


def test_make_methods_names_and_shared_options():
    made = evaluation.make_methods(" IG ,gradcam", shared={"mask_mode": "max", "batch_size": 4})
    assert list(made) == ["IG", "gradcam"] and made["IG"].name == "integrated_gradients"
    assert made["IG"].config == {"batch_size": 4} and made["gradcam"].config == {}  # only what a factory takes
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        evaluation.make_methods("rise,nope")
    with pytest.raises(ValueError, match="same method"):
        evaluation.make_methods("ig,integrated_gradients")
    with pytest.raises(ValueError, match="at least one method"):
        evaluation.make_methods(" , ")
    with pytest.raises(ValueError, match="n_mask"):
        evaluation.make_methods("rise", {"rise": {"n_mask": 3}})


def test_shared_options_reach_rex():
    """ReX's factory takes **config; its declared options let `shared` reach it."""
    made = evaluation.make_methods("rex", {"rex": {"iters": 2}}, shared={"mask_mode": "max", "batch_size": 4})
    assert made["rex"].config == {"iters": 2, "mask_mode": "max", "batch_size": 4}


@pytest.mark.parametrize("kwargs,match", [
    ({"mask_mode": "purple"}, "mask_mode"),
    ({"convention": "petsiuk"}, "convention"),
    ({"step": 0}, "step"),
    ({"batch_size": 0}, "batch_size"),
    ({"seed": 1.5}, "seed"),
    ({"masks_dir": "/no/such/folder"}, "masks"),
])
def test_evaluator_rejects_bad_settings(classifier, kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluation.Evaluator(classifier, {"ig": methods.make("ig")}, **kwargs)


@pytest.mark.parametrize("bad,match", [({}, "non-empty mapping"), ({"x": 3}, "not callable")])
def test_evaluator_rejects_bad_methods(classifier, bad, match):
    with pytest.raises(ValueError, match=match):
        evaluation.Evaluator(classifier, bad)


def test_rex_area_is_its_own_extraction(folder, classifier):
    """The Evaluator's area extraction on ReX's map = ReX's own (equal settings: the reference's
    extraction, as the metric's). Image b: its class needs the right pixels (on a, class 0 wins
    the all-masked tie: any 10 pixels do)."""
    made = evaluation.make_methods("rex", {"rex": {"iters": 2, "prefix_growth": 0.0, "prune_grids": ()}})
    (row,) = evaluation.Evaluator(classifier, made, seed=2).evaluate([folder / "images" / "b.png"])
    x = classifier.prepare(folder / "images" / "b.png")
    own = made["rex"](classifier, x, row["target"], key=keys.for_image(2, "b.png")).record
    assert row["area"] == own.area and row["forward_images"] == own.forward_images
    # its full config (RexConfig, defaults included) is in the row and rebuilds the method
    config = json.loads(row["method_config"])
    assert config["search"]["iters"] == 2 and config["search"]["min_box_size"] == 10 and "spatial" in config
    rebuilt = methods.make("rex", **config)(classifier, x, row["target"], key=keys.for_image(2, "b.png"))
    assert rebuilt.record.area == own.area


def test_summary_and_table():
    """Per method: n, the sample std (ddof 1) of the area, none for n = 1, IN and OUT both
    with their chance levels (a random pixel set's: mean segment_area and 1 - it over the
    method's own rows), compile time apart from time_s."""
    def row(m, area, ins, IN=None, fwd=10, compile_s=None, seg=None):
        return {"method": m, "area": area, "ins": ins, "del": 0.5, "IN": IN, "OUT": None if IN is None else 1 - IN,
                "segment_area": seg, "time_s": 1.0, "compile_s": compile_s, "forward_images": fwd}

    rows = [row("b", 0.1, 0.9, 0.25, 10, 4.0, 0.05), row("a", 0.3, float("nan"), None, 20, 2.0),
            row("b", 0.3, 0.7, None, 30), row("b", 0.5, 0.8, 0.75, 20, None, 0.15)]
    s = evaluation.summary(rows)
    assert list(s) == ["b", "a"]  # first-seen order
    assert s["b"]["n"] == 3 and s["a"]["n"] == 1
    assert s["b"]["area"] == pytest.approx(0.3) and s["b"]["std"] == pytest.approx(0.2)  # ddof 1 (ddof 0: 0.163)
    assert s["a"]["std"] is None  # one image: no spread to report
    assert s["b"]["ins"] == pytest.approx(0.8) and s["b"]["IN"] == pytest.approx(0.5) and s["b"]["OUT"] == pytest.approx(0.5)
    assert s["b"]["IN_chance"] == pytest.approx(0.1) and s["b"]["OUT_chance"] == pytest.approx(0.9)
    assert s["b"]["forward_images"] == 20 and s["a"]["ins"] is None and s["a"]["IN"] is None
    assert s["a"]["IN_chance"] is None and s["a"]["OUT_chance"] is None
    assert s["b"]["time_s"] == 1.0 and s["b"]["compile_s"] == 4.0 and s["a"]["compile_s"] == 2.0
    lines = evaluation.summary_table(rows).splitlines()
    assert lines[0].split() == ["tool", "n", "area", "std", "ins", "del", "IN", "IN_chance", "OUT", "OUT_chance",
                                "time_s", "compile_s", "fwd"]
    assert lines[1].split() == ["b", "3", "0.3000", "0.2000", "0.8000", "0.5000", "0.5000", "0.1000", "0.5000", "0.9000",
                                "1.00", "4.00", "20"]
    assert lines[2].split() == ["a", "1", "0.3000", "-", "-", "0.5000", "-", "-", "-", "-", "1.00", "2.00", "20"]
    # without segmentations no IN / OUT columns at all
    plain = [row("c", 0.2, 0.6)]
    assert evaluation.summary_table(plain).splitlines()[0].split()[:7] == ["tool", "n", "area", "std", "ins", "del", "time_s"]


def test_rows_reproduce_on_their_own(folder, classifier, tmp_path):
    """One CSV row alone rebuilds its numbers: the model and weights, the
    mask mode and substrates, the seed and image (key = keys.for_image(seed, image)), the
    method's full config (defaults included, as JSON) and the rexjax version are in the row."""
    made = evaluation.make_methods("rise,ig", SMALL, shared={"mask_mode": "max", "batch_size": 8})
    ev = evaluation.Evaluator(classifier, made, mask_mode="max", batch_size=8, seed=5, step=40)
    rows = ev.evaluate(sorted((folder / "images").iterdir()))
    path = tmp_path / "rows.csv"
    evaluation.write_csv(path, rows)
    with open(path) as f:
        got = list(csv.DictReader(f))
    assert list(got[0]) == evaluation.COLUMNS
    r = got[3]  # image b, ig
    assert (r["image"], r["method"], r["seed"]) == ("b.png", "ig", "5")
    assert (r["model"], r["weights"], r["mask_mode"]) == ("tiny", "", "max")
    assert (r["convention"], r["step"], r["ins_substrate"], r["del_substrate"]) == ("rex", "40", "max", "max")
    assert r["rexjax_version"] == importlib.metadata.version("rexjax")
    config = json.loads(r["method_config"])
    rise_config = json.loads(got[0]["method_config"])
    # every keyword of the factory, the given ones with their values, the rest at their defaults
    assert set(config) == methods.accepts("ig") and set(rise_config) == methods.accepts("rise")
    assert config["n_steps"] == 4 and config["batch_size"] == 8 and config["rule"] == "gausslegendre"
    rise_given = (rise_config["n_masks"], rise_config["grid"], rise_config["p"], rise_config["mask_mode"])
    assert rise_given == (16, 7, 0.5, "max")
    # rebuild the row from its own fields
    method = methods.make(r["method"], **config)
    x = classifier.prepare(folder / "images" / r["image"])
    key = keys.for_image(int(r["seed"]), r["image"])
    att = method(classifier, x, int(r["target"]), key=key)
    conv = metrics.resolve_convention(r["convention"])._replace(step=int(r["step"]))
    curves = metrics.insertion_deletion(classifier, x, att.map, int(r["target"]), conv,
                                        mask_mode=parse_mask_mode(r["mask_mode"]))
    assert float(r["ins"]) == curves.insertion_auc and float(r["del"]) == curves.deletion_auc
    assert int(r["forward_images"]) == att.forward_images


class TinyFlax(TinyModel):
    """TinyModel with the Flax-style `apply_fn(variables, x)` ConvAD needs."""

    def apply_fn(self, variables, xb):
        return self(xb)


def test_ad_rows_name_the_ad_substrate(fake_method, folder):
    """Under mask_mode='ad' every row says so: mask_mode 'ad' and both ReX-convention
    substrates 'ad' (no column claims a zero substrate)."""
    made = evaluation.make_methods(["fake"], shared={"mask_mode": "ad"})
    (r,) = evaluation.Evaluator(Classifier(TinyFlax()), made, mask_mode="ad", step=64).evaluate(
        [folder / "images" / "b.png"])
    assert (r["mask_mode"], r["ins_substrate"], r["del_substrate"], r["convention"]) == ("ad", "ad", "ad", "rex")
    assert json.loads(r["method_config"]) == {"scale": 1.0, "batch_size": None, "mask_mode": "ad"}


def _slow_first_call_factory(pause=0.4):
    """A method whose first call is slow (as a compilation would be), later calls fast."""
    seen = []

    def fn(classifier, x, target, *, key):
        if not seen:
            time.sleep(pause)
        seen.append(1)
        return Attribution(x.mean(-1), 1, None)

    return fn


def test_compile_time_is_apart_from_time_s(monkeypatch, folder, classifier):
    """The first call of a method (compilation) is a warm-up timed as
    compile_s on that method's first row; time_s is a warm call."""
    module = types.ModuleType("slow_method_module")
    module.slow = _slow_first_call_factory
    monkeypatch.setitem(sys.modules, "slow_method_module", module)
    monkeypatch.setitem(methods.REGISTRY, "slow", methods.Entry("slow_method_module:slow"))
    images = sorted((folder / "images").iterdir())
    rows = evaluation.Evaluator(classifier, evaluation.make_methods("slow")).evaluate(images)
    assert rows[0]["compile_s"] >= 0.35 and rows[0]["time_s"] < 0.3
    assert rows[1]["compile_s"] is None and rows[1]["time_s"] < 0.3
    # warmup=False: the first row's time_s includes the first call, no compile_s
    rows = evaluation.Evaluator(classifier, evaluation.make_methods("slow"), warmup=False).evaluate(images)
    assert rows[0]["time_s"] >= 0.35 and rows[0]["compile_s"] is None


def test_step_larger_than_the_image_is_a_clear_error(folder, classifier):
    """Fewer pixels (16 x 16 = 256) than `step` is a ValueError naming both."""
    ev = evaluation.Evaluator(classifier, evaluation.make_methods("ig", SMALL), step=257)
    with pytest.raises(ValueError, match=r"step 257 .*256 pixels"):
        ev.evaluate([folder / "images" / "a.png"])
    (row,) = evaluation.Evaluator(classifier, evaluation.make_methods("ig", SMALL), step=256).evaluate(
        [folder / "images" / "a.png"])
    assert math.isfinite(row["ins"])


def _string_literals(path):
    """String constants of a module's code: docstrings and default argument values excluded."""
    tree = ast.parse(Path(path).read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
        if isinstance(node, ast.FunctionDef):
            for d in node.args.defaults + node.args.kw_defaults:
                if d is not None:
                    skip.update(id(n) for n in ast.walk(d))
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip]


@pytest.mark.parametrize("module", ["rexjax/evaluation.py", "rexjax/commands/evaluate.py", "rexjax/data.py"])
def test_no_method_name_in_code(module):
    """No method is special-cased: no registered name or alias appears as a string in code."""
    names = set(methods.REGISTRY) | set(methods.ALIASES)
    found = [s for s in _string_literals(REPO / module) if any(
        n in s.lower().replace("-", "_").split() or s.lower() == n for n in names)]
    assert found == []


TINY_SPEC = "tests.helpers.tiny:TinyModel"  # a 'package.module:factory' model for the command


def _run_cli(capsys, *args):
    """`rexjax evaluate ARGS` in process, on TinyModel unless ARGS name a model: (exit status,
    captured)."""
    from rexjax.commands import evaluate as cmd

    model = [] if any(a.startswith("--config.model=") for a in args) else [f"--config.model={TINY_SPEC}"]
    rc = cmd.run(parse_config(*model, *args))
    return rc, capsys.readouterr()


def test_cli_run_writes_csv_and_summary_and_resumes(monkeypatch, capsys, folder, tmp_path):
    args = [f"--config.images={folder / 'images'}", f"--config.masks={folder / 'masks'}", f"--config.out={tmp_path}",
            "--config.methods=rise,ig", "--config.rise.n_masks=8", "--config.integrated_gradients.n_steps=3",
            "--config.batch_size=8", "--config.step=64", "--config.max_images=1"]
    rc, out = _run_cli(capsys, *args)
    assert rc == 0, out.err
    with open(tmp_path / "results.csv") as f:
        got = list(csv.DictReader(f))
    assert [(r["image"], r["method"], r["forward_images"], r["step"]) for r in got] == [
        ("a.png", "rise", "8", "64"), ("a.png", "ig", "3", "64")]
    from rexjax.studies import runner

    # the evaluator's columns, then the runner's (identity, code) and each line's checksum
    assert list(got[0])[:len(evaluation.COLUMNS)] == evaluation.COLUMNS
    assert set(runner.RUN_COLUMNS) <= set(list(got[0])[len(evaluation.COLUMNS):])
    assert float(got[0]["IN"]) + float(got[0]["OUT"]) == pytest.approx(1)
    summary = (tmp_path / "summary.txt").read_text()
    assert (f"model {TINY_SPEC}, 1 images, weights -, convention rex (step 64, insertion over 0.0, deletion over "
            "0.0), mask_mode 0.0, seed 0") in summary
    assert "n_masks: 8" in summary and f"rexjax {importlib.metadata.version('rexjax')}" in summary
    assert summary.splitlines()[1].split()[:4] == ["tool", "n", "area", "std"] and "ig " in out.out
    assert (got[0]["model"], got[0]["mask_mode"], got[0]["seed"]) == (TINY_SPEC, "0.0", "0")
    assert json.loads(got[0]["method_config"])["n_masks"] == 8 and got[0]["compile_s"] != ""
    # the same command again resumes: nothing is recomputed and the CSV stays as it was
    before = (tmp_path / "results.csv").read_text()
    with monkeypatch.context() as m:
        m.setattr(evaluation.Evaluator, "measure_maps", lambda *a, **k: pytest.fail("a finished row was recomputed"))
        rc, out = _run_cli(capsys, *args)
    assert rc == 0 and (tmp_path / "results.csv").read_text() == before, out.err
    # another setting into the same folder is refused before any work (it would mix two runs)
    rc, out = _run_cli(capsys, *args, "--config.rise.n_masks=16")
    assert rc == 2 and out.err.strip() == (f"rexjax evaluate: {str(tmp_path)!r} holds a run with other settings "
                                           "(rise); resume with the same config or use another out folder")


@pytest.mark.parametrize("arg,match", [
    ("--config.methods=rise,nope", "unknown method 'nope'"),
    ("--config.rise.n_masks=0", "n_masks"),
    ("--config.convention=petsiuk", "convention"),
    ("--config.step=0", "step"),
    ("--config.model=no_such_model", "unknown model"),
    ("--config.images=/no/such", "images"),
    ("--config.max_images=0", "max_images"),
])
def test_cli_run_fails_before_loading_the_model(monkeypatch, capsys, folder, tmp_path, arg, match):
    from rexjax.studies import runner

    monkeypatch.setattr("rexjax.models.load_model", lambda *a, **k: pytest.fail("model loaded"))
    rc, out = _run_cli(capsys, f"--config.images={folder / 'images'}", f"--config.out={tmp_path}",
                       "--config.methods=rise", arg)
    err = out.err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("rexjax evaluate: ") and match in err[0], err
    assert not (tmp_path / "results.csv").exists()


def test_weights_column_is_the_file_name_not_a_machine_path():
    """Rows name the weights file, never the directory it sits in on one machine."""
    from types import SimpleNamespace as NS

    assert evaluation._weights(NS(model=NS(has_weights=True, weights_path="/home/u/w/resnet50-0676ba61.pth"))) == "resnet50-0676ba61.pth"
    assert evaluation._weights(NS(model=NS(has_weights=False, weights_path=None))) == "random-init"
    assert evaluation._weights(NS(model=NS(has_weights=True, weights_path=None))) == ""
