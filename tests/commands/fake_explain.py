"""`rexjax explain` end to end with the model and the explainer replaced by stand-ins, so a
run takes seconds (no model, no compile) while everything the command does with files is
real: image checks and reading (`io.open_image`), keys, names, the .npz and the figures, the
atomic output groups and the lock, messages and the exit status.

    python -m tests.commands.fake_explain OPTIONS_JSON EXPLAIN_ARGS...

OPTIONS_JSON (every key optional):
    run          int: this run's marker, the explanation's target and label (`run<N>`), so
                 every file of an image says which run wrote it (npz `target`, PNG Title)
    pause_npz    [before, after] seconds: a move (os.replace) onto a `.npz` file, the first
                 file of an image's group, sleeps this long before and after, so that two runs'
                 moves of one image would nest (one run's whole group inside the other's)
    immutable    a file path that behaves as `chattr +i` makes it: renaming, replacing,
                 linking or removing it raises PermissionError (EPERM), as it does for root
    barrier      [own file, other files...]: before the k-th explanation returns, touch
                 `<own file>.<k>` and wait (up to 120 s) for the others' `.<k>`, so that
                 concurrent runs write each image at the same moment
    warn         emit a two-line Python warning and a two-line log record at WARNING (logging
                 and absl) during each explanation
"""

import errno
import json
import logging
import os
import sys
import time
import types

import numpy as np


def immutable(path: str, setattr=setattr):
    """os functions patched (with `setattr`: a test passes monkeypatch.setattr) so that `path`
    cannot be renamed, replaced, linked or removed."""
    target = os.path.realpath(path)

    def guard(fn):
        def guarded(*args, **kwargs):
            if any(isinstance(a, (str, os.PathLike)) and os.path.realpath(a) == target for a in args[:2]):
                raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), os.fspath(args[0]))
            return fn(*args, **kwargs)

        return guarded

    for name in ("rename", "replace", "link", "remove", "unlink"):
        setattr(os, name, guard(getattr(os, name)))


def _pause_npz(before: float, after: float):
    real = os.replace

    def replace(src, dst, **kwargs):
        pause = os.fspath(dst).endswith(".npz")
        time.sleep(before if pause else 0)
        real(src, dst, **kwargs)
        time.sleep(after if pause else 0)

    os.replace = replace


def _barrier(own: str, others: list) -> None:
    open(own, "w").close()
    deadline = time.time() + 120
    while not all(os.path.exists(p) for p in others):
        if time.time() > deadline:
            raise RuntimeError(f"barrier: the other runs never reached {own}: {others}")
        time.sleep(0.01)


class FakeModel:
    """A careless 'package.module:factory' model: it reads the file with a plain `open` (which
    would wait forever on a FIFO), then as the zoo models do (`io.open_image`), in [0, 1]."""

    def preprocess(self, path):
        from rexjax.io import open_image

        with open(path, "rb") as f:
            f.read(1)
        return np.asarray(open_image(path), np.float32) / 255.0


class FakeExplainer:
    """An explanation computed from the image: responsibility = its grey level plus the run's
    marker, the brighter half as the mask, the run's marker as target and label."""

    def __init__(self, options: dict, config):
        self.options, self.config, self.calls = options, config, 0

    def __call__(self, x, target=None, key=None, progress=False):
        from rexjax.types import ExplanationPart

        run = int(self.options.get("run", 1))
        self.calls += 1
        if "barrier" in self.options:
            own, *others = self.options["barrier"]
            _barrier(f"{own}.{self.calls}", [f"{other}.{self.calls}" for other in others])
        if self.options.get("warn"):
            import warnings

            from absl import logging as absl_logging

            warnings.warn("first line of a warning\nsecond line of a warning")
            logging.getLogger("jax").warning("first line of a log record\nsecond line of a log record")
            absl_logging.warning("first line of an absl record\nsecond line of an absl record")
        grey = x.mean(-1)
        responsibility = (grey + np.linspace(0, 1, grey.size).reshape(grey.shape) + run).astype(np.float32)
        mask = responsibility > np.median(responsibility)
        multiple = None
        if self.config.wants_spotlights:
            part = ExplanationPart(mask, float(mask.mean()), 0.5, True, "global", 1, None, None)
            multiple = types.SimpleNamespace(parts=[part])
        stats = {"target": run, "label": f"run{run}"}
        return types.SimpleNamespace(responsibility=responsibility, mask=mask, target=run, target_label=f"run{run}",
                                     full_confidence=0.5, multiple=multiple, contrastive=None, forward_images=1,
                                     stats=lambda: stats)


def main() -> None:
    options = json.loads(sys.argv[1])
    if "immutable" in options:
        immutable(options["immutable"])
    if "pause_npz" in options:
        _pause_npz(*options["pause_npz"])
    import rexjax.causal
    from rexjax import cli
    from rexjax.commands import common

    common.load_model = lambda name, weights: FakeModel()
    rexjax.causal.Explainer = lambda model, config, **call: FakeExplainer(options, config)
    cli.run(["rexjax", "explain", *sys.argv[2:]])


if __name__ == "__main__":
    main()
