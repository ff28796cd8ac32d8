"""Single-op graphs (built with `onnx.helper`) against onnxruntime: every op and attribute
form of the table that the exported fixtures do not reach (older opsets' attribute forms,
auto_pad, dilations, ceil_mode, count_include_pad, reflect/edge pads, keepdims, ...).

Each graph takes an image X f32[2,3,H,W] (NCHW), so it runs through the compiler both ways:
channels-last inside (the default: layouts tracked, Conv weights HWIO) and in the graph's
own layout (`channels_last=False`); both must match onnxruntime within 1e-5 (scaled).
Bugs caught: wrong attribute defaults, an axis not mapped to the channels-last storage,
the ceil-mode/padding rules of pooling, opset-dependent input/attribute forms.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rexjax.models.onnx.compile import compile_graph

ort = pytest.importorskip("onnxruntime")

SHAPE = (2, 3, 9, 11)
RNG = np.random.default_rng(0)


def _w(*shape, scale=0.5):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def make(nodes, opset, inits=(), shape=SHAPE, out="Y") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", *shape[1:]])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def check(model: onnx.ModelProto, x=None, atol=1e-5):
    """The compiled graph, both layouts, against onnxruntime on x (NCHW)."""
    x = RNG.standard_normal(SHAPE).astype(np.float32) if x is None else x
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, {"X": x})[0]
    for channels_last in (True, False):
        graph = compile_graph(model, "test.onnx", channels_last=channels_last)
        params = {k: np.asarray(v) for k, v in graph.params.items()}
        got = np.asarray(graph.apply(params, x.transpose(0, 2, 3, 1)))
        assert got.shape == want.shape, (channels_last, got.shape, want.shape)
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=0, atol=atol * scale, err_msg=f"channels_last={channels_last}")
    return want


_COUNT = iter(range(1_000_000))


def node(op, inputs, outputs=("Y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op.lower()}_{next(_COUNT)}", **attrs)


# (id, opset, nodes, initializers)
CASES = [
    ("clip_attrs_opset10", 10, [node("Clip", ["X"], min=-0.5, max=0.7)], {}),
    ("clip_inputs", 13, [node("Clip", ["X", "lo", "hi"])], {"lo": np.float32(-0.5), "hi": np.float32(0.7)}),
    ("clip_max_only", 13, [node("Clip", ["X", "", "hi"])], {"hi": np.float32(0.3)}),
    ("hard_sigmoid", 13, [node("HardSigmoid", ["X"], alpha=0.3, beta=0.4)], {}),
    ("hard_swish", 14, [node("HardSwish", ["X"])], {}),
    ("leaky_relu", 13, [node("LeakyRelu", ["X"], alpha=0.2)], {}),
    ("prelu_channel", 13, [node("PRelu", ["X", "s"])], {"s": _w(3, 1, 1)}),
    ("softplus", 13, [node("Softplus", ["X"])], {}),
    ("mish", 18, [node("Mish", ["X"])], {}),
    ("gelu_tanh", 20, [node("Gelu", ["X"], approximate="tanh")], {}),
    ("gelu_exact", 20, [node("Gelu", ["X"])], {}),
    ("unary_chain", 13, [node("Abs", ["X"], ["a"]), node("Sqrt", ["a"], ["b"]), node("Log", ["b"], ["c"]),
                         node("Exp", ["c"], ["d"]), node("Neg", ["d"], ["e"]), node("Reciprocal", ["e"], ["f"]),
                         node("Floor", ["X"], ["g"]), node("Ceil", ["X"], ["h"]), node("Sum", ["f", "g", "h"], ["Y"])],
     {}),
    ("min_max_mean", 13, [node("Max", ["X", "c"], ["a"]), node("Min", ["a", "X"], ["b"]),
                          node("Mean", ["a", "b", "X"], ["Y"])], {"c": _w(1, 3, 1, 1)}),
    ("pow_sqrt_div", 13, [node("Pow", ["X", "p"], ["a"]), node("Div", ["a", "d"], ["Y"])],
     {"p": np.float32(3.0), "d": _w(3, 1, 1)}),
    ("softmax_opset11_coerced", 11, [node("Softmax", ["X"], axis=2)], {}),
    ("softmax_opset13_axis1", 13, [node("Softmax", ["X"], axis=1)], {}),
    ("softmax_default_axes", 11, [node("Softmax", ["X"], ["a"]), node("LogSoftmax", ["a"])], {}),
    ("softmax_default_axis_opset13", 13, [node("Softmax", ["X"])], {}),
    ("log_softmax", 13, [node("LogSoftmax", ["X"], axis=-1)], {}),
    ("conv_same_upper", 13, [node("Conv", ["X", "w", "b"], auto_pad="SAME_UPPER", strides=[2, 2])],
     {"w": _w(4, 3, 3, 2), "b": _w(4)}),
    ("conv_dilated", 13, [node("Conv", ["X", "w"], dilations=[2, 3], pads=[2, 1, 0, 3], strides=[1, 2])],
     {"w": _w(4, 3, 3, 2)}),
    ("conv_same_lower", 13, [node("Conv", ["X", "w"], auto_pad="SAME_LOWER", strides=[2, 3])], {"w": _w(4, 3, 4, 4)}),
    ("conv_grouped_pads", 13, [node("Conv", ["X", "w"], group=3, pads=[1, 0, 2, 1])], {"w": _w(6, 1, 3, 3)}),
    ("depthwise_stride2", 13, [node("Conv", ["X", "w", "b"], group=3, strides=[2, 2], pads=[1, 1, 1, 1])],
     {"w": _w(3, 1, 3, 3), "b": _w(3)}),
    ("depthwise_uneven_strides", 13, [node("Conv", ["X", "w"], group=3, strides=[1, 2])], {"w": _w(3, 1, 3, 3)}),
    ("conv_weight_shared", 13, [node("Conv", ["X", "w"], ["a"], pads=[1, 1, 1, 1]),
                                node("ReduceSum", ["w"], ["s"], keepdims=0), node("Add", ["a", "s"], ["Y"])],
     {"w": _w(3, 3, 3, 3)}),
    ("maxpool_ceil_dilated", 13, [node("MaxPool", ["X"], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 1, 1],
                                       ceil_mode=1, dilations=[1, 2])], {}),
    ("maxpool_same_upper", 13, [node("MaxPool", ["X"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")],
     {}),
    ("avgpool_include_pad_ceil", 13, [node("AveragePool", ["X"], kernel_shape=[3, 3], strides=[2, 2],
                                           pads=[1, 1, 1, 1], ceil_mode=1, count_include_pad=1)], {}),
    ("avgpool_exclude_pad_ceil", 13, [node("AveragePool", ["X"], kernel_shape=[3, 2], strides=[2, 3],
                                           pads=[1, 1, 0, 1], ceil_mode=1)], {}),
    ("avgpool_ceil_last_window_in_padding", 13, [node("AveragePool", ["X"], kernel_shape=[2, 2], strides=[3, 3],
                                                      pads=[0, 0, 1, 1], ceil_mode=1, count_include_pad=1)], {}),
    ("maxpool_ceil_last_window_in_padding", 13, [node("MaxPool", ["X"], kernel_shape=[2, 2], strides=[3, 3],
                                                      pads=[0, 0, 1, 1], ceil_mode=1)], {}),
    ("avgpool_same_lower", 13, [node("AveragePool", ["X"], kernel_shape=[2, 3], strides=[2, 2],
                                     auto_pad="SAME_LOWER")], {}),
    ("global_max_pool", 13, [node("GlobalMaxPool", ["X"])], {}),
    ("batch_norm_eps", 15, [node("BatchNormalization", ["X", "s", "b", "m", "v"], epsilon=1e-3)],
     {"s": _w(3), "b": _w(3), "m": _w(3), "v": np.abs(_w(3)) + 0.5}),
    ("reduce_attr_axes_opset13", 13, [node("ReduceMax", ["X"], axes=[1, 3], keepdims=0)], {}),
    ("reduce_height_drop_axis", 13, [node("ReduceMean", ["X"], axes=[2], keepdims=0)], {}),
    ("reduce_min_keep", 13, [node("ReduceMin", ["X"], axes=[-2], keepdims=1)], {}),
    ("reduce_sum_input_opset13", 13, [node("ReduceSum", ["X", "ax"], keepdims=0)], {"ax": np.int64([2, 3])}),
    ("reduce_sum_empty_noop", 13, [node("ReduceSum", ["X", "ax"], noop_with_empty_axes=1)],
     {"ax": np.zeros(0, np.int64)}),
    ("reduce_mean_all_opset18", 18, [node("ReduceMean", ["X"], keepdims=0)], {}),
    ("reduce_l2_opset18", 18, [node("ReduceL2", ["X", "ax"])], {"ax": np.int64([1])}),
    ("reduce_sum_square_opset18", 18, [node("ReduceSumSquare", ["X", "ax"], keepdims=0)], {"ax": np.int64([1, 2])}),
    ("gemm_trans_alpha_beta", 13, [node("GlobalAveragePool", ["X"], ["p"]), node("Flatten", ["p"], ["f"]),
                                   node("Transpose", ["f"], ["t"], perm=[1, 0]),
                                   node("Gemm", ["t", "w", "c"], transA=1, transB=1, alpha=0.5, beta=2.0)],
     {"w": _w(5, 3), "c": _w(5)}),
    ("matmul_einsum", 13, [node("MatMul", ["X", "w"], ["a"]), node("Einsum", ["a", "X"], equation="bchw,bchv->bcwv")],
     {"w": _w(11, 4)}),
    ("layer_norm_axis2", 17, [node("LayerNormalization", ["X", "s", "b"], axis=2, epsilon=1e-3)],
     {"s": _w(9, 11), "b": _w(9, 11)}),
    ("flatten_axis2_reshape_zero", 13, [node("Flatten", ["X"], ["f"], axis=2), node("Reshape", ["f", "s"])],
     {"s": np.int64([0, -1, 3])}),
    ("pad_reflect", 13, [node("Pad", ["X", "p"], mode="reflect")], {"p": np.int64([0, 0, 1, 2, 0, 0, 2, 1])}),
    ("pad_edge", 13, [node("Pad", ["X", "p"], mode="edge")], {"p": np.int64([0, 0, 2, 0, 0, 0, 1, 3])}),
    ("pad_constant_value", 13, [node("Pad", ["X", "p", "v"])], {"p": np.int64([0, 1, 1, 0, 0, 0, 0, 2]),
                                                                "v": np.float32(1.5)}),
    ("pad_negative_crop", 13, [node("Pad", ["X", "p"])], {"p": np.int64([0, 0, -1, 1, 0, 0, 2, -2])}),
    ("pad_axes_opset18", 18, [node("Pad", ["X", "p", "", "ax"])], {"p": np.int64([1, 2, 3, 0]), "ax": np.int64([-1, 2])}),
    ("pad_attrs_opset2", 9, [node("Pad", ["X"], pads=[0, 0, 1, 1, 0, 0, 1, 1], value=0.5)], {}),
    ("split_attr_opset11", 11, [node("Split", ["X"], ["a", "b"], axis=1, split=[1, 2]),
                                node("ReduceSum", ["b"], ["c"], axes=[1], keepdims=1), node("Mul", ["a", "c"])], {}),
    ("split_input_opset13", 13, [node("Split", ["X", "s"], ["a", "b"], axis=3), node("Concat", ["b", "a"], axis=3)],
     {"s": np.int64([4, 7])}),
    ("split_num_outputs_opset18", 18, [node("Split", ["X"], ["a", "b", "c"], axis=2, num_outputs=3),
                                       node("Concat", ["c", "a", "b"], axis=2)], {}),
    ("squeeze_unsqueeze_opset11", 11, [node("ReduceMean", ["X"], ["m"], axes=[2], keepdims=1),
                                       node("Squeeze", ["m"], ["s"], axes=[2]),
                                       node("Unsqueeze", ["s"], ["Y"], axes=[0, 4])], {}),
    ("squeeze_unsqueeze_opset13", 13, [node("ReduceMean", ["X"], ["m"], axes=[2], keepdims=1),
                                       node("Squeeze", ["m", "a"], ["s"]), node("Unsqueeze", ["s", "a"], ["Y"])],
     {"a": np.int64([2])}),
    ("slice_negative_steps", 13, [node("Slice", ["X", "st", "en", "ax", "sp"])],
     {"st": np.int64([-1, 8]), "en": np.int64([-100, 1]), "ax": np.int64([3, 2]), "sp": np.int64([-2, -3])}),
    ("slice_opset9_attrs", 9, [node("Slice", ["X"], starts=[1, 2], ends=[3, 1000], axes=[1, 3])], {}),
    ("gather_negative_indices", 13, [node("Gather", ["X", "i"], axis=3)], {"i": np.int64([[-1, 0], [2, -3]])}),
    ("gather_scalar", 13, [node("Gather", ["X", "i"], axis=1)], {"i": np.int64(-2)}),
    ("transpose_default", 13, [node("Conv", ["X", "w"], ["c"]), node("Transpose", ["c"])], {"w": _w(2, 3, 1, 1)}),
    ("transpose_to_nhwc_and_back", 13, [node("Conv", ["X", "w"], ["c"]), node("Transpose", ["c"], ["t"],
                                                                              perm=[0, 2, 3, 1]),
                                        node("Relu", ["t"], ["r"]), node("Transpose", ["r"], ["u"], perm=[0, 3, 1, 2]),
                                        node("Add", ["u", "c"])], {"w": _w(2, 3, 1, 1)}),
    ("where_compare_logic", 13, [node("Greater", ["X", "z"], ["g"]), node("Less", ["X", "h"], ["l"]),
                                 node("And", ["g", "l"], ["a"]), node("Not", ["a"], ["n"]),
                                 node("Equal", ["X", "X"], ["e"]), node("Or", ["n", "e"], ["o"]),
                                 node("Where", ["n", "X", "z"], ["w"]), node("Cast", ["o"], ["f"], to=1),
                                 node("Add", ["w", "f"])], {"z": np.float32(0.0), "h": np.float32(0.5)}),
    ("shape_arith_range_tile", 15, [node("Shape", ["X"], ["s"], start=-1), node("Cast", ["s"], ["sf"], to=7),
                                    node("Squeeze", ["sf", "zero"], ["w"]),
                                    node("Range", ["zero_s", "w", "one"], ["r"]), node("Cast", ["r"], ["rf"], to=1),
                                    node("Tile", ["rf", "rep"], ["t"]), node("Div", ["t", "ten"], ["q"]),
                                    node("Add", ["X", "q"])],
     {"zero": np.int64([0]), "zero_s": np.int64(0), "one": np.int64(1), "rep": np.int64([1]),
      "ten": np.float32(10.0)}),
    ("int_div_truncates", 13, [node("Shape", ["X"], ["s"]), node("Neg", ["s"], ["n"]), node("Div", ["n", "k"], ["d"]),
                               node("Cast", ["d"], ["f"], to=1), node("ReduceSum", ["f", "ax"], ["r"], keepdims=0),
                               node("Add", ["X", "r"])], {"k": np.int64(4), "ax": np.int64([0])}),
    ("constant_of_shape_expand_castlike", 15,
     [node("Shape", ["X"], ["s"]), node("ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(np.int64([3]))),
      node("CastLike", ["c", "X"], ["f"]), node("Expand", ["bias", "s"], ["e"]), node("Mul", ["f", "e"], ["m"]),
      node("Add", ["X", "m"])], {"bias": _w(3, 1, 1)}),
    ("constant_forms", 13, [node("Constant", [], ["a"], value_floats=[0.5, 1.0, 2.0]),
                            node("Constant", [], ["b"], value_float=3.0), node("Mul", ["a", "b"], ["c"]),
                            node("Constant", [], ["s"], value_ints=[3, 1, 1]), node("Reshape", ["c", "s"], ["r"]),
                            node("Add", ["X", "r"])], {}),
    ("size_identity_dropout", 13, [node("Size", ["X"], ["n"]), node("Cast", ["n"], ["f"], to=1),
                                   node("Identity", ["X"], ["i"]), node("Dropout", ["i"], ["d"]),
                                   node("Div", ["d", "f"])], {}),
    ("attention_fused", 13, [node("Transpose", ["X"], ["k"], perm=[0, 1, 3, 2]), node("MatMul", ["X", "k"], ["s"]),
                             node("Softmax", ["s"], ["p"], axis=-1), node("MatMul", ["p", "X"])], {}),
    ("attention_shapes_not_fused_form", 13, [node("MatMul", ["X", "w"], ["s"]), node("Softmax", ["s"], ["p"]),
                                             node("MatMul", ["p", "u"])], {"w": _w(11, 5), "u": _w(5, 7)}),
    ("attention_scores_also_output", 13, [node("Transpose", ["X"], ["k"], perm=[0, 1, 3, 2]),
                                          node("MatMul", ["X", "k"], ["s"]), node("Softmax", ["s"], ["p"]),
                                          node("MatMul", ["p", "X"], ["o"]), node("ReduceMax", ["s"], ["r"], axes=[3]),
                                          node("Add", ["o", "r"])], {}),
    ("concat_mixed_layouts", 13, [node("Conv", ["X", "w"], ["c"]), node("Concat", ["c", "X", "c"], axis=1)],
     {"w": _w(2, 3, 1, 1)}),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_matches_onnxruntime(case):
    _, opset, nodes, inits = case
    check(make(nodes, opset, inits))
