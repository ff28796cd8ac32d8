"""ReX configuration: option vocabularies and the frozen config records.

`RexConfig` holds everything ReX's Method needs (search, extraction, masking, and which
explanations to build: strategy / multiple / contrastive), with the spatial circle schedule
(`SpatialConfig`) and the spotlight search (`SpotlightConfig`) nested whole. Engines take
the config whole; nothing explodes it into keyword arguments.

Defaults: the fast budget chosen in issue 13 on the bench-compare evidence (BUILD_NOTES.md):
6 iterations of a narrow descent (max_active 1, tree_depth 7), the tool's 1/n responsibility
rule, a geometric prefix grid (prefix_growth 0.05) and a pruned extraction (prune_grids 4, 8,
16). It asked about 3.5x fewer forward images than rex-xai 0.4.1 at its defaults for smaller
explanations and level insertion on the vendored images, and meets the hidden-patch oracle
bound (issue 11 item 18). `PAPER_BUDGET` is the paper's budget (20 iterations, the full
descent, Alg. 1's rule, every prefix, no pruning): rexjax's defaults before issue 13.
Either way rexjax fixes the tool's bugs and refines held boxes (refine_static, Sec. 5.2).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import numpy as np

from rexjax.batching import resolve_batch_size
from rexjax.masking import parse_mask_mode

QUEUE_STYLES = ("area", "all")
DISTRIBUTIONS = ("uniform", "betabinom")
RESPONSIBILITY_RULES = ("sufficient", "alg1", "rex", "weighted")
STRATEGIES = ("global", "spatial")
CENTRES = ("responsibility", "uniform")
PREFIX_SEARCHES = ("linear", "coarse")


def _need(ok: bool, owner: str, what: str) -> None:
    if not ok:
        raise ValueError(f"{owner}: {what}")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _is_bool(v) -> bool:
    return isinstance(v, (bool, np.bool_))


def check_radius_schedule(owner: str, initial_radius, eta, limit, limit_name: str = "expansion_limit") -> None:
    """initial_radius >= 1 (int), eta >= 0 (finite), limit (called `limit_name`) None or an int >= 1."""
    _need(_is_int(initial_radius) and initial_radius >= 1, owner, f"initial_radius must be an integer >= 1, got {initial_radius!r}")
    _need(isinstance(eta, (int, float)) and math.isfinite(eta) and eta >= 0, owner, f"radius_eta must be finite and >= 0, got {eta!r}")
    _need(limit is None or (_is_int(limit) and limit >= 1), owner, f"{limit_name} must be an integer >= 1 or None, got {limit!r}")


@dataclasses.dataclass(frozen=True)
class SpatialConfig:
    """Spatial strategy (reference `[explanation.spatial]`): circle radius schedule.

    initial_radius: first radius in pixels (reference 25); radius_eta: growth rate (0.2);
    expansion_limit: at most this many radii (None: until the circle covers the image).
    """

    initial_radius: int = 25
    radius_eta: float = 0.2
    expansion_limit: Optional[int] = None

    def __post_init__(self):
        check_radius_schedule("SpatialConfig", self.initial_radius, self.radius_eta, self.expansion_limit)


@dataclasses.dataclass(frozen=True)
class SpotlightConfig:
    """Spotlight search (reference `[explanation.multi]`), behind `multiple` and `contrastive`.

    spotlights: slots searched in parallel besides the primary explanation (reference 10 - 1).
    initial_radius, radius_eta: the spotlight circles' first radius and growth rate.
    expansions: radii tried per centre (reference `no_expansions` 4).
    budget: relocations per slot after the first centre (reference `max_spotlight_budget` 40).
    centres: "responsibility" (weighted, spread out) or "uniform" (as the reference).
    patience: stop after this many consecutive attempts that closed no slot (None: never).
    floor_quantile: weighted centres use max(resp - quantile(resp, q), 0) (0: resp - min).
    hide_held: hide the spotlight explanations already held inside later circles and leave
        them out of later regions (new explanations are then disjoint by construction, but
        fewer circles pass); False (default): plain circles, as the reference.
    max_candidates: contrastive search combines at most this many distinct candidates.
    """

    spotlights: int = 9
    initial_radius: int = 25
    radius_eta: float = 0.2
    expansions: int = 4
    budget: int = 40
    centres: str = "responsibility"
    patience: Optional[int] = 10
    floor_quantile: float = 0.0
    hide_held: bool = False
    max_candidates: int = 10

    def __post_init__(self):
        own = "SpotlightConfig"
        _need(self.patience is None or (_is_int(self.patience) and self.patience >= 1), own,
              f"patience must be an integer >= 1 or None, got {self.patience!r}")
        _need(_is_int(self.spotlights) and self.spotlights >= 1, own, f"spotlights must be an integer >= 1, got {self.spotlights!r}")
        _need(_is_int(self.budget) and self.budget >= 0, own, f"budget must be an integer >= 0, got {self.budget!r}")
        _need(0.0 <= self.floor_quantile < 1.0, own, f"floor_quantile must be in [0, 1), got {self.floor_quantile!r}")
        _need(self.centres in CENTRES, own, f"centres must be one of {CENTRES}, got {self.centres!r}")
        _need(_is_int(self.max_candidates) and 1 <= self.max_candidates <= 16, own,
              f"max_candidates must be in [1, 16], got {self.max_candidates!r}")
        check_radius_schedule(own, self.initial_radius, self.radius_eta, self.expansions, "expansions")

# The paper's budget (rexjax's defaults before issue 13): `RexConfig(**PAPER_BUDGET)`.
PAPER_BUDGET = dict(iters=20, tree_depth=10, max_active=3, responsibility="alg1", prefix_growth=0.0, prune_grids=())


@dataclasses.dataclass(frozen=True)
class RexConfig:
    """ReX hyper-parameters. Defaults: the fast budget of the module doc;
    `RexConfig(**PAPER_BUDGET)` is the paper's budget.

    Search (ReX paper Alg. 2-3):
    iters: independent random partitions (Alg. 3's N), summed (default 6; the paper 20).
    min_box_size: a box with fewer pixels is not split (bounds the parent, as ReX).
    tree_depth: boxes deeper than this are not split (root depth 0; default 7, the paper 10).
    queue_len: passing mutants refined per round and iteration, smallest area first.
    queue_style: "area" (queue_len smallest) or "all" (every passing mutant, up to 14).
    max_active: boxes of a job split in one round (each with the others held visible). The
        children of the passing mutant and (refine_static) the held boxes fill these slots in
        that order; the rest stay visible as static region. Below 3, some children of a
        passing mutant are never refined: max_active=1 (default) is a narrow descent, one
        split (15 images) per round and iteration (issue 13's fast budget; the paper: 3).
    refine_static: True (default, paper Sec. 5.2 "then reversing the procedure"): boxes held
        visible while a sibling was split are refined in the next round too (about 2x the
        images of False); False: they stay visible but are not refined further (still fixes
        the reference, which drops them).
    distribution: split-point law, "uniform" or "betabinom" with `distribution_args` (a, b).
    responsibility: "rex" (default, rex-xai 0.4.1: 1/n per passing mutant), "alg1" (paper
        Alg. 1 read literally: 1/(k+1), k the masked children of the passing mutant where the
        child is needed; PAPER_BUDGET's), "sufficient" (paper Def. 4.2 on the partition:
        1/|smallest passing set of children that needs the child|) or "weighted"
        (responsibility.py says which reading each is).
    concentrate: divide each child's credit by its area (paper Alg. 3 line 6, the tool's
        `concentrate` option, off by default as in the tool).
    confidence_filter: a mutant passes when its top-1 is the target and its confidence is at
        least this fraction of the full-image confidence.
    search_limit: stop an iteration after this many mutants (None = unbounded).
    discard_shallow: drop iterations that never got below the root's children (as ReX).
    Extraction (Alg. 3 lines 10-17):
    chunk_size: pixels added per extraction step (None = min_box_size).
    min_confidence: gamma, the fraction of the full-image confidence the explanation keeps.
    prefix_search: "linear" (default, the reference's: every prefix in order up to the first
        passing one) or "coarse" (coarse to fine, 2-4 model calls on 224x224); equal answers
        when passing is monotone in the prefix length, coarse's never shorter otherwise
        (extract.py; on Lite0 it saved ~3 % of the images and gave larger explanations, so
        it is not the default: BUILD_NOTES, issue 13).
    prefix_growth: 0 (the reference's): prefixes grow by `chunk_size` pixels; g > 0 (default 0.05):
        each prefix is max(previous + chunk_size, ceil(previous x (1 + g))) pixels, so the
        global extraction asks about log(area) prefixes instead of area / chunk_size, and
        returns the first passing length on that grid (extract.py).
    prune_grids: () (the reference's: the explanation is the passing prefix) or grid sizes
        (g1, g2, ...), coarse to fine (default (4, 8, 16)): afterwards, for each g, drop the
        explanation's cells of a g x g grid that it does not need, lowest mean responsibility
        first (extract.py `prune`: per grid two model calls of at most `prune_candidates`
        images; the result still passes; a departure from the paper, issue 13, BUILD_NOTES).
    strategy: "global" (greedy prefix of the whole map) or "spatial" (inside a circle).
    multiple: also find up to K sufficient explanations (None = no); permitted_overlap: their
        pairwise Dice bound; contrastive: a sufficient-and-necessary union of them.
    spatial / spotlight: the circle schedule and the spotlight search, whole.
    Model calls:
    batch_size: images per model call (None = `batching.default_batch_size()`).
    mask_mode: occlusion value (number, "min", "max", "mean", "blur", "blur:SIGMA") or "ad".
    """

    iters: int = 6
    min_box_size: int = 10
    tree_depth: int = 7
    queue_len: int = 1
    queue_style: str = "area"
    max_active: int = 1
    refine_static: bool = True
    distribution: str = "uniform"
    distribution_args: tuple[float, float] = (1.0, 1.0)
    responsibility: str = "rex"
    concentrate: bool = False
    confidence_filter: float = 0.0
    search_limit: Optional[int] = None
    discard_shallow: bool = True
    chunk_size: Optional[int] = None
    min_confidence: float = 0.0
    prefix_search: str = "linear"
    prefix_growth: float = 0.05
    prune_grids: tuple[int, ...] = (4, 8, 16)
    prune_candidates: int = 32
    strategy: str = "global"
    multiple: Optional[int] = None
    permitted_overlap: float = 0.0
    contrastive: bool = False
    spatial: SpatialConfig = SpatialConfig()
    spotlight: SpotlightConfig = SpotlightConfig()
    batch_size: Optional[int] = None
    mask_mode: Any = 0.0

    def __post_init__(self):
        own = "RexConfig"
        for name in ("iters", "min_box_size", "tree_depth", "queue_len", "max_active", "prune_candidates"):
            _need(_is_int(getattr(self, name)), own, f"{name} must be an integer, got {getattr(self, name)!r}")
        for name in ("search_limit", "chunk_size", "multiple"):
            value = getattr(self, name)
            _need(value is None or _is_int(value), own, f"{name} must be an integer or None, got {value!r}")
        for name in ("refine_static", "discard_shallow", "contrastive", "concentrate"):
            _need(_is_bool(getattr(self, name)), own, f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("confidence_filter", "min_confidence", "permitted_overlap"):
            _need(_is_number(getattr(self, name)), own, f"{name} must be a number, got {getattr(self, name)!r}")
        _need(self.iters > 0, own, f"iters must be > 0, got {self.iters!r}")
        _need(self.min_box_size >= 1, own, f"min_box_size must be >= 1, got {self.min_box_size!r}")
        _need(self.tree_depth >= 1, own, f"tree_depth must be >= 1, got {self.tree_depth!r}")
        _need(1 <= self.queue_len <= 14, own, f"queue_len must be in [1, 14], got {self.queue_len!r}")
        _need(self.max_active >= 1, own, f"max_active must be >= 1, got {self.max_active!r}")
        _need(self.queue_style in QUEUE_STYLES, own, f"queue_style must be one of {QUEUE_STYLES}, got {self.queue_style!r}")
        _need(self.distribution in DISTRIBUTIONS, own, f"distribution must be one of {DISTRIBUTIONS}, got {self.distribution!r}")
        args = self.distribution_args
        _need(
            isinstance(args, (tuple, list)) and len(args) == 2 and all(_is_number(a) and math.isfinite(a) and a > 0 for a in args),
            own, f"distribution_args must be two positive finite numbers, got {args!r}",
        )
        _need(self.responsibility != "minimal_k", own,
              "responsibility 'minimal_k' was renamed 'alg1' (the paper's Alg. 1 read literally); "
              "'sufficient' is the paper's Def. 4.2")
        _need(self.responsibility in RESPONSIBILITY_RULES, own,
              f"responsibility must be one of {RESPONSIBILITY_RULES}, got {self.responsibility!r}")
        _need(0.0 <= self.confidence_filter <= 1.0, own, f"confidence_filter must be in [0, 1], got {self.confidence_filter!r}")
        _need(self.search_limit is None or self.search_limit > 0, own,
              f"search_limit must be > 0 or None, got {self.search_limit!r}")
        _need(self.chunk_size is None or self.chunk_size >= 1, own, f"chunk_size must be >= 1, got {self.chunk_size!r}")
        _need(0.0 <= self.min_confidence <= 1.0, own, f"min_confidence must be in [0, 1], got {self.min_confidence!r}")
        _need(_is_number(self.prefix_growth) and math.isfinite(self.prefix_growth) and 0.0 <= self.prefix_growth <= 1.0,
              own, f"prefix_growth must be a number in [0, 1], got {self.prefix_growth!r}")
        grids = self.prune_grids
        _need(isinstance(grids, (tuple, list)) and all(_is_int(g) and 1 <= g <= 64 for g in grids), own,
              f"prune_grids must be a sequence of grid sizes in [1, 64] (empty = off), got {grids!r}")
        object.__setattr__(self, "prune_grids", tuple(grids))
        _need(self.prune_candidates >= 1, own, f"prune_candidates must be >= 1, got {self.prune_candidates!r}")
        _need(self.prefix_search in PREFIX_SEARCHES, own,
              f"prefix_search must be one of {PREFIX_SEARCHES}, got {self.prefix_search!r}")
        _need(self.strategy in STRATEGIES, own, f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        _need(self.multiple is None or self.multiple >= 1, own,
              f"multiple must be an integer >= 1 or None, got {self.multiple!r}")
        _need(0.0 <= self.permitted_overlap <= 1.0, own,
              f"permitted_overlap must be in [0, 1], got {self.permitted_overlap!r}")
        _need(isinstance(self.spatial, SpatialConfig), own, f"spatial must be a SpatialConfig, got {self.spatial!r}")
        _need(isinstance(self.spotlight, SpotlightConfig), own, f"spotlight must be a SpotlightConfig, got {self.spotlight!r}")
        resolve_batch_size(self.batch_size)
        parse_mask_mode(self.mask_mode)

    @classmethod
    def from_dict(cls, config: dict) -> "RexConfig":
        """A RexConfig from plain (possibly nested) dicts, e.g. an ml_collections config."""
        config = dict(config)
        if isinstance(config.get("spatial"), dict):
            config["spatial"] = SpatialConfig(**config["spatial"])
        if isinstance(config.get("spotlight"), dict):
            config["spotlight"] = SpotlightConfig(**config["spotlight"])
        if "distribution_args" in config:
            config["distribution_args"] = tuple(config["distribution_args"])
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ValueError(f"RexConfig: unknown option(s) {unknown}; valid: {sorted(names)}")
        return cls(**config)

    @property
    def queue_capacity(self) -> int:
        return 14 if self.queue_style == "all" else self.queue_len

    @property
    def exact(self) -> bool:
        """The rule's credits are multiples of 1/12, accumulated as integers (no `concentrate`)."""
        return self.responsibility != "weighted" and not self.concentrate

    @property
    def wants_spotlights(self) -> bool:
        return self.multiple is not None or self.contrastive

    def resolved(self) -> "RexConfig":
        """Copy with `chunk_size`, `batch_size` and `mask_mode` filled in / normalised."""
        return dataclasses.replace(
            self,
            chunk_size=self.chunk_size or self.min_box_size,
            batch_size=resolve_batch_size(self.batch_size),
            mask_mode=parse_mask_mode(self.mask_mode),
        )
