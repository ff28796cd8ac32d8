"""RexConfig: validation at construction and the forms it is built from.

Integer fields take integers only (no floats, no bools), bool fields bools only, numbers no
bools; `batch_size` and `mask_mode` are the call's, checked when the ReX method is built.
`RexConfig.from_dict` takes nested parts or the flat field names of the search and the
extraction (the same record either way), `to_dict` is its inverse, `replace` changes one
field, and every name that is not a field is one ValueError line naming it.
"""

import json

import numpy as np
import pytest

from rexjax import methods
from rexjax.causal import ExtractConfig, RexConfig, SearchConfig, SpatialConfig, SpotlightConfig
from rexjax.causal.config import EXTRACT_FIELDS, SEARCH_FIELDS
from rexjax.causal.explainer import Explainer

INT_FIELDS = ["iters", "queue_len", "min_box_size", "tree_depth", "max_active", "search_limit", "prefix_step", "multiple"]
BOOL_FIELDS = ["refine_static", "discard_shallow", "contrastive", "concentrate"]
FLOAT_FIELDS = ["confidence_filter", "min_confidence", "permitted_overlap"]


def field_of(config: RexConfig, name: str):
    """The value of field `name` (a flat search / extraction name or RexConfig's own)."""
    part = config.search if name in SEARCH_FIELDS else config.extract if name in EXTRACT_FIELDS else config
    return getattr(part, name)


def leaves(tree, prefix=()):
    """{path: value} of a nested dict's leaves."""
    out = {}
    for k, v in tree.items():
        out.update(leaves(v, prefix + (k,)) if isinstance(v, dict) else {prefix + (k,): v})
    return out


def constant_model(x):
    return np.zeros((x.shape[0], 2), np.float32) + np.array([0.0, 1.0], np.float32)


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("bad", [4.0, 4.5, True, False, "4"])
def test_integer_fields_reject_floats_bools_and_strings(field, bad):
    with pytest.raises(ValueError, match=field):
        RexConfig.from_dict({field: bad})


@pytest.mark.parametrize("field", INT_FIELDS)
def test_integer_fields_accept_integers(field):
    value = {"queue_len": 2, "max_active": 4}.get(field, 3)
    assert field_of(RexConfig.from_dict({field: value}), field) == value
    assert field_of(RexConfig.from_dict({field: np.int64(value)}), field) == value


@pytest.mark.parametrize("field", BOOL_FIELDS)
@pytest.mark.parametrize("bad", [1, 0, "yes", None])
def test_bool_fields_reject_non_bools(field, bad):
    with pytest.raises(ValueError, match=field):
        RexConfig.from_dict({field: bad})


@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_number_fields_reject_bools(field):
    with pytest.raises(ValueError, match=field):
        RexConfig.from_dict({field: True})
    assert field_of(RexConfig.from_dict({field: 1}), field) == 1  # an int is a fine number


@pytest.mark.parametrize("option,bad", [("batch_size", v) for v in (4.0, 4.5, True, False, "4", 0)]
                         + [("mask_mode", v) for v in ("purple", "blur:-1", "blur:x", float("nan"), True)])
def test_call_options_are_checked_when_the_method_is_built(option, bad):
    """batch_size and mask_mode are the call's: refused when the method / Explainer is built."""
    with pytest.raises(ValueError, match=option):
        methods.make("rex", **{option: bad})
    with pytest.raises(ValueError, match=option):
        Explainer(constant_model, **{option: bad})


def test_batch_size_accepts_integers():
    assert Explainer(constant_model, batch_size=3).batch_size == 3
    assert Explainer(constant_model, batch_size=np.int64(5)).batch_size == 5


def test_distribution_args_are_two_positive_numbers():
    for bad in [(1.0,), (0.0, 1.0), (1.0, float("inf")), (True, 1.0), "ab"]:
        with pytest.raises(ValueError, match="distribution_args"):
            RexConfig.from_dict({"distribution": "betabinom", "distribution_args": bad})


# --- the forms: flat, nested, dict round trip, replace -----------------------------------

FLAT = {"iters": 4, "responsibility": "sufficient", "prefix_growth": 0.0, "prune_grids": (8,), "strategy": "spatial",
        "multiple": 3, "spatial": {"initial_radius": 5}, "spotlight": {"spotlights": 2, "centres": "uniform"}}
NESTED = {"search": {"iters": 4, "responsibility": "sufficient"}, "extract": {"prefix_growth": 0.0, "prune_grids": [8]},
          "strategy": "spatial", "multiple": 3, "spatial": {"initial_radius": 5},
          "spotlight": {"spotlights": 2, "centres": "uniform"}}


def test_from_dict_takes_flat_and_nested_forms_and_they_are_equal():
    expected = RexConfig(
        search=SearchConfig(iters=4, responsibility="sufficient"),
        extract=ExtractConfig(prefix_growth=0.0, prune_grids=(8,)),
        strategy="spatial",
        multiple=3,
        spatial=SpatialConfig(initial_radius=5),
        spotlight=SpotlightConfig(spotlights=2, centres="uniform"),
    )
    assert expected != RexConfig()
    assert RexConfig.from_dict(FLAT) == expected
    assert RexConfig.from_dict(NESTED) == expected
    # the parts as records, and flat names of one part beside another part nested, are the same config
    mixed = {**FLAT, "extract": ExtractConfig(prefix_growth=0.0, prune_grids=(8,))}
    del mixed["prefix_growth"], mixed["prune_grids"]
    assert RexConfig.from_dict(mixed) == expected
    assert RexConfig.from_dict({"iters": 4, "extract": {"prefix_growth": 0.0}}) == RexConfig(
        search=SearchConfig(iters=4), extract=ExtractConfig(prefix_growth=0.0))


@pytest.mark.parametrize(
    "build,field",
    [
        (lambda: RexConfig.from_dict({"no_such_field": 1}), "no_such_field"),
        (lambda: RexConfig.from_dict({"search": {"no_such_field": 1}}), "no_such_field"),
        (lambda: RexConfig.from_dict({"spotlight": {"no_such_field": 1}}), "no_such_field"),
        (lambda: RexConfig.from_dict({"batch_size": 8}), "batch_size"),
        (lambda: RexConfig.from_dict({"mask_mode": "ad"}), "mask_mode"),
        (lambda: RexConfig.from_dict({"chunk_size": 5}), "chunk_size"),
        (lambda: RexConfig.from_dict({"responsibility": "rex"}), "responsibility"),
        (lambda: RexConfig.from_dict({"iters": 4, "search": {"iters": 5}}), "iters"),  # which would win?
        (lambda: RexConfig.from_dict({"prune_grids": (4,), "extract": {}}), "prune_grids"),
        (lambda: RexConfig().replace(no_such_field=1), "no_such_field"),
        (lambda: RexConfig().replace(batch_size=8), "batch_size"),
        (lambda: RexConfig().replace(mask_mode="ad"), "mask_mode"),
        (lambda: RexConfig().replace(chunk_size=5), "chunk_size"),
        (lambda: RexConfig().replace(responsibility="rex"), "responsibility"),
        (lambda: methods.make("rex", chunk_size=5), "chunk_size"),
    ],
)
def test_refused_names_are_one_value_error_naming_them(build, field):
    with pytest.raises(ValueError) as err:
        build()
    message = str(err.value)
    assert field in message and "\n" not in message, message


def test_old_names_point_to_the_new_ones():
    with pytest.raises(ValueError, match="chunk_size was renamed prefix_step"):
        RexConfig.from_dict({"chunk_size": 5})
    with pytest.raises(ValueError, match="'rex' is now 'tool'"):
        RexConfig.from_dict({"responsibility": "rex"})
    assert RexConfig.from_dict({"responsibility": "tool"}).search.responsibility == "tool"


def test_to_dict_round_trips_through_from_dict_and_json():
    c = RexConfig.from_dict({**FLAT, "distribution": "betabinom", "distribution_args": (2.0, 3.0), "search_limit": 500,
                             "prefix_step": 4, "contrastive": True, "permitted_overlap": 0.25,
                             "spotlight": {"patience": None, "budget": 7}})
    assert RexConfig.from_dict(c.to_dict()) == c
    assert RexConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    for default in (RexConfig(), RexConfig.from_dict({"multiple": 2, "spatial": {"expansion_limit": 3}})):
        assert RexConfig.from_dict(default.to_dict()) == default


BASE = RexConfig.from_dict({**FLAT, "queue_len": 2, "min_confidence": 0.5})


@pytest.mark.parametrize(
    "fields,path,value",
    [
        ({"iters": 9}, ("search", "iters"), 9),
        ({"refine_static": False}, ("search", "refine_static"), False),
        ({"prefix_step": 7}, ("extract", "prefix_step"), 7),
        ({"min_confidence": 0.75}, ("extract", "min_confidence"), 0.75),
        ({"strategy": "global"}, ("strategy",), "global"),
        ({"multiple": None}, ("multiple",), None),
        ({"spatial": {"radius_eta": 0.5}}, ("spatial", "radius_eta"), 0.5),
        ({"spotlight": {"budget": 3}}, ("spotlight", "budget"), 3),
        ({"spotlight": SpotlightConfig(spotlights=2, centres="uniform", budget=3)}, ("spotlight", "budget"), 3),
    ],
)
def test_replace_changes_only_the_named_field(fields, path, value):
    before, after = leaves(BASE.to_dict()), leaves(BASE.replace(**fields).to_dict())
    assert before[path] != value and after[path] == value
    assert {p: v for p, v in after.items() if p != path} == {p: v for p, v in before.items() if p != path}
    assert BASE == RexConfig.from_dict({**FLAT, "queue_len": 2, "min_confidence": 0.5})  # BASE itself unchanged
