"""ReX configuration: option vocabularies and the frozen config records.

`RexConfig` is composed of a `SearchConfig` (the responsibility map, ReX paper Alg. 2-3) and
an `ExtractConfig` (the sufficient explanation, Alg. 3 lines 10-17), with the strategy, the
spatial circle schedule (`SpatialConfig`) and the spotlight search (`SpotlightConfig`) nested
whole. Engines take the part they need; nothing explodes it into keyword arguments. The
ml_collections configs of the commands are generated from these dataclasses
(`rexjax.configs.rex`), so their defaults have one source.

Defaults are the fast budget: 6 iterations of a narrow descent (max_active 1, tree_depth 7),
each child's main effect on the target confidence over its split's mutants (the
"main_effect" rule), a geometric prefix grid (prefix_growth 0.05) and a pruned
extraction (prune_grids 4, 8, 16); docs/benchmarks.md has the evidence. `PAPER_BUDGET` is the
paper's budget (20 iterations, the full descent, Alg. 1's rule, every prefix, no pruning).
Either way rexjax fixes the tool's bugs and refines held boxes (refine_static, Sec. 5.2).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import numpy as np


QUEUE_STYLES = ("area", "all")
DISTRIBUTIONS = ("uniform", "betabinom")
RESPONSIBILITY_RULES = ("sufficient", "alg1", "tool", "weighted", "main_effect")
EXACT_RULES = ("sufficient", "alg1", "tool")  # credits in multiples of 1/12 (responsibility.py)
COMBINES = ("sum", "product")  # how the iterations' maps make the map (search.py `combine_iterations`)
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

# The paper's budget, as flat field names: `RexConfig.from_dict(PAPER_BUDGET)`.
PAPER_BUDGET = dict(iters=20, tree_depth=10, max_active=3, responsibility="alg1", prefix_growth=0.0, prune_grids=())


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """The responsibility search (ReX paper Alg. 2-3): which random partitions, how deep, which rule.

    iters: independent random partitions (Alg. 3's N), summed (default 6; the paper 20).
    min_box_size: a box with fewer pixels (elements) is not split (bounds the parent, as the tool).
    tree_depth: boxes deeper than this are not split (root depth 0; default 7, the paper 10).
    queue_len: passing mutants refined per round and iteration, smallest area first.
    queue_style: "area" (queue_len smallest) or "all" (every passing mutant, up to 14).
    max_active: boxes of a job split in one round (each with the others held visible). The
        children of the passing mutant and (refine_static) the held boxes fill these slots in
        that order; the rest stay visible as static region. max_active=1 (default) is a narrow
        descent, one split (15 images) per round and iteration; the paper splits 3.
    refine_static: True (default, paper Sec. 5.2 "then reversing the procedure"): boxes held
        visible while a sibling was split are refined in the next round too (about 2x the
        images of False); False: they stay visible but are not refined further (still fixes
        the tool, which drops them).
    distribution: split-point law, "uniform" or "betabinom" with `distribution_args` (a, b);
        the split rule per spatial rank is partition.py's (signals: three uniform cuts, so
        "betabinom" is refused for them; volumes: two random axes, one cut each).
    responsibility: "main_effect" (default: each child's mean target confidence over the 7
        mutants that show it minus over the 7 that hide it, passing or not), "weighted"
        ("tool" with each mutant's credit times its target confidence, the tool's
        `weighted` option), "tool" (rex-xai 0.4.1's default rule: 1/n per passing mutant;
        its default map is this rule with combine "product"), "alg1" (paper Alg. 1 read
        literally: 1/(k+1), k the masked children of the passing mutant where the child is
        needed) or "sufficient" (paper Def. 4.2 on the partition: 1/|smallest passing set of
        children that needs the child|); see responsibility.py.
    concentrate: divide each child's credit by its area (paper Alg. 3 line 6, the tool's
        `concentrate` option, off by default as in the tool).
    confidence_filter: a mutant passes when its top-1 is the target and its confidence is at
        least this fraction of the full-image confidence.
    search_limit: stop an iteration after this many mutants (None = unbounded).
    discard_shallow: drop iterations that never got below the root's children (as the tool).
    combine: how the kept iterations' maps make the map. "sum" (default; reference Sec. 3.2's
        additive style) or "product" (what rex-xai 0.4.1 runs by default: `CausalArgs()`
        leaves `responsibility_style` the string "multiplicative", which never equals the
        Additive enum, so each iteration's map is 1 + its credits and the map is their
        product, divided by its max after each factor). "product" needs a rule whose
        credits are >= 0, so not "main_effect".
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
    responsibility: str = "main_effect"
    concentrate: bool = False
    confidence_filter: float = 0.0
    search_limit: Optional[int] = None
    discard_shallow: bool = True
    combine: str = "sum"

    def __post_init__(self):
        own = "SearchConfig"
        for name in ("iters", "min_box_size", "tree_depth", "queue_len", "max_active"):
            _need(_is_int(getattr(self, name)), own, f"{name} must be an integer, got {getattr(self, name)!r}")
        _need(self.search_limit is None or _is_int(self.search_limit), own,
              f"search_limit must be an integer or None, got {self.search_limit!r}")
        for name in ("refine_static", "discard_shallow", "concentrate"):
            _need(_is_bool(getattr(self, name)), own, f"{name} must be True or False, got {getattr(self, name)!r}")
        _need(_is_number(self.confidence_filter), own, f"confidence_filter must be a number, got {self.confidence_filter!r}")
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
        object.__setattr__(self, "distribution_args", tuple(float(a) for a in args))
        renamed = {"minimal_k": "'alg1' (the paper's Alg. 1 read literally)", "rex": "'tool' (rex-xai 0.4.1's 1/n)"}
        _need(self.responsibility not in renamed, own,
              f"responsibility {self.responsibility!r} is now {renamed.get(self.responsibility)}")
        _need(self.responsibility in RESPONSIBILITY_RULES, own,
              f"responsibility must be one of {RESPONSIBILITY_RULES}, got {self.responsibility!r}")
        _need(self.combine in COMBINES, own, f"combine must be one of {COMBINES}, got {self.combine!r}")
        _need(not (self.combine == "product" and self.responsibility == "main_effect"), own,
              "combine 'product' multiplies 1 + credit, and responsibility 'main_effect' credits can be "
              "negative: use combine 'sum' or a rule with credits >= 0 ('tool', 'weighted', 'alg1', 'sufficient')")
        _need(0.0 <= self.confidence_filter <= 1.0, own, f"confidence_filter must be in [0, 1], got {self.confidence_filter!r}")
        _need(self.search_limit is None or self.search_limit > 0, own,
              f"search_limit must be > 0 or None, got {self.search_limit!r}")

    @property
    def queue_capacity(self) -> int:
        return 14 if self.queue_style == "all" else self.queue_len

    @property
    def exact(self) -> bool:
        """The rule's credits are multiples of 1/12, accumulated as integers (no `concentrate`)."""
        return self.responsibility in EXACT_RULES and not self.concentrate


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """The extraction of a sufficient explanation from the map (ReX paper Alg. 3 lines 10-17).

    prefix_step: pixels added per prefix step (None = the search's min_box_size).
    min_confidence: gamma, the fraction of the full-image confidence the explanation keeps.
    prefix_search: "linear" (default, the tool's: every prefix in order up to the first
        passing one) or "coarse" (coarse to fine, 2-4 model calls on 224x224); equal answers
        when passing is monotone in the prefix length, coarse's never shorter otherwise.
    prefix_growth: 0 (the tool's): prefixes grow by `prefix_step` pixels; g > 0 (default 0.05):
        each prefix is max(previous + prefix_step, ceil(previous x (1 + g))) pixels, so the
        global extraction asks about log(area) prefixes instead of area / prefix_step, and
        returns the first passing length on that grid (extract.py).
    prune_grids: () (the tool's: the explanation is the passing prefix) or grid sizes
        (g1, g2, ...), coarse to fine (default (4, 8, 16)): afterwards, for each g, drop the
        explanation's cells of a g x g grid that it does not need, lowest mean responsibility
        first (extract.py `prune`: per grid two model calls of at most `prune_candidates`
        images; the result still passes; a departure from the paper, see BUILD_NOTES.md).
    prune_candidates: cells tried per model call of the prune (volumes: twice as many,
        `extract.prune_cells`).
    """

    prefix_step: Optional[int] = None
    min_confidence: float = 0.0
    prefix_search: str = "linear"
    prefix_growth: float = 0.05
    prune_grids: tuple[int, ...] = (4, 8, 16)
    prune_candidates: int = 32

    def __post_init__(self):
        own = "ExtractConfig"
        _need(self.prefix_step is None or (_is_int(self.prefix_step) and self.prefix_step >= 1), own,
              f"prefix_step must be an integer >= 1 or None, got {self.prefix_step!r}")
        _need(_is_number(self.min_confidence) and 0.0 <= self.min_confidence <= 1.0, own,
              f"min_confidence must be in [0, 1], got {self.min_confidence!r}")
        _need(_is_number(self.prefix_growth) and math.isfinite(self.prefix_growth) and 0.0 <= self.prefix_growth <= 1.0,
              own, f"prefix_growth must be a number in [0, 1], got {self.prefix_growth!r}")
        grids = self.prune_grids
        _need(isinstance(grids, (tuple, list)) and all(_is_int(g) and 1 <= g <= 64 for g in grids), own,
              f"prune_grids must be a sequence of grid sizes in [1, 64] (empty = off), got {grids!r}")
        object.__setattr__(self, "prune_grids", tuple(int(g) for g in grids))
        _need(_is_int(self.prune_candidates) and self.prune_candidates >= 1, own,
              f"prune_candidates must be an integer >= 1, got {self.prune_candidates!r}")
        _need(self.prefix_search in PREFIX_SEARCHES, own,
              f"prefix_search must be one of {PREFIX_SEARCHES}, got {self.prefix_search!r}")


PARTS = {"search": SearchConfig, "extract": ExtractConfig, "spatial": SpatialConfig, "spotlight": SpotlightConfig}
BOUNDARY_OPTIONS = ("batch_size", "mask_mode")  # arguments of the method / Explainer, not config fields


@dataclasses.dataclass(frozen=True)
class RexConfig:
    """ReX hyper-parameters: the search and the extraction, and which explanations to build.

    search: SearchConfig (the map); extract: ExtractConfig (the sufficient explanation).
    strategy: "global" (greedy prefix of the whole map) or "spatial" (inside a circle,
        `spatial`'s radius schedule).
    multiple: also find up to K sufficient explanations (None = no); permitted_overlap: their
        pairwise Dice bound; contrastive: a sufficient-and-necessary union of them; both use
        the spotlight search (`spotlight`).

    Defaults are the fast budget (`rexjax.configs.rex.get_config("fast")`); the paper's
    budget is `RexConfig.from_dict(PAPER_BUDGET)` (`get_config("paper")`). How many images per
    model call (`batch_size`) and what masked pixels show (`mask_mode`) are not part of the
    config: they belong to the call (`methods.make("rex", mask_mode=..., batch_size=...)`,
    `Explainer(model, config, mask_mode=..., batch_size=...)`), resolved there once.
    """

    search: SearchConfig = SearchConfig()
    extract: ExtractConfig = ExtractConfig()
    strategy: str = "global"
    multiple: Optional[int] = None
    permitted_overlap: float = 0.0
    contrastive: bool = False
    spatial: SpatialConfig = SpatialConfig()
    spotlight: SpotlightConfig = SpotlightConfig()

    def __post_init__(self):
        own = "RexConfig"
        for name, cls in PARTS.items():
            _need(isinstance(getattr(self, name), cls), own,
                  f"{name} must be a {cls.__name__}, got {getattr(self, name)!r}")
        _need(self.strategy in STRATEGIES, own, f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        _need(self.multiple is None or (_is_int(self.multiple) and self.multiple >= 1), own,
              f"multiple must be an integer >= 1 or None, got {self.multiple!r}")
        _need(_is_number(self.permitted_overlap) and 0.0 <= self.permitted_overlap <= 1.0, own,
              f"permitted_overlap must be in [0, 1], got {self.permitted_overlap!r}")
        _need(_is_bool(self.contrastive), own, f"contrastive must be True or False, got {self.contrastive!r}")

    @classmethod
    def from_dict(cls, config) -> "RexConfig":
        """A RexConfig from a (possibly nested) mapping, e.g. an ml_collections config.

        Keys: RexConfig's own fields, the parts (`search`, `extract`, `spatial`, `spotlight`) as
        dicts or configs, or the flat field names of `search` and `extract` (unique across the
        parts: `{"iters": 4, "prefix_growth": 0}` = `{"search": {"iters": 4}, "extract":
        {"prefix_growth": 0}}`). Unknown names are one ValueError listing the valid ones.
        """
        if isinstance(config, RexConfig):
            return config
        config = dict(config.to_dict() if hasattr(config, "to_dict") else config)
        own = {f.name for f in dataclasses.fields(cls)}
        parts: dict[str, dict] = {name: {} for name in PARTS}
        top: dict[str, Any] = {}
        flat = [n for n in config if n in SEARCH_FIELDS | EXTRACT_FIELDS]
        for name in flat:  # a flat name beside its part: one would silently win
            part = "search" if name in SEARCH_FIELDS else "extract"
            if part in config:
                raise ValueError(f"RexConfig: {name} is given flat and inside {part}; set {part}.{name} only")
        for name, value in config.items():
            if name in PARTS:
                if isinstance(value, PARTS[name]):
                    value = dataclasses.asdict(value)
                value = value.to_dict() if hasattr(value, "to_dict") else value
                if not isinstance(value, dict):
                    raise ValueError(f"RexConfig: {name} must be a {PARTS[name].__name__} or a dict, got {value!r}")
                parts[name].update(value)
            elif name in own:
                top[name] = value
            elif name in SEARCH_FIELDS:
                parts["search"][name] = value
            elif name in EXTRACT_FIELDS:
                parts["extract"][name] = value
            elif name in BOUNDARY_OPTIONS:
                raise ValueError(f"RexConfig: {name} is not a config field; pass it to the call "
                                 f"(methods.make('rex', {name}=...), Explainer(..., {name}=...))")
            elif name == "chunk_size":
                raise ValueError("RexConfig: chunk_size was renamed prefix_step (pixels added per prefix step)")
            else:
                raise ValueError(f"RexConfig: unknown option {name!r}; valid: {sorted(field_names())}")
        for name, cls_ in PARTS.items():
            known = {f.name for f in dataclasses.fields(cls_)}
            unknown = sorted(set(parts[name]) - known)
            if unknown:
                raise ValueError(f"RexConfig.{name}: unknown option(s) {unknown}; valid: {sorted(known)}")
            top[name] = cls_(**parts[name])
        return cls(**top)

    def to_dict(self) -> dict:
        """Nested plain dict (tuples as lists): the inverse of `from_dict`, JSON-ready."""
        return json_ready(dataclasses.asdict(self))

    def replace(self, **fields) -> "RexConfig":
        """A copy with `fields` changed (flat part field names allowed, as `from_dict`)."""
        merged = self.to_dict()
        for name, value in fields.items():
            part = "search" if name in SEARCH_FIELDS else "extract" if name in EXTRACT_FIELDS else None
            if part is not None:
                merged[part][name] = value
            elif name in PARTS and isinstance(value, dict):
                merged[name].update(value)
            else:
                merged[name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return RexConfig.from_dict(merged)

    @property
    def prefix_step(self) -> int:
        """Pixels per prefix step of the extraction (the search's min_box_size unless set)."""
        return self.extract.prefix_step or self.search.min_box_size

    @property
    def wants_spotlights(self) -> bool:
        return self.multiple is not None or self.contrastive


def rex_config(config=None, **fields) -> RexConfig:
    """`config` (a RexConfig, a mapping `from_dict` takes, or None: the defaults) with `fields`
    (RexConfig field names, flat or nested) applied: how every ReX entry builds its config."""
    base = RexConfig() if config is None else RexConfig.from_dict(config)
    return base.replace(**fields) if fields else base


SEARCH_FIELDS = frozenset(f.name for f in dataclasses.fields(SearchConfig))
EXTRACT_FIELDS = frozenset(f.name for f in dataclasses.fields(ExtractConfig))


def field_names() -> frozenset:
    """Every name `RexConfig.from_dict` takes: RexConfig's fields (the parts included) and the
    flat field names of the search and the extraction (what `methods.accepts("rex")` lists)."""
    return frozenset(f.name for f in dataclasses.fields(RexConfig)) | SEARCH_FIELDS | EXTRACT_FIELDS


def json_ready(value):
    """Tuples -> lists, recursively (dataclasses.asdict output -> JSON / ml_collections)."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [json_ready(v) for v in value]
    return value
