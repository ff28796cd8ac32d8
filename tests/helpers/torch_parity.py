"""Full-size parity with a torch original (for the torch-based tests, which skip without
torch): the torch model's logits on random inputs, then the same weights saved as a .pth,
loaded through `rexjax.models.load` and compared."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import jax
import numpy as np

import rexjax.models as M


def torch_logits(model, sizes: Sequence[tuple[int, int]], seed: int = 2) -> tuple[list, list[np.ndarray]]:
    """(xs, refs): one standard-normal NCHW input f32[1, 3, h, w] per (h, w) in `sizes`
    (a torch generator seeded `seed`) and the torch `model`'s logits f32[1, K] on each."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn((1, 3, *hw), generator=gen) for hw in sizes]
    with torch.no_grad():
        refs = [model(x).numpy() for x in xs]
    return xs, refs


def assert_loaded_model_matches(name: str, weights: Path, xs: Sequence, refs: Sequence[np.ndarray], atol: float = 1e-4) -> None:
    """`rexjax.models.load(name, weights=weights)` gives the torch logits `refs` on the NCHW
    torch inputs `xs` within `atol` (jit, highest matmul precision); a reference whose
    logits are all below 0.1 in size is refused (the comparison would say nothing)."""
    model = M.load(name, weights=weights, use_cache=False)
    assert model.has_weights
    for x, ref in zip(xs, refs, strict=True):
        with jax.default_matmul_precision("highest"):
            got = np.asarray(jax.jit(model.apply_fn)(model.variables, x.numpy().transpose(0, 2, 3, 1)))
        diff = float(np.abs(got - ref).max())
        print(f"{name} {tuple(x.shape[2:])}: max |logit diff| {diff:.3g}, max |logit| {np.abs(ref).max():.3g}")
        assert np.abs(ref).max() > 0.1  # not a vacuous comparison
        assert diff <= atol
