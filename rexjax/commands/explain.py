"""`rexjax explain INPUT... [flags]`: ReX causal explanations of a model's decisions.

For each image (arrays, `--mode`: below) it prints one JSON line of statistics (class,
confidence, area, forward images, time, and the `npz` and `png` written) and writes
`<out>/<name>.png` (input | responsibility heatmap | explanation overlay; the PNG's Title
text is the figure's title) and `<out>/<name>.npz` (`responsibility` f32[H,W], `mask`
bool[H,W], `target`). `<name>` is the image's stem, or `stem-2`, `stem-3`, ... for a later
image one of whose files would be an earlier image's file (the same stem, or with --multiple
`p_multiple.jpg` after `p.jpg`, whose `p_multiple.png` is taken): names are chosen so that
no two images' files collide.

One image's files are one unit: they are written in a hidden staging folder inside --out
and moved into place under a lock on --out, so every file of an image comes from one run,
even with two runs on one folder at once; when a file cannot be replaced the files already
moved are put back (the previous results stay, the image is reported failed).

File names that are not valid UTF-8 are shown (JSON, messages, figure titles, output names)
with each undecodable byte as `\\xNN`: `caf<0xff>.png` is written as `caf\\xff.npz`.
Each Python warning is one stderr line naming the image; a log record at WARNING (absl,
JAX) keeps only its first line.

Every flag is checked before the model is loaded (--out is checked writable, --db opened or
created), except what needs an ONNX model's graph (the number of --means/--stds against its
channels, --binary_threshold against its outputs, --target, its spatial axes against --mode),
checked as soon as it loads: a bad value or a missing image is one line naming it, exit
status 2. One image that fails (unreadable, a directory or FIFO, a decompression bomb, an
output that cannot be written) is reported as a JSON line `{"image", "error"}` and one
stderr line, and the batch goes on; the exit status is then 1. A flat responsibility map (a
featureless image) is reported on stderr.

The ReX settings come from `--config` (default `rexjax/configs/rex.py`, the fast preset;
`--config=rexjax/configs/rex.py:paper` the paper's budget), the library's own field names:
`--config.search.iters=20`, `--config.extract.prune_grids='()'`. `--iters`, `--multiple`,
`--contrastive` and `--strategy` are short aliases of config fields. `--mask_mode` and
`--batch_size` are not ReX settings but the call's (every method takes them).

`--model` is a zoo name, a 'package.module:factory', or an ONNX file (`PATH.onnx`, compiled
to JAX): its input size, channel count (1 grey, 3 RGB, 4 RGBA: every image is converted to
it) and layout come from the graph, and images are preprocessed as the ReX tool preprocesses
ONNX models, its `[rex.onnx]` settings as flags of the same names and defaults: `x / --norm`
(default 255), then per channel `(x - mean) / std` with `--means m1,m2,..` and `--stds s1,s2,..` (one per channel;
default none). A model with one output (p = probability of class 1) needs
`--binary_threshold T`: class 1 when p >= T, and the decided side is explained. These four
flags are ONNX-only (a zoo model brings its own preprocessing; they are refused with one
line), as they are the tool's `[rex.onnx]` settings. The JSON line of an ONNX model carries
the file's `model_sha256`; an ONNX file the compiler refuses (an unsupported op) is one line.
`--onnx_runtime` runs the same checked graph's forward passes with onnxruntime on the CPU
(faster there than XLA:CPU; no `--mask_mode ad`).

`--db results.db` appends one row per explanation (per part with --multiple) to a SQLite
table `explanations` (columns in `rexjax/results_db.py`), safe with concurrent runs.

`--mode spectral|tabular|voxel` explains arrays instead of images, as the ReX tool's --mode:
a 1-D signal or a row of features from `.npy` ([N] one channel, or [N, C]; [1, N] is read as
[N, 1]), or a volume from `.npy` ([D, H, W] or [D, H, W, C]) or NIfTI `.nii`/`.nii.gz` (with
nibabel installed: `pip install nibabel`). A file is read safely (`io.read_npy`: a regular
file, its header checked before any data is read: real numbers only, no pickles, at most 2^28
elements, the file's length; values finite) and given to the model as it is (float32): the
model is a 'package.module:factory' or an ONNX file taking x[B, N, C] or x[B, D, H, W, C];
the image flags (--norm, --means, --stds, --input_size), zoo models, and spotlights/spatial
are refused with one line. `--mask_mode spectral` (each hidden run interpolated linearly
between its visible neighbours) is for --mode spectral only (the tool falls back to 0 with a
warning; here it is refused). Per array: `<name>.map.npy` (responsibility f32[N] or
f32[D, H, W]), `<name>.mask.npy` (bool, same shape), `<name>.png` (1-D: the signal, each
channel a line, the explanation shaded, over the responsibility; 3-D: three orthogonal slices
through the explanation's most responsible voxel with the explanation outlined, over the
responsibility on them), the JSON line (with `mode`, and `map_npy`, `mask_npy`, `png` for
the files), the --db row (`mode`, `map_npy`, `mask_npy`). A file whose content is refused
(wrong rank for the mode, NaN, truncated, a FIFO) fails alone, as an unreadable image does.

With `--multiple K` it also searches up to K sufficient explanations (spotlights, pairwise
Dice <= --config.permitted_overlap) and writes `<out>/<name>_multiple.png` (each contoured in its
colour) and `multiple_masks` in the .npz; `--contrastive` adds a sufficient-and-necessary
explanation (`contrastive_mask`, third panel of the composite; reported when none exists).

Example:
  rexjax explain third_party/images/ladybird.jpg --out out/demo
  rexjax explain photo.jpg --model lite0.onnx --norm 255 --means 0.498,0.498,0.498 --stds 0.502,0.502,0.502
  rexjax explain scan.png --model grey_cnn.onnx --mask_mode ad --db results.db
  rexjax explain x.png --model sigmoid.onnx --binary_threshold 0.5
  rexjax explain third_party/images/*.jpg --iters 10 --mask_mode ad --seed 3
  rexjax explain --multiple 4 third_party/images/starfish.jpg
  rexjax explain third_party/images/ladybird.jpg --config=rexjax/configs/rex.py:paper
  rexjax explain spectrum.npy --mode spectral --mask_mode spectral --model mypkg.models:dna_cnn
  rexjax explain scan.nii.gz --mode voxel --model mri.onnx --db results.db
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import threading

from absl import flags
from ml_collections import config_flags

from rexjax.commands import common
from rexjax.configs import rex as rex_configs
from rexjax.configs.describe import describe_config

FLAGS = flags.FLAGS
DEFAULT_CONFIG = rex_configs.__file__  # a plain file inside the installed package
_REX_CONFIG = config_flags.DEFINE_config_file(
    "config", DEFAULT_CONFIG,
    "ReX config file with get_config(preset) (PATH or PATH:PRESET; default: rexjax/configs/rex.py, preset fast; "
    ":paper is the paper's budget). Its fields are RexConfig's, overridable as --config.FIELD=VALUE, e.g. "
    "--config.search.iters=20 --config.extract.prune_grids='()' --config.search.responsibility=alg1. "
    "Default fields:\n" + describe_config(rex_configs.get_config()),
)
MODES = ("image", "spectral", "tabular", "voxel")
# Per array mode: the spatial rank, the shapes a file may hold, the file suffixes read.
ARRAY_MODES = {"spectral": 1, "tabular": 1, "voxel": 3}
ARRAY_SHAPES = {1: "[N] or [N, C]", 3: "[D, H, W] or [D, H, W, C]"}
MODEL_INPUTS = {1: "x[B, N, C]", 3: "x[B, D, H, W, C]"}
NIFTI = (".nii", ".nii.gz")
SUFFIXES = {"spectral": (".npy",), "tabular": (".npy",), "voxel": (".npy",) + NIFTI}
flags.DEFINE_enum(
    "mode", "image", MODES,
    "What the inputs are, as the ReX tool's --mode. image (default): image files, preprocessed for the model. "
    "spectral: a 1-D signal in a .npy file, [N] (one channel) or [N, C]; a [1, N] array (the tool's "
    "one-channel layout) is read as [N, 1]. tabular: one row of N features in a .npy file, [N] or [N, C], "
    "as spectral. voxel: a volume in a .npy file, [D, H, W] (one channel) or [D, H, W, C], or in a NIfTI "
    ".nii/.nii.gz file (needs nibabel, not installed with rexjax: pip install nibabel). Arrays are given to "
    "the model as they are (float32: no resizing, no --norm/--means/--stds), so the model is a "
    "'package.module:factory' or an ONNX file taking x[B, N, C] or x[B, D, H, W, C]; a file must be finite, "
    "real-valued, at most 2^28 elements, and of the mode's rank. Occlusion (--mask_mode): a number, min, max, "
    "mean, blur, ad as for images, and for spectral only 'spectral' (each hidden run linearly interpolated "
    "between its visible neighbours). Only the global strategy (no --multiple, --contrastive, spatial). "
    "Outputs per array: NAME.map.npy (responsibility f32[N] or f32[D, H, W]), NAME.mask.npy (the explanation, "
    "bool, same shape), NAME.png (1-D: the signal with the explanation shaded, over the responsibility; 3-D: "
    "three orthogonal slices through the explanation's most responsible voxel, the explanation outlined, "
    "over the responsibility on them) and the JSON line with a `mode` field.")
flags.DEFINE_string("model", "efficientnet_lite0", "Registered model name (see `rexjax models`), "
                    "'package.module:factory', a callable returning a model (as experiments/run.py takes), or an "
                    "ONNX file PATH.onnx (as ReX's --model): its input size, channels (1 grey, 3 RGB, 4 RGBA) and "
                    "layout are read from the graph, the image is converted to its channels, and it is "
                    "preprocessed as the tool preprocesses ONNX models (--norm, --means, --stds).")
flags.DEFINE_string("weights", None, "Optional torch state_dict (.pth) for a zoo model (an ONNX file holds its own).")
# The ReX tool's [rex.onnx] settings: for ONNX models only (a zoo model brings its own preprocessing).
ONNX_FLAGS = ("norm", "means", "stds", "binary_threshold", "onnx_runtime")
flags.DEFINE_float("norm", None, "As the ReX tool's `norm` ([rex.onnx] in its rex.toml; ONNX models only): the "
                   "image's 0..255 values are divided by NORM before --means/--stds. Default 255, the tool's.")
flags.DEFINE_list("means", None, "As the ReX tool's `means` ([rex.onnx]; ONNX models only): per-channel means "
                  "subtracted after / NORM, one per input channel of the model, comma-separated (e.g. "
                  "0.485,0.456,0.406). Default: none (0), the tool's.")
flags.DEFINE_list("stds", None, "As the ReX tool's `stds` ([rex.onnx]; ONNX models only): per-channel standard "
                  "deviations divided by after the means, one per input channel (e.g. 0.229,0.224,0.225). "
                  "Default: none (1), the tool's.")
flags.DEFINE_float("binary_threshold", None, "As the ReX tool's `binary_threshold` ([rex.onnx]; ONNX models only), "
                   "T in (0, 1), required for a model with ONE output, read as p = the probability of class 1 (a "
                   "sigmoid): the model decides class 1 when p >= T, else 0, and the decided side is explained by "
                   "default (--target 0 or 1 picks one). Refused for a model with more outputs.")
flags.DEFINE_bool("onnx_runtime", None, "ONNX models only: run the file's forward passes with onnxruntime on the "
                  "CPU (as the ReX tool does) instead of the graph compiled to JAX (the default). The same checked "
                  "graph, preprocessing and outputs; on a CPU onnxruntime's kernels push 2.5x the images per second "
                  "of XLA's for EfficientNet-Lite0; the compiled graph runs on GPUs and has layers (ConvAD). Needs "
                  "onnxruntime (pip install 'rexjax[onnxruntime]'); --mask_mode ad needs the compiled graph and is "
                  "refused with it.")
flags.DEFINE_string("db", None, "SQLite file to append one row per explanation to (as the ReX tool's --database, in "
                    "a table `explanations` of our own columns: image and model with their SHA-256, target, "
                    "confidences, area, sufficient, forward images, times, the config as JSON, seed, rexjax version "
                    "and commit, the --mode, and the files written (.npz/.png, or .map.npy/.mask.npy/.png for "
                    "arrays), relative to the file's folder; see "
                    "rexjax/results_db.py). Created if missing; safe for concurrent runs; refused (untouched) if it "
                    "is another kind of file.")
flags.DEFINE_integer("target", None, "Class to explain (default: the model's top-1 class).", lower_bound=0)
flags.DEFINE_integer("seed", 0, "PRNG seed in [0, 2^32 - 1]; an image's key is rexjax.keys.for_image(seed, its file "
                     "name), the same key `rexjax evaluate` and experiments/run.py give it.")
flags.DEFINE_string(
    "mask_mode", "0",
    "What masked pixels show: a number (|x| <= 1e4), min, max, mean, blur, blur:SIGMA (SIGMA <= 64), 'ad' "
    "(Activation-Deactivation), or with --mode spectral 'spectral' (each hidden run linearly interpolated "
    "between the nearest visible elements; refused for other modes, where the tool falls back to 0).",
)
flags.DEFINE_integer("batch_size", None, "Images per model call (default 8 on CPU, 128 on GPU); refused if it "
                     "would not fit in memory.", lower_bound=1)
# Short aliases of config fields (each only sets the field it names).
ALIASES = {"iters": "search.iters", "multiple": "multiple", "contrastive": "contrastive", "strategy": "strategy"}
flags.DEFINE_integer("iters", None, "Alias of --config.search.iters (ReX iterations; default: the config's, 6).",
                     lower_bound=1)
flags.DEFINE_integer("multiple", None, "Alias of --config.multiple: search up to this many sufficient explanations "
                     "(0: off).", lower_bound=0)
flags.DEFINE_bool("contrastive", None, "Alias of --config.contrastive: also find a sufficient and necessary "
                  "explanation.")
flags.DEFINE_enum("strategy", None, ["global", "spatial"], "Alias of --config.strategy: global prefix search or "
                  "spatial circles.")
flags.DEFINE_integer("input_size", None, "Feed the model S x S images instead of its own size (e.g. a ViT at 384, "
                     "or a small size for a quick look); ViTs need whole patches and resample their position "
                     "embeddings. Refused with the model's reason when its layers cannot take the size.", lower_bound=1)
flags.DEFINE_string("out", "out/explain", "Output directory for PNG and .npz files.")
flags.DEFINE_bool("progress", True, "Show progress bars.")

# The JSON field and the file name (after the input's name) of each file an image, or an
# array (--mode spectral, tabular, voxel), can produce; the fields are results_db.FILES.
OUTPUTS = {"npz": ".npz", "png": ".png", "composite_png": "_multiple.png"}
ARRAY_OUTPUTS = {"map_npy": ".map.npy", "mask_npy": ".mask.npy", "png": ".png"}


def _outputs() -> dict:
    return OUTPUTS if FLAGS.mode == "image" else ARRAY_OUTPUTS


def _config():
    """The RexConfig of --config and the aliases (UsageError naming the field it refuses)."""
    from rexjax.causal import RexConfig

    fields = _REX_CONFIG.value.to_dict()
    for alias, path in ALIASES.items():
        value = getattr(FLAGS, alias)
        if value is not None:
            if alias == "multiple":
                value = value or None
            part, _, name = path.rpartition(".")
            (fields[part] if part else fields)[name] = value
    try:
        return RexConfig.from_dict(fields)
    except ValueError as err:
        raise common.UsageError("--config", common.first_line(err)) from err


def _check_model_flags():
    """--model, --weights and the ONNX-only flags; returns the zoo ModelSpec (None for an ONNX
    file or a factory)."""
    if common.is_model_file(FLAGS.model):
        common.check_model_file(FLAGS.model)
        if FLAGS.weights is not None:
            raise common.UsageError("--weights", "an ONNX model file holds its own weights; --weights is for zoo "
                                                 "models")
        spec = None
    else:
        given = [f"--{name}" for name in ONNX_FLAGS if getattr(FLAGS, name) is not None]
        if given:
            raise common.UsageError(given[0], f"applies to ONNX models (--model PATH.onnx), as the tool's; "
                                              f"{FLAGS.model!r} brings its own preprocessing (see `rexjax models`)")
        spec = common.check_model(FLAGS.model)
        common.check_weights(FLAGS.weights)
    if FLAGS.norm is not None and not (math.isfinite(FLAGS.norm) and FLAGS.norm > 0):
        raise common.UsageError("--norm", f"must be a finite number > 0, got {FLAGS.norm!r}")
    common.check_floats("--means", FLAGS.means)
    common.check_floats("--stds", FLAGS.stds, nonzero=True)
    if FLAGS.binary_threshold is not None and not 0 < FLAGS.binary_threshold < 1:
        raise common.UsageError("--binary_threshold", f"must be in (0, 1), got {FLAGS.binary_threshold!r}")
    if FLAGS.onnx_runtime:
        if common.check_mask_mode(FLAGS.mask_mode) == "ad":
            raise common.UsageError("--onnx_runtime", "--mask_mode ad needs the model's layers, which only the compiled "
                                                      "graph has; drop --onnx_runtime or give a fill value")
        if importlib.util.find_spec("onnxruntime") is None:
            raise common.UsageError("--onnx_runtime", "onnxruntime is not installed (pip install "
                                                      "'rexjax[onnxruntime]'); without the flag the compiled graph runs")
    return spec


def _open_db():
    """The --db results database (opened or created now, with its folder, so a bad file fails
    before the model loads), or None."""
    if FLAGS.db is None:
        return None
    from rexjax.results_db import ResultsDB

    try:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.db)), exist_ok=True)
        return ResultsDB(FLAGS.db)
    except OSError as err:
        raise common.UsageError("--db", f"cannot create the folder of {_label(FLAGS.db)!r} ({err.strerror or err})"
                                ) from err
    except ValueError as err:
        raise common.UsageError("--db", common.first_line(err)) from err


def _check_mode(images: list[str], spec) -> None:
    """--mode against the inputs' names, the model, the mask mode and the image-only flags."""
    mode = FLAGS.mode
    if common.check_mask_mode(FLAGS.mask_mode) == "spectral" and mode != "spectral":
        raise common.UsageError("--mask_mode", f"'spectral' interpolates along 1-D signals: it is for --mode spectral, "
                                               f"not {mode} (the tool falls back to 0; give a number, min, mean or "
                                               "blur)")
    if mode == "image":
        arrays = [p for p in images if p.lower().endswith(SUFFIXES["voxel"] + (".npz", ".mat"))]
        if arrays:
            raise common.UsageError("", f"{_label(arrays[0])} is an array file, not an image: give --mode spectral, "
                                        "tabular or voxel (see --help)")
        return
    if spec is not None:
        raise common.UsageError("--model", f"{FLAGS.model!r} is a zoo image model; --mode {mode} needs a model taking "
                                           f"{MODEL_INPUTS[ARRAY_MODES[mode]]}: a 'package.module:factory' or an ONNX "
                                           "file")
    given = [f"--{name}" for name in ("norm", "means", "stds", "input_size") if getattr(FLAGS, name) is not None]
    if given:
        raise common.UsageError(given[0], f"is for images; --mode {mode} gives the array to the model as it is")
    wrong = [p for p in images if not p.lower().endswith(SUFFIXES[mode])]
    if wrong:
        raise common.UsageError("", f"--mode {mode} reads {' or '.join(SUFFIXES[mode])} files; "
                                    f"{_label(wrong[0])} is not one")
    nifti = [p for p in images if p.lower().endswith(NIFTI)]
    if nifti and importlib.util.find_spec("nibabel") is None:
        raise common.UsageError("", f"{_label(nifti[0])}: reading NIfTI files needs nibabel, which is not installed "
                                    "(pip install nibabel)")


def _check_flags(images: list[str]):
    """Every check that needs no model; returns (RexConfig, ModelSpec or None, ResultsDB or None)."""
    if not images:
        raise common.UsageError("", "give at least one image (or --mode array) path (see --help)")
    missing = [p for p in images if not os.path.exists(p)]  # a directory or FIFO fails alone, later
    if missing:
        raise common.UsageError("", f"no such file: {', '.join(map(_label, missing))}")
    spec = _check_model_flags()
    _check_mode(images, spec)
    common.check_seed(FLAGS.seed)
    if spec is not None:  # a zoo model: its class count and input size are known without loading it
        common.check_range("--target", FLAGS.target, 0, spec.num_classes - 1, allow_none=True)
        common.check_batch_size(FLAGS.batch_size, (FLAGS.input_size,) * 2 if FLAGS.input_size else spec.input_size)
    config = _config()
    if FLAGS.mode != "image" and (config.strategy == "spatial" or config.wants_spotlights):
        raise common.UsageError("--config", f"--mode {FLAGS.mode}: strategy 'spatial', --multiple and --contrastive "
                                            "grow circles on images only; use the global strategy without them")
    common.check_out_dir(FLAGS.out)
    return config, spec, _open_db()


def _onnx_model(model):
    """An ONNX model with the tool's preprocessing of --norm/--means/--stds (x / norm, then per
    channel (x - mean) / std, in the model's channel mode) and the Classifier options of
    --binary_threshold; the checks that need its graph (channel and output counts, --target,
    --batch_size). Returns (model, Classifier options). With an array --mode the model is
    returned as it is (arrays are not preprocessed; --batch_size is checked per array)."""
    from dataclasses import replace

    from rexjax.models.preprocess import Preprocess

    channels, k, name = model.channels, model.num_classes, _label(FLAGS.model)
    means, stds = common.check_floats("--means", FLAGS.means), common.check_floats("--stds", FLAGS.stds, nonzero=True)
    for flag, values in (("--means", means), ("--stds", stds)):
        if values is not None and len(values) != channels:
            raise common.UsageError(flag, f"{len(values)} values for {name}, whose input has {channels} channel(s); "
                                          "give one per channel")
    if FLAGS.binary_threshold is not None and k != 1:
        raise common.UsageError("--binary_threshold", f"is for a model with one output; {name} has {k}")
    if FLAGS.binary_threshold is None and k == 1:
        raise common.UsageError("--binary_threshold", f"{name} has one output (a binary classifier): give "
                                                      "--binary_threshold T in (0, 1), e.g. 0.5")
    common.check_range("--target", FLAGS.target, 0, max(k, 2) - 1, allow_none=True)
    options = {"binary_threshold": FLAGS.binary_threshold, "outputs": "probs", "labels": ("0", "1")} if k == 1 else {}
    if FLAGS.mode != "image":
        axes = len(model.input_size)  # the graph's spatial axes
        if axes != ARRAY_MODES[FLAGS.mode]:
            raise common.UsageError("--model", f"{name} takes inputs with {axes} spatial axes; --mode {FLAGS.mode} "
                                               f"needs a model taking {MODEL_INPUTS[ARRAY_MODES[FLAGS.mode]]}")
        return model, options
    common.check_batch_size(FLAGS.batch_size, (FLAGS.input_size,) * 2 if FLAGS.input_size else model.input_size,
                            channels=channels)
    norm = 255.0 if FLAGS.norm is None else FLAGS.norm
    pre = Preprocess(tuple(model.input_size), 0.0 if means is None else means, 1.0 if stds is None else stds,
                     channels=channels, norm=norm)
    return replace(model, preprocessing=pre), options


def _label(path: str) -> str:
    """The image's name in stderr lines: `display_name` with control characters (a newline in
    a file name) escaped, so that each message stays one line."""
    from rexjax.io import display_name

    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in display_name(path))


class _DbRecord:
    """Appends an input's explanations to the --db database, after its files are in place."""

    def __init__(self, db, model_sha256, executor: str):
        self.db, self.model_sha256, self.executor = db, model_sha256, executor

    def __call__(self, ex, path: str, finals: dict) -> None:
        from rexjax.io import file_sha256
        from rexjax.results_db import explanation_rows

        files = {field: self.db.relative(final) for field, final in finals.items()}
        for row in explanation_rows(ex, image=path, image_sha256=file_sha256(path), model=FLAGS.model,
                                    model_sha256=self.model_sha256, seed=FLAGS.seed, files=files,
                                    executor=self.executor, mode=FLAGS.mode):
            self.db.append(row)


def _read_array(path: str):
    """The array file `path` (--mode spectral, tabular, voxel) as the model's input f32[*S, C]:
    `io.read_npy` / `io.read_nifti` (checked before reading: a regular file, real numbers,
    bounded size; finite), a missing channel axis added, a [1, N] signal read as [N, 1]; the
    mode's rank and --batch_size checked. ValueError naming the file otherwise."""
    from rexjax.io import read_nifti, read_npy

    mode = FLAGS.mode
    a = read_nifti(path) if path.lower().endswith(NIFTI) else read_npy(path)
    rank = ARRAY_MODES[mode]
    if rank == 1 and a.ndim == 2 and a.shape[0] == 1 < a.shape[1]:
        a = a.T  # the tool's one-channel layout [1, N]: one element of N channels cannot be explained
    if a.ndim == rank:
        a = a[..., None]
    if a.ndim != rank + 1:
        raise ValueError(f"{_label(path)!r} holds an array of shape {a.shape}; --mode {mode} takes "
                         f"{ARRAY_SHAPES[rank]}")
    common.check_batch_size(FLAGS.batch_size, a.shape[:-1], channels=a.shape[-1])
    return a


def _write_image(out, name: str, model, x, ex, config) -> None:
    """An image's files (OUTPUTS) into `out` (`io.AtomicOutputs`): the .npz, the figure and,
    with spotlights, the composite."""
    import numpy as np

    from rexjax.viz.explanation import display_image, save_explanation_figure

    arrays = {"responsibility": ex.responsibility, "mask": ex.mask, "target": ex.target}
    if ex.multiple is not None:
        arrays["multiple_masks"] = np.stack([p.mask for p in ex.multiple.parts] + [np.zeros_like(ex.mask)])[:-1]
    if ex.contrastive is not None:
        arrays["contrastive_mask"] = ex.contrastive.mask
    title = f"{name}: {ex.target_label} ({ex.target}), p={ex.full_confidence:.3f}"
    with open(out.path(name + OUTPUTS["npz"]), "wb") as f:
        np.savez_compressed(f, **arrays)
    save_explanation_figure(out.path(name + OUTPUTS["png"]), display_image(model, x), ex.responsibility, ex.mask,
                            title)
    if ex.multiple is not None:
        from rexjax.viz.multiple import save_multiple_figure

        contrastive = ex.contrastive.mask if ex.contrastive is not None and ex.contrastive.found else None
        save_multiple_figure(out.path(name + OUTPUTS["composite_png"]), display_image(model, x),
                             ex.responsibility, ex.multiple.parts if config.multiple else (), title, contrastive)


def _write_array(out, name: str, model, x, ex, config) -> None:
    """An array's files (ARRAY_OUTPUTS) into `out`: the responsibility f32[*S] and the mask
    bool[*S] as .npy, and the figure (`viz.signal` for 1-D, `viz.volume` for 3-D)."""
    import numpy as np

    from rexjax.viz.signal import save_signal_figure
    from rexjax.viz.volume import save_volume_figure

    arrays = {"map_npy": np.asarray(ex.responsibility, np.float32), "mask_npy": np.asarray(ex.mask, bool)}
    for field, array in arrays.items():
        with open(out.path(name + ARRAY_OUTPUTS[field]), "wb") as f:
            np.save(f, array, allow_pickle=False)
    label = f"class {ex.target}" + (f" ({ex.target_label})" if ex.target_label is not None else "")
    title = f"{name}: {label}, p={ex.full_confidence:.3f}, area {100 * ex.area:.1f}%"
    png = out.path(name + ARRAY_OUTPUTS["png"])
    if x.ndim == 2:
        save_signal_figure(png, x, ex.responsibility, ex.mask, title,
                           element="feature" if FLAGS.mode == "tabular" else "element")
    else:
        save_volume_figure(png, x, ex.responsibility, ex.mask, title)


def _explain_one(model, explainer, path: str, name: str, identity: dict, record=None) -> dict:
    """Explains one input (an image, or an array with --mode), writes its files as one unit
    (`io.AtomicOutputs`) and its rows with `record` (--db); returns its JSON record. `name` is
    the input's output name (`io.unique_names`); `identity` the model's fields of the record."""
    from rexjax import keys
    from rexjax.io import AtomicOutputs, check_image_file, display_name

    if FLAGS.mode == "image":
        check_image_file(path)  # a directory or FIFO: refused before any model reader opens it
        x = model.preprocess(path)
    else:
        x = _read_array(path)
    key = keys.for_image(FLAGS.seed, path)
    ex = _in_worker(lambda: explainer(x, target=FLAGS.target, key=key, progress=FLAGS.progress))
    with AtomicOutputs(FLAGS.out) as out:
        (_write_image if FLAGS.mode == "image" else _write_array)(out, name, model, x, ex, explainer.config)
    outputs = _outputs()
    written = {field: display_name(final) for field, final in zip(outputs, out.finals)}
    if record is not None:
        record(ex, path, dict(zip(outputs, out.finals)))
    if ex.contrastive is not None and not ex.contrastive.found:
        print(f"rexjax explain: {_label(path)}: no contrastive explanation: {ex.contrastive.message}", file=sys.stderr)
    if common.is_flat(ex.responsibility):
        print(f"rexjax explain: {_label(path)}: warning: flat responsibility map (a featureless input?); "
              f"the explanation took {ex.forward_images} forward images", file=sys.stderr)
    mode = {} if FLAGS.mode == "image" else {"mode": FLAGS.mode}
    return {"image": display_name(path), **mode, **identity, **ex.stats(), **written}


def _in_worker(fn):
    """`fn()` on a daemon thread while the main thread waits in short joins, so Ctrl-C
    is handled at once even while XLA runs a long jitted loop (the extraction): one line,
    exit status 130, and the abandoned computation dies with the process. Exceptions of `fn` are re-raised here.
    Files are written on the main thread, where AtomicOutputs defers Ctrl-C."""
    box: dict = {}

    def work():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the main thread
            box["error"] = e

    worker = threading.Thread(target=work, daemon=True, name="rexjax-explain")
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:  # XLA still runs on the worker: interpreter shutdown would abort
        print("\nrexjax explain: interrupted", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)  # nothing is half-written: files are only written after `fn` returns
    if "error" in box:
        raise box["error"]
    return box["value"]


def main(argv) -> int:
    images = argv[1:]
    config, _, db = _check_flags(images)
    try:
        with common.one_line_warnings("rexjax explain"):
            return _explain_all(images, config, db)
    finally:
        if db is not None:
            db.close()


def _model_sha256(model) -> str | None:
    """The SHA-256 of the file the model came from: the ONNX file, or a zoo model's weights."""
    from rexjax.io import file_sha256

    weights = getattr(model, "weights_path", None)
    return getattr(model, "sha256", None) or (file_sha256(weights) if weights else None)


def _explain_all(images: list[str], config, db) -> int:
    """Loads the model and explains each input; 1 if any input failed, else 0."""
    from tqdm.auto import tqdm

    from rexjax.causal import Explainer
    from rexjax.classifier import Classifier
    from rexjax.io import display_name, unique_names

    model = common.load_model(FLAGS.model, FLAGS.weights)
    options = {}
    if common.is_model_file(FLAGS.model):
        model, options = _onnx_model(model)
    if FLAGS.input_size:
        try:
            model = model.at_size(FLAGS.input_size)
        except ValueError as err:
            raise common.UsageError("--input_size", common.first_line(err)) from err
    if FLAGS.onnx_runtime:
        from rexjax.models.onnx.runtime import under_onnxruntime

        model = under_onnxruntime(model)
    explainer = Explainer(Classifier.of(model, **options) if options else model, config, mask_mode=FLAGS.mask_mode,
                          batch_size=FLAGS.batch_size)
    executor = getattr(model, "executor", "xla")  # ONNX models name theirs; zoo models and JAX callables run on XLA
    identity = {"model": FLAGS.model, **({"model_sha256": model.sha256, "executor": executor}
                                         if common.is_model_file(FLAGS.model) else {})}
    record = None if db is None else _DbRecord(db, _model_sha256(model), executor)
    suffixes = list(_outputs().values())
    if not config.wants_spotlights:
        suffixes = [suffix for suffix in suffixes if suffix != OUTPUTS["composite_png"]]
    stems = [p[:-3] if p.lower().endswith(".nii.gz") else p for p in images]  # scan.nii.gz -> scan
    names = unique_names(stems, outputs=lambda name: [name + suffix for suffix in suffixes])
    failed = 0
    for path, name in tqdm(list(zip(images, names)), desc="images", disable=not FLAGS.progress or len(images) == 1):
        try:
            with common.one_line_warnings(f"rexjax explain: {_label(path)}"):
                line = _explain_one(model, explainer, path, name, identity, record)
        except Exception as err:  # one bad input never stops the batch (Ctrl-C does)
            failed += 1
            message = display_name(f"{type(err).__name__}: {common.first_line(err)}")
            print(json.dumps({"image": display_name(path), "error": message}), flush=True)
            print(f"rexjax explain: {_label(path)}: {message}", file=sys.stderr, flush=True)
            continue
        print(json.dumps(line), flush=True)
    if failed:
        print(f"rexjax explain: {failed} of {len(images)} {'images' if FLAGS.mode == 'image' else 'inputs'} failed",
              file=sys.stderr)
    return 1 if failed else 0
