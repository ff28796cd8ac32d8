"""What every command checks before it loads a model, and how it reports problems.

A `UsageError` is a bad command line: the dispatcher (`rexjax.cli`) prints it as one line
`rexjax COMMAND: --flag: problem` and exits 2. Each `check_*` raises one naming its flag
and the accepted values; all are cheap (no model is loaded, nothing is allocated).
`one_line_warnings` keeps every warning of a run to one stderr line.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import stat
import sys
import tempfile
import warnings
from typing import Iterator, Optional, Sequence

from rexjax.errors import first_line

MAX_MASK_VALUE = 1e4  # |number| painted into masked pixels, in model input space (~[-3, 3])
MAX_BLUR_SIGMA = 64.0  # pixels; the kernel radius is 3 sigma
MAX_SEED = 2**32 - 1
# Peak bytes per image in one forward batch, as a multiple of the f32 input image: measured
# for efficientnet_lite0 (--batch_size 100000 needs 972 GB = 16.1 x 602 KB).
ACTIVATION_FACTOR = 16


class UsageError(ValueError):
    """A flag value (or argument) the command cannot use; printed as one line, exit 2."""

    def __init__(self, flag: str, problem: str):
        super().__init__(f"{flag}: {problem}" if flag else problem)


def check_model(name: str):
    """The ModelSpec of zoo model `name` (cheap: no weights read), or None for a
    'package.module:factory' model (a callable returning a model; imported to check it)."""
    from rexjax import models

    try:
        return models.check_model(name)
    except ValueError as e:
        raise UsageError("--model", first_line(e)) from e


MODEL_FILE_SUFFIX = ".onnx"


def is_model_file(value: str) -> bool:
    """Whether --model names a model file (a path, as opposed to a zoo name or a
    'package.module:factory'): it ends in .onnx or holds a path separator."""
    return value.endswith(MODEL_FILE_SUFFIX) or os.sep in value


def check_model_file(path: str, flag: str = "--model") -> str:
    """`path` if it is an existing regular file ending in .onnx (only stats it: a FIFO is
    never opened); a UsageError naming it otherwise."""
    from rexjax.io import display_name

    shown = display_name(path)
    if not path.endswith(MODEL_FILE_SUFFIX):
        raise UsageError(flag, f"{shown!r} is not an ONNX file (a model file must end in {MODEL_FILE_SUFFIX}); "
                               "give a PATH.onnx or a zoo name (see `rexjax models`)")
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise UsageError(flag, f"no such model file {shown!r} ({e.strerror or e})") from e
    if not stat.S_ISREG(mode):
        raise UsageError(flag, f"{shown!r} is not a regular file")
    return path


def check_floats(flag: str, values: Optional[Sequence[str]], *, nonzero: bool = False) -> Optional[tuple[float, ...]]:
    """A comma-separated list flag (absl DEFINE_list) as finite floats (non-zero if asked);
    None when the flag is unset."""
    if values is None:
        return None
    out = []
    for text in values:
        try:
            value = float(text)
        except ValueError:
            raise UsageError(flag, f"{text!r} is not a number (give comma-separated numbers, e.g. "
                                   "0.5,0.5,0.5)") from None
        if not math.isfinite(value) or (nonzero and value == 0):
            raise UsageError(flag, f"every value must be finite{' and non-zero' if nonzero else ''}, got {text}")
        out.append(value)
    if not out:
        raise UsageError(flag, "give one number per input channel, comma-separated")
    return tuple(out)


def check_weights(path: Optional[str]) -> None:
    if path is not None and not os.path.isfile(path):
        raise UsageError("--weights", f"no such file {path!r} (a torch .pth state_dict)")


def load_model(name: str, weights: Optional[str]):
    """`models.load`, with a bad, wrong-architecture or malicious weights file (any
    ValueError of the reader or converter) reported as a usage error of --weights."""
    from rexjax import models

    try:
        return models.load_model(name, weights)
    except ValueError as e:
        raise UsageError("--weights" if weights else "--model", first_line(e)) from e


def check_range(flag: str, value, lo=None, hi=None, *, allow_none: bool = False):
    """`value` if `lo <= value <= hi` (either bound optional), else a UsageError."""
    if value is None and allow_none:
        return value
    ok = value is not None and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        want = f"in [{lo}, {hi}]" if lo is not None and hi is not None else (f">= {lo}" if lo is not None else f"<= {hi}")
        raise UsageError(flag, f"must be {want}{' (or unset)' if allow_none else ''}, got {value!r}")
    return value


def check_seed(seed: int) -> int:
    return check_range("--seed", seed, 0, MAX_SEED)


def check_mask_mode(value: str, flag: str = "--mask_mode"):
    """A mask mode (see `rexjax.masking.parse_mask_mode`) whose number is at most
    MAX_MASK_VALUE in magnitude and whose blur sigma is at most MAX_BLUR_SIGMA."""
    from rexjax.masking import parse_mask_mode

    try:
        mode = parse_mask_mode(value, flag)
    except ValueError as e:
        raise UsageError("", first_line(e)) from e
    if isinstance(mode, float) and abs(mode) > MAX_MASK_VALUE:
        raise UsageError(flag, f"a number must be within +-{MAX_MASK_VALUE:g} (model input space), got {value}")
    if isinstance(mode, str) and mode.startswith("blur:") and float(mode[5:]) > MAX_BLUR_SIGMA:
        raise UsageError(flag, f"blur sigma must be in (0, {MAX_BLUR_SIGMA:g}] pixels, got {mode[5:]}")
    return mode


def available_memory() -> int:
    """Bytes the first JAX device can still use: accelerator memory limit minus use, or the
    host's available memory on CPU (/proc/meminfo MemAvailable, else free pages)."""
    import jax

    dev = jax.devices()[0]
    stats = dev.memory_stats() if dev.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:  # MemAvailable counts reclaimable page cache; free pages alone undercount
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_batch_size(batch_size: Optional[int], input_size, flag: str = "--batch_size",
                     channels: int = 3) -> Optional[int]:
    """`batch_size` if positive and its estimated forward buffers (batch x elements of
    `input_size` x channels x 4 bytes x ACTIVATION_FACTOR) fit in `available_memory()`; None (the
    default) passes. `input_size`: the spatial shape, (H, W) for images, (N,) for a signal,
    (D, H, W) for a volume."""
    if batch_size is None:
        return None
    check_range(flag, batch_size, 1)
    one = math.prod(input_size) * channels * 4 * ACTIVATION_FACTOR
    need = batch_size * one
    have = available_memory()
    if need > have:
        largest = max(1, have // one)
        raise UsageError(flag, f"{batch_size} images need about {need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB "
                               f"available; use at most {largest}")
    return batch_size


def check_out_dir(path: str, flag: str = "--out") -> str:
    """Creates the output folder if needed and checks a file can be written in it."""
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise UsageError(flag, f"cannot write to {path!r} ({e.strerror or e}); give a writable folder") from e
    return path


def is_flat(responsibility, rel: float = 0.05) -> bool:
    """True when a responsibility map f32[*S] (an image's [H, W], a signal's [N], a volume's
    [D, H, W]) barely varies: (max - min) <= rel * max|r|
    (featureless inputs: uniform, tiny, blank), where extraction needs many forward images."""
    import numpy as np

    r = np.asarray(responsibility, np.float64)
    top = float(np.abs(r).max()) if r.size else 0.0
    return top == 0.0 or not math.isfinite(top) or float(r.max() - r.min()) <= rel * top


def _first(text) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


class _FirstLineOnly(logging.Filter):
    """Cuts a log record at WARNING or above to the first line of its message (no traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            record.msg, record.args = _first(record.getMessage()), None
            record.exc_info = record.exc_text = record.stack_info = None
        return True


@contextlib.contextmanager
def one_line_warnings(prefix: str) -> Iterator[None]:
    """Inside the block each problem is one stderr line. A Python warning is printed once, as
    `PREFIX: warning: Category: first line of the message` (Python's own format adds the
    source line, and matplotlib repeats a missing-glyph warning for every draw); a log record
    at WARNING or above (absl's, JAX's) keeps its handler's format but only its message's
    first line. Which warnings show is still decided by the warning filters and --verbosity.
    Blocks nest (the innermost prefix names the image)."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = f"{prefix}: warning: {category.__name__}: {_first(message)}"
        if text not in seen:
            seen.add(text)
            print(text, file=sys.stderr, flush=True)

    handlers = [*logging.getLogger().handlers, *([logging.lastResort] if logging.lastResort else [])]
    cut = _FirstLineOnly()
    with warnings.catch_warnings():
        warnings.showwarning = show
        for handler in handlers:
            handler.addFilter(cut)
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(cut)
