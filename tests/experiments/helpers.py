"""Study configs at test size: every study on 2 tiny images and the tiny models."""

import importlib.util
from pathlib import Path

from tests.experiments import layouts

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "experiments" / "configs"
TINY_A, TINY_B = "tests.experiments.models:tiny_a", "tests.experiments.models:tiny_b"

# What each study runs at test size (on top of TINY).
STUDY_SETTINGS = {
    "rex_compare": dict(methods="rex,rise,gradcam"),
    "shape_vs_metrics": dict(methods="rise,shape"),
    "convad_robustness": dict(methods="rex", occlusions="ad,min", gammas="0.5", k_solid=4, colour_bounds="image"),
    # the pipeline with both models and ground-truth labels (ReX's own masks: extremal, convad)
    "concentration": dict(methods="rise", models=f"{TINY_A},{TINY_B}", layout="imagenet_val"),
    "extremal": dict(methods="rex,extremal"),
}


def load_config(study: str, arg: str = ""):
    spec = importlib.util.spec_from_file_location(f"study_config_{study}", CONFIGS / f"{study}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


def tiny_config(study: str, images: Path, out: Path, **overrides):
    """The study's config at test size: 2 images, tiny models, minimal method settings."""
    config = load_config(study)
    for k, v in {**STUDY_SETTINGS[study], **overrides}.items():
        config[k] = v
    config.images = str(images / "images")
    config.data.labels = str(images / "labels.txt") if config.layout == "imagenet_val" else None
    config.out = str(out)
    config.max_images = 2
    config.warmup = False
    config.step = 64
    config.rex.search.iters = 2
    config.rex.search.min_box_size = 4
    config.rex.search.discard_shallow = False
    config.rise.n_masks = 8
    config.shape.n_masks = 8
    config.extremal.n_steps = 4
    config.extremal.stride = 4
    config.models = TINY_A
    for k, v in {**STUDY_SETTINGS[study], **overrides}.items():  # again: they win
        config[k] = v
    return config


def tiny_images(folder: Path, n: int = 3) -> Path:
    """n tiny PNGs im0..; labels.txt beside them gives im<i> the class i % 3."""
    layouts.write_images(folder / "images", [f"im{i}" for i in range(n)], suffix=".png")
    (folder / "labels.txt").write_text("".join(f"im{i} {i % 3}\n" for i in range(n)))
    return folder
