"""A study run at no cost, for the tests of the runner's bookkeeping (resume, provenance):
the real runner and Evaluator on the tiny model, one Classifier for every run, and one
stand-in for the method and its metrics (`cheap_measure`: values from the image and its key,
no compilation per run) in a study with no columns of its own (`STUDY`). A run takes a
fraction of a second.

    from tests.experiments.cheap import cheap, pool, ...   # the fixtures, imported by name
"""

import random
import shutil
import types

import jax
import numpy as np
import pytest

from rexjax import evaluation
from rexjax.configs import evaluate as evaluate_config
from rexjax.studies import rowlog, runner
from tests.experiments.helpers import TINY_A
from tests.experiments.layouts import write_images

POOL = [f"im{i}" for i in range(5)] + ["a0", "z0"]  # a0 sorts before every im*, z0 after
STUDY = types.SimpleNamespace(EXTRA_COLUMNS=(), variants=runner.method_variants, analyse=lambda rows, out, config: [])


def cheap_measure(self, name, key, x, target, full_confidence, segment=None):
    """Evaluator.measure_maps at no cost: values from the prepared image and the image's key
    (so a key by position would show), a random time (a timing column)."""
    x = np.asarray(x)
    given = {"image", "target", "label", "full_confidence", *self.run_columns}  # image_rows' own
    values = {c: None for c in evaluation.COLUMNS if c not in given}
    values |= {"method": name, "area": float(x.mean()), "ins": float(jax.random.uniform(key)),
              "del": float(x.std()), "IN": None, "OUT": None, "time_s": random.random(), "compile_s": None,
              "forward_images": 1, "forward_images_area": 1, "method_config": '{"cheap": true}'}
    return evaluation.Measured(values, np.zeros(x.shape[:2]), np.zeros(x.shape[:2], bool), None)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """One PNG per POOL name, each with its own content."""
    folder = tmp_path_factory.mktemp("pool")
    write_images(folder, POOL, suffix=".png")
    return folder


@pytest.fixture(scope="module")
def tiny_classifier():
    return runner.classifier(TINY_A)


@pytest.fixture
def cheap(monkeypatch, tiny_classifier):
    """The runner with one tiny Classifier for every run and `cheap_measure`."""
    monkeypatch.setattr(runner, "load_classifiers", lambda plan: {m: tiny_classifier for m in plan.models})
    monkeypatch.setattr(evaluation.Evaluator, "measure_maps", cheap_measure)


def fill(images, pool, names, contents=None):
    """`images` := the pool images `names` (under the names in `contents` keys when given)."""
    shutil.rmtree(images, ignore_errors=True)
    images.mkdir(parents=True)
    for name in names:
        shutil.copy(pool / f"{(contents or {}).get(name, name)}.png", images / f"{name}.png")


def config_for(data, out):
    """`rexjax evaluate`'s study config: the tiny model, two methods, every image of `data/images`."""
    from rexjax.studies.evaluate import study_config

    config = evaluate_config.get_config()
    config.update(model=TINY_A, images=str(data / "images"), out=str(out), methods="rise,occlusion", warmup=False,
                  step=64)
    return study_config(config)


def run(config, **kwargs):
    """`runner.run` of STUDY, no progress bar, no report."""
    return runner.run(config, STUDY, progress=False, analyse=False, **kwargs)


def rows(out):
    """The rows of `out/results.csv` without the timing columns."""
    return [{k: v for k, v in r.items() if k not in runner.TIMING} for r in rowlog.read_rows(out / "results.csv")]


def uninterrupted(config, out):
    """The rows of a fresh run of `config` into `out`."""
    fresh = config.copy_and_resolve_references()
    fresh.out = str(out)
    run(fresh)
    return rows(out)
