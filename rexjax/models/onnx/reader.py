"""Safe reader of untrusted ONNX model files: `read_model(path) -> onnx.ModelProto`.

Threat model (files come from anywhere): reading a model never follows it outside its own
folder, never reads anything but regular files, never allocates much more than the file
and the tensors it declares (within the caps below), and every failure is one
`OnnxFileError` (a ValueError) whose message is one line, `<file>: <problem>`. Concretely:

* **Files.** The model and every external data file are opened non-blocking and checked on
  the open descriptor (`fstat`): a directory, FIFO, socket or device is refused unread (a
  FIFO would block, a device never ends). The model is at most `MAX_MODEL_BYTES` (protobuf's
  own limit for one message) and is read in `CHUNK`-byte steps, no further than the size
  checked.
* **Protobuf before parsing.** Protobuf allocates per element it decodes: an empty message
  takes two bytes of file and ~150 bytes of memory. So the wire format is walked first
  (`_scan`, a few lines of varint decoding, guided by onnx's own descriptors; nothing is
  allocated per element) and the file is refused when it holds more than `MAX_ITEMS`
  messages and repeated strings, more than `MAX_NODES` nodes or `MAX_TENSORS` tensors, nests
  messages deeper than `MAX_DEPTH`, or is not well-formed wire format (a field running past
  its message, a group, an overlong varint). Only then `ModelProto.ParseFromString` runs:
  the worst case is ~150 MB for a file of `MAX_ITEMS` empty messages; besides, bytes and
  strings take their own size, and packed integers (`int32_data`, `int64_data`, dims) 4 to
  8 bytes per element, i.e. at most 8x the bytes they occupy in the file.
* **Tensors** (initializers and every TENSOR/TENSORS attribute, the Constant node's `value`
  among them): a data type of `DTYPES` only (a string tensor or any other type is refused by
  its type name), at most `MAX_NDIM` dims, none negative, at most `MAX_ELEMENTS` elements,
  and exactly one source of exactly the declared bytes: `raw_data`, the one typed field of
  its type (`float_data`, `int32_data`, ...) with one entry per element, or external data.
  All tensors together are at most `MAX_DATA_BYTES`, checked before any external byte is
  read. Sparse tensors, segmented tensors, subgraphs (If/Loop/Scan: "control flow is not
  supported"), model-local functions, training info and nodes of a domain other than the
  default one are refused.
* **External data** (`data_location == EXTERNAL`; keys location, offset, length, checksum,
  nothing else): the location is a relative path that, after resolving symlinks, lies inside
  the model's folder (`os.path.realpath` of the folder the caller's path names); the file is
  a regular file (the checks above); offset + length lies inside it; the length is what the
  dims and type need (an absent length means exactly that); a checksum is the SHA-1 of
  those bytes. The bytes are read by this module (onnx's `load_external_data_for_model`
  follows any path it is given) in `CHUNK`-byte steps, one file open at a time, and moved
  into the tensor's `raw_data`: the model returned holds every tensor in memory.
* **Graph.** Every value is produced once (a graph input, an initializer, or one node
  output; an initializer may also be listed as a graph input, as IR < 4 models do); every
  node input and graph output is produced by something; the nodes form no cycle (Kahn's
  algorithm; a node consuming its own output is one). The model returned lists its nodes in
  topological order (the file's order when it already is one, as ONNX requires): a consumer
  may evaluate them in sequence.

Hash: `read_model_and_sha256` also returns the SHA-256 of exactly the bytes it read and
parsed, the model file's and then each external data range's in the order read (a model's
identity covers the weights kept in external data; `OnnxModel.sha256`). `sort_graph` runs
the graph checks on a graph built in memory (the compiler's one topological order).

Not closed: a directory of the model's folder swapped for a symlink between the path check
and the open of an external file (a race needing write access to the folder meanwhile).
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import os

import onnx
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from rexjax.io import NotRegularFile, display_name, open_regular

MAX_MODEL_BYTES = (2 << 30) - 1  # protobuf's limit for one message; larger models need external data
MAX_DATA_BYTES = 4 << 30  # all tensors together (embedded + external)
MAX_ELEMENTS = 1 << 31  # one tensor
MAX_NDIM = 32  # one tensor
MAX_NODES = 100_000
MAX_TENSORS = 100_000  # initializers + tensor attributes
MAX_ITEMS = 1_000_000  # messages + repeated strings in the whole file
MAX_DEPTH = 32  # message nesting (a model without subgraphs nests at most ~10 deep)
CHUNK = 1 << 20  # bytes read per step

T = onnx.TensorProto
DTYPES = {T.FLOAT: 4, T.FLOAT16: 2, T.BFLOAT16: 2, T.DOUBLE: 8, T.INT64: 8, T.INT32: 4, T.INT8: 1, T.UINT8: 1,
          T.BOOL: 1}  # the supported data types -> bytes per element
_TYPED = {T.FLOAT: "float_data", T.DOUBLE: "double_data", T.INT64: "int64_data"}  # others: int32_data
_TYPED_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")
_EXTERNAL_KEYS = ("location", "offset", "length", "checksum")
_DOMAINS = ("", "ai.onnx")
A = onnx.AttributeProto
_REFUSED_ATTRIBUTES = {A.GRAPH: "control flow is not supported", A.GRAPHS: "control flow is not supported",
                       A.SPARSE_TENSOR: "sparse tensors are not supported",
                       A.SPARSE_TENSORS: "sparse tensors are not supported"}


class OnnxFileError(ValueError):
    """An ONNX model file (or its external data) that cannot be read safely; the message is
    one line naming the file and the problem."""


class _Refused(Exception):
    """A problem found inside the file; `read_model` prefixes the file's name."""


def _name(value: str | bytes, limit: int = 80) -> str:
    """A name from the file as short printable text (protobuf hands back bytes for non-UTF-8)."""
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text)


def _open_regular(path: str, what: str, flags: int = 0) -> int:
    """`io.open_regular`'s descriptor of `path` (anything but a regular file refused unread)."""
    try:
        return open_regular(path, flags)
    except FileNotFoundError:
        raise _Refused(f"{what} does not exist") from None
    except NotRegularFile as e:
        raise _Refused(f"{what} is {e.kind}, not a regular file") from None
    except OSError as e:
        raise _Refused(f"{what} cannot be read ({e.strerror or e})") from None


def _read(fd: int, offset: int, length: int, what: str, digest) -> bytes:
    """`length` bytes of `fd` from `offset`, in CHUNK-byte steps, each fed to `digest` (a
    hashlib object) as it is read."""
    parts, done = [], 0
    while done < length:
        part = os.pread(fd, min(CHUNK, length - done), offset + done)
        if not part:
            raise _Refused(f"{what} ended after {done} of {length} bytes (changed while read?)")
        digest.update(part)
        parts.append(part)
        done += len(part)
    return b"".join(parts)


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 70:
        if pos >= end:
            raise _Refused(f"not an ONNX model (truncated protobuf field at byte {pos})")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _Refused(f"not an ONNX model (overlong varint at byte {pos})")


_COUNTED = {"onnx.NodeProto": ("nodes", MAX_NODES), "onnx.TensorProto": ("tensors", MAX_TENSORS)}


@functools.cache
def _counted_fields(message: Descriptor) -> dict[int, Descriptor | None]:
    """Field number -> message type of `message`'s message fields, -> None for its other
    repeated fields (one protobuf allocation per length-delimited entry)."""
    return {f.number: f.message_type if f.type == FieldDescriptor.TYPE_MESSAGE else None
            for f in message.fields if f.type == FieldDescriptor.TYPE_MESSAGE or f.is_repeated}


def _scan(data: bytes, pos: int, end: int, message: Descriptor, counts: dict[str, int], depth: int) -> None:
    """Walks the protobuf wire format of `message` in data[pos:end] without decoding it,
    counting messages and repeated strings into `counts` (refused past the caps); refuses
    malformed wire format. Length-delimited fields of unknown numbers or scalar types are
    skipped whole."""
    if depth > MAX_DEPTH:
        raise _Refused(f"protobuf messages nest deeper than {MAX_DEPTH}")
    fields = _counted_fields(message)
    while pos < end:
        key, pos = _varint(data, pos, end)
        wire = key & 7
        if key >> 3 == 0:
            raise _Refused(f"not an ONNX model (protobuf field number 0 at byte {pos})")
        if wire == 0:
            _, pos = _varint(data, pos, end)
            continue
        if wire in (1, 5):
            pos += 8 if wire == 1 else 4
            continue
        if wire != 2:
            raise _Refused(f"not an ONNX model (protobuf wire type {wire} of field {key >> 3} at byte {pos})")
        length, pos = _varint(data, pos, end)
        if pos + length > end:
            raise _Refused(f"not an ONNX model (a protobuf field of {length} bytes runs past its message "
                           f"at byte {pos})")
        number = key >> 3
        if number in fields:
            counts["items"] = counts.get("items", 0) + 1
            if counts["items"] > MAX_ITEMS:
                raise _Refused(f"more than {MAX_ITEMS} protobuf messages and strings (limit)")
            sub = fields[number]
            if sub is not None:
                what, limit = _COUNTED.get(sub.full_name, (None, 0))
                if what is not None:
                    counts[what] = counts.get(what, 0) + 1
                    if counts[what] > limit:
                        raise _Refused(f"more than {limit} {what} (limit)")
                _scan(data, pos, pos + length, sub, counts, depth + 1)
        pos += length
    if pos != end:
        raise _Refused(f"not an ONNX model (a protobuf field runs past its message at byte {end})")


def _elements(t: onnx.TensorProto, what: str) -> int:
    if t.data_type not in DTYPES:
        type_name = T.DataType.Name(t.data_type) if t.data_type in T.DataType.values() else str(t.data_type)
        raise _Refused(f"{what} has data type {type_name} (supported: "
                       f"{', '.join(T.DataType.Name(d) for d in DTYPES)})")
    if len(t.dims) > MAX_NDIM:
        raise _Refused(f"{what} has {len(t.dims)} dims (limit {MAX_NDIM})")
    n = 1
    for d in t.dims:
        if d < 0:
            raise _Refused(f"{what} has a negative dim {d} (dims {list(t.dims)[:MAX_NDIM]})")
        n *= d
        if n > MAX_ELEMENTS:
            raise _Refused(f"{what} declares more than {MAX_ELEMENTS} elements (dims {list(t.dims)})")
    return n


def _check_tensor(t: onnx.TensorProto, what: str) -> int:
    """The bytes tensor `t` needs, once its type, dims and embedded data agree; an external
    tensor's key/value pairs are checked by `_external`."""
    n = _elements(t, what)
    nbytes = n * DTYPES[t.data_type]
    if t.HasField("segment"):
        raise _Refused(f"{what} is segmented (not supported)")
    typed = _TYPED.get(t.data_type, "int32_data")
    present = [f for f in _TYPED_FIELDS if len(getattr(t, f))] + (["raw_data"] if t.HasField("raw_data") else [])
    if t.data_location == T.EXTERNAL:
        if present:
            raise _Refused(f"{what} has external data and {present[0]}")
        return nbytes
    if t.data_location != T.DEFAULT:
        raise _Refused(f"{what} has data location {t.data_location}")
    if t.external_data:
        raise _Refused(f"{what} has external data keys but its data location is not EXTERNAL")
    if len(present) > 1 or (present and present[0] not in ("raw_data", typed)):
        raise _Refused(f"{what} of type {T.DataType.Name(t.data_type)} holds {' and '.join(present)}")
    if present == [typed]:
        if len(getattr(t, typed)) != n:
            raise _Refused(f"{what} declares dims {list(t.dims)} ({n} elements) but {typed} holds "
                           f"{len(getattr(t, typed))}")
    elif len(t.raw_data) != nbytes:  # no data at all holds 0 bytes
        raise _Refused(f"{what} declares dims {list(t.dims)} ({nbytes} bytes) but holds {len(t.raw_data)} bytes")
    return nbytes


def _tensors(graph: onnx.GraphProto):
    """(tensor, description) of every initializer and tensor attribute of `graph`."""
    for t in graph.initializer:
        yield t, f"initializer {_name(t.name)}"
    for i, node in enumerate(graph.node):
        for attr in node.attribute:
            where = f"attribute {_name(attr.name)} of node {_name(node.name or node.op_type)} (#{i})"
            if attr.type == A.TENSOR or attr.HasField("t"):
                yield attr.t, where
            for j, t in enumerate(attr.tensors):
                yield t, f"tensor {j} of {where}"


def _check_graph(graph: onnx.GraphProto) -> None:
    """Values produced once, every input produced, no cycle; nodes of the default domain
    without subgraphs or sparse attributes. Puts the nodes in topological order (Kahn's
    algorithm, the lowest index first: a file already in order keeps its order)."""
    if graph.sparse_initializer:
        raise _Refused("sparse initializers are not supported")
    producer: dict[str | bytes, int] = {}  # value -> producing node index (-1: graph input or initializer)
    for t in graph.initializer:
        if t.name in producer:
            raise _Refused(f"initializer {_name(t.name)} is defined twice")
        producer[t.name] = -1
    initializers = set(producer)
    for v in graph.input:
        if v.name in producer and v.name not in initializers:
            raise _Refused(f"graph input {_name(v.name)} is declared twice")
        producer[v.name] = -1
    for i, node in enumerate(graph.node):
        where = f"node {_name(node.name or node.op_type)} (#{i})"
        if node.domain not in _DOMAINS:
            raise _Refused(f"{where} is an op of the custom domain {_name(node.domain)} (only the default ONNX domain)")
        for attr in node.attribute:
            if (attr.type in _REFUSED_ATTRIBUTES or attr.HasField("g") or attr.graphs or attr.HasField("sparse_tensor")
                    or attr.sparse_tensors):
                problem = _REFUSED_ATTRIBUTES.get(attr.type, "control flow is not supported")
                raise _Refused(f"{where} has a subgraph or sparse attribute {_name(attr.name)}: {problem}")
        for out in node.output:
            if out == "":
                continue
            if out in producer:
                raise _Refused(f"value {_name(out)} is produced twice (again by {where})")
            producer[out] = i
    consumers: list[list[int]] = [[] for _ in graph.node]
    waiting = [0] * len(graph.node)
    for i, node in enumerate(graph.node):
        for name in set(node.input) - {""}:
            if name not in producer:
                raise _Refused(f"node {_name(node.name or node.op_type)} (#{i}) consumes {_name(name)}, "
                               "which nothing produces")
            if producer[name] >= 0:
                consumers[producer[name]].append(i)
                waiting[i] += 1
    for v in graph.output:
        if v.name not in producer:
            raise _Refused(f"graph output {_name(v.name)} is produced by nothing")
    ready = [i for i, w in enumerate(waiting) if w == 0]  # a heap: the file's order whenever it is topological
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in consumers[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) < len(graph.node):
        i = next(i for i, w in enumerate(waiting) if w)
        node = graph.node[i]
        raise _Refused(f"the graph has a cycle through node {_name(node.name or node.op_type)} (#{i})")
    if order != sorted(order):
        nodes = [onnx.NodeProto() for _ in order]
        for node, i in zip(nodes, order):
            node.CopyFrom(graph.node[i])
        del graph.node[:]
        graph.node.extend(nodes)


def _external(t: onnx.TensorProto, what: str, folder: str) -> tuple[str, int, int, str | None]:
    """(resolved path, offset, length, sha1 or None) of an external tensor's data, its path
    inside `folder` (a realpath) and its length what the tensor needs."""
    entries: dict[str, str] = {}
    for e in t.external_data:
        if e.key not in _EXTERNAL_KEYS or e.key in entries:
            raise _Refused(f"{what} has an {'unknown' if e.key not in _EXTERNAL_KEYS else 'repeated'} "
                           f"external data key {_name(e.key)}")
        if isinstance(e.value, bytes):
            raise _Refused(f"{what} has an external data {e.key} that is not UTF-8 text")
        entries[e.key] = e.value
    location = entries.get("location", "")
    if not location or "\0" in location:
        raise _Refused(f"{what} has an external data location {_name(location)} (not a file name)")
    if os.path.isabs(location):
        raise _Refused(f"{what} has an absolute external data location {_name(location)} "
                       "(must be relative to the model)")
    resolved = os.path.realpath(os.path.join(folder, location))
    if os.path.commonpath([folder, resolved]) != folder:
        raise _Refused(f"{what} has an external data location {_name(location)} that leads out of the model's folder")
    numbers = {}
    for key in ("offset", "length"):
        text = entries.get(key)
        if text is not None and not (text.isascii() and text.isdigit() and len(text) <= 20):
            raise _Refused(f"{what} has an external data {key} {_name(text)} (not a non-negative integer)")
        numbers[key] = None if text is None else int(text)
    need = _elements(t, what) * DTYPES[t.data_type]
    length = need if numbers["length"] is None else numbers["length"]
    if length != need:
        raise _Refused(f"{what} declares dims {list(t.dims)} ({need} bytes) but its external data length is {length}")
    checksum = entries.get("checksum")
    if checksum is not None and not (len(checksum) == 40 and all(c in "0123456789abcdefABCDEF" for c in checksum)):
        raise _Refused(f"{what} has an external data checksum {_name(checksum)} (not a SHA-1)")
    return resolved, numbers["offset"] or 0, length, checksum and checksum.lower()


def _load_external(model: onnx.ModelProto, folder: str, digest) -> None:
    """Reads every external tensor's bytes into its raw_data, one data file open at a time
    (each byte read fed to `digest`)."""
    by_file: dict[str, list] = {}
    for t, what in _tensors(model.graph):
        if t.data_location == T.EXTERNAL:
            path, offset, length, checksum = _external(t, what, folder)
            by_file.setdefault(path, []).append((t, what, offset, length, checksum))
    for path, tensors in by_file.items():
        label = f"external data file {_name(display_name(os.path.relpath(path, folder)))}"
        fd = _open_regular(path, label, os.O_NOFOLLOW)
        try:
            size = os.fstat(fd).st_size
            for t, what, offset, length, checksum in tensors:
                if offset + length > size:
                    raise _Refused(f"{what} wants bytes {offset}..{offset + length} of {label}, which holds {size}")
                data = _read(fd, offset, length, label, digest)
                if checksum is not None and hashlib.sha1(data).hexdigest() != checksum:
                    raise _Refused(f"{what} fails its SHA-1 checksum in {label}")
                t.raw_data = data
                del t.external_data[:]
                t.data_location = T.DEFAULT
        finally:
            os.close(fd)


def _parse(data: bytes, folder: str, digest) -> onnx.ModelProto:
    counts: dict[str, int] = {}
    _scan(data, 0, len(data), onnx.ModelProto.DESCRIPTOR, counts, 0)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError, whatever the backend
        raise _Refused(f"not an ONNX model (protobuf: {' '.join(str(e).split())[:200]})") from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise _Refused("not an ONNX model (no IR version or no graph)")
    if model.functions:
        raise _Refused(f"the model defines {len(model.functions)} local functions (not supported)")
    if model.training_info:
        raise _Refused("the model holds training info (not supported)")
    _check_graph(model.graph)
    total = 0
    for t, what in _tensors(model.graph):
        total += _check_tensor(t, what)
        if total > MAX_DATA_BYTES:
            raise _Refused(f"the tensors declare more than {MAX_DATA_BYTES} bytes (limit)")
    _load_external(model, folder, digest)
    return model


def read_model(path: str | os.PathLike) -> onnx.ModelProto:
    """The ONNX model at `path`, checked (module docstring) and with every tensor's bytes in
    memory (external data read into raw_data). Raises OnnxFileError, one line
    `<path>: <problem>`, for anything else."""
    return read_model_and_sha256(path)[0]


def read_model_and_sha256(path: str | os.PathLike) -> tuple[onnx.ModelProto, str]:
    """`read_model(path)` and the SHA-256 (hex) of exactly the bytes it parsed: the model
    file, then each external data range in the order it was read (so it covers the weights
    kept in external data, and is computed from the same reads as the model)."""
    shown = display_name(path)
    digest = hashlib.sha256()
    try:
        path = os.fspath(path)
        folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        fd = _open_regular(path, "the model file")
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise _Refused("the model file is empty")
            if size > MAX_MODEL_BYTES:
                raise _Refused(f"the model file is {size} bytes (limit {MAX_MODEL_BYTES}; larger models keep "
                               "their weights in external data)")
            data = _read(fd, 0, size, "the model file", digest)
        finally:
            os.close(fd)
        return _parse(data, folder, digest), digest.hexdigest()
    except _Refused as e:
        raise OnnxFileError(f"{shown}: {e}") from None
    except (MemoryError, RecursionError):
        raise
    except Exception as e:  # anything a crafted file provokes is reported as one clear error
        raise OnnxFileError(f"{shown}: not a readable ONNX model ({type(e).__name__}: "
                            f"{' '.join(str(e).split())[:300]})") from e


def sort_graph(graph: onnx.GraphProto, source: str) -> None:
    """The graph checks of `read_model` (module doc, "Graph") on a graph built in memory, its
    nodes put in topological order in place (unchanged when already in order); the compiler
    calls it, so a graph that did not come through `read_model` is ordered the same way.
    OnnxFileError `<source>: <problem>` otherwise."""
    try:
        _check_graph(graph)
    except _Refused as e:
        raise OnnxFileError(f"{source}: {e}") from None
