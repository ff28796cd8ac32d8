"""RexConfig validation at construction (item 7): integer fields take integers only (no
floats, no bools), bool fields bools only, numbers no bools, mask modes are checked at once."""

import numpy as np
import pytest

from rexjax.causal import RexConfig

INT_FIELDS = ["iters", "queue_len", "batch_size", "min_box_size", "tree_depth", "max_active", "search_limit",
              "chunk_size", "multiple"]
BOOL_FIELDS = ["refine_static", "discard_shallow", "contrastive", "concentrate"]
FLOAT_FIELDS = ["confidence_filter", "min_confidence", "permitted_overlap"]


@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("bad", [4.0, 4.5, True, False, "4"])
def test_integer_fields_reject_floats_bools_and_strings(field, bad):
    with pytest.raises(ValueError, match=field):
        RexConfig(**{field: bad})


@pytest.mark.parametrize("field", INT_FIELDS)
def test_integer_fields_accept_integers(field):
    value = {"queue_len": 2, "max_active": 4}.get(field, 3)
    assert getattr(RexConfig(**{field: value}), field) == value
    assert getattr(RexConfig(**{field: np.int64(value)}), field) == value


@pytest.mark.parametrize("field", BOOL_FIELDS)
@pytest.mark.parametrize("bad", [1, 0, "yes", None])
def test_bool_fields_reject_non_bools(field, bad):
    with pytest.raises(ValueError, match=field):
        RexConfig(**{field: bad})


@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_number_fields_reject_bools(field):
    with pytest.raises(ValueError, match=field):
        RexConfig(**{field: True})
    assert getattr(RexConfig(**{field: 1}), field) == 1  # an int is a fine number


@pytest.mark.parametrize("mode", ["purple", "blur:-1", "blur:x", float("nan"), True])
def test_mask_mode_fails_at_construction(mode):
    with pytest.raises(ValueError, match="mask_mode"):
        RexConfig(mask_mode=mode)


def test_distribution_args_are_two_positive_numbers():
    for bad in [(1.0,), (0.0, 1.0), (1.0, float("inf")), (True, 1.0), "ab"]:
        with pytest.raises(ValueError, match="distribution_args"):
            RexConfig(distribution="betabinom", distribution_args=bad)
