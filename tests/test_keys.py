"""The one key scheme (`rexjax.keys`).

The acceptance property: one (image, seed, config) gives bitwise-equal ReX maps through all
five entry points - `rexjax explain` (CLI), `rexjax.explain`, `methods.make("rex")`,
`rexjax evaluate` and `experiments/run.py` - because every one of them keys the image by
identity, `keys.for_image(seed, file name)`. Plus the scheme's own properties: identity, not
position; named streams never collide with the index streams ReX uses.
"""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

import rexjax
from rexjax import keys, methods
from rexjax.causal.config import RexConfig
from rexjax.classifier import Classifier
from rexjax.report import maps
from tests.helpers.tiny import TinyModel

REPO = Path(__file__).resolve().parents[1]
TINY = "tests.helpers.tiny:TinyModel"
SEED = 3
ENV = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}


def key_bits(key) -> list:
    return np.asarray(jax.random.key_data(key)).tolist()


def test_image_key_is_by_identity_not_position_or_folder():
    """Catches keying by position (adding an image would shift the others) or by the whole
    path (the CLI and a folder run would disagree)."""
    assert key_bits(keys.for_image(SEED, "a/b/cat.png")) == key_bits(keys.for_image(SEED, "cat.png"))
    assert key_bits(keys.for_image(SEED, Path("x") / "cat.png")) == key_bits(keys.for_image(SEED, "cat.png"))
    assert key_bits(keys.for_image(SEED, "cat.png")) != key_bits(keys.for_image(SEED, "dog.png"))
    assert key_bits(keys.for_image(SEED, "cat.png")) != key_bits(keys.for_image(SEED + 1, "cat.png"))
    assert key_bits(keys.for_image(SEED, "cat.png")) != key_bits(keys.root(SEED))
    with pytest.raises(ValueError, match="image_id"):
        keys.for_image(SEED, "")


def test_named_streams_never_equal_index_streams():
    """Catches the old study-context key fold_in(key, 1), which equalled ReX's first
    iteration key: a named stream is not any small index stream of the same key."""
    image = keys.for_image(SEED, "cat.png")
    context = key_bits(keys.stream(image, "study_context"))
    used = {str(key_bits(keys.iteration(image, p))) for p in range(0, 64)} | {str(key_bits(keys.spotlight(image)))}
    assert str(context) not in used
    assert all(v >= 2 ** 31 for v in keys.STREAM_IDS.values())
    with pytest.raises(ValueError, match="stream"):
        keys.stream(image, "no_such_stream")


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys") / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("b_other.png", "cat.png"):  # a second image: evaluate/run key by name, not position
        Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).save(folder / name)
    return folder


def run(cmd, cwd=REPO):
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def test_five_entry_points_give_one_map(image_dir, tmp_path):
    """Catches any entry point that keys an image differently (position, raw seed, another
    fold), resolves another default config, or paints another mask value: the responsibility
    map of cat.png at seed 3 with the default config is bitwise one array everywhere."""
    path = image_dir / "cat.png"
    clf = Classifier.of(TinyModel())
    x = clf.prepare(str(path))
    key = keys.for_image(SEED, "cat.png")

    api_map = rexjax.explain(clf, x, key=key).responsibility
    method_map = methods.make("rex")(clf, x, key=key).map
    assert np.asarray(api_map).any(), "a flat map would make the comparison vacuous"
    np.testing.assert_array_equal(method_map, api_map)
    other = rexjax.explain(clf, x, key=keys.for_image(SEED + 1, "cat.png")).responsibility
    assert not np.array_equal(other, api_map), "the seed must matter, or this test proves nothing"

    run([sys.executable, "-m", "rexjax.cli", "explain", str(path), "--model", TINY, "--seed", str(SEED),
         "--out", str(tmp_path / "cli"), "--noprogress"])
    with np.load(tmp_path / "cli" / "cat.npz") as npz:
        np.testing.assert_array_equal(npz["responsibility"], api_map)

    common = [f"--config.images={image_dir}", "--config.methods=rex", f"--config.seed={SEED}",
              "--config.save_maps=True", "--config.warmup=False"]
    run([sys.executable, "-m", "rexjax.cli", "evaluate", f"--config.model={TINY}",
         f"--config.out={tmp_path / 'evaluate'}", *common])
    np.testing.assert_array_equal(np.load(maps.array_path(tmp_path / "evaluate", TINY, "rex", "cat.png")), api_map)

    study_config = tmp_path / "default_rex_compare.py"  # the study with the library's default ReX config
    study_config.write_text("from rexjax.studies import configs\n\n\ndef get_config():\n"
                            "    return configs.base('rex_compare')\n")
    run([sys.executable, str(REPO / "experiments" / "run.py"), f"--config={study_config}", f"--config.models={TINY}",
         f"--config.out={tmp_path / 'run'}", *common])
    np.testing.assert_array_equal(np.load(maps.array_path(tmp_path / "run", TINY, "rex", "cat.png")), api_map)


def test_default_configs_agree():
    """Catches a hand copy of ReX's defaults drifting: `rexjax evaluate`'s and the studies'
    default ReX config is RexConfig's own default, the one `rexjax explain` runs."""
    from rexjax.configs import evaluate, rex
    from rexjax.studies import configs as study_configs

    assert RexConfig.from_dict(evaluate.get_config().rex) == RexConfig()
    assert RexConfig.from_dict(rex.get_config()) == RexConfig()
    assert RexConfig.from_dict(rex.get_config("paper")) == RexConfig.from_dict(rexjax.causal.PAPER_BUDGET)
    assert RexConfig.from_dict(study_configs.base("x").rex) == RexConfig()
