"""The ReX tool (rex-xai 0.4.1) and rexjax side by side on the same 1-D and 3-D ONNX
classifiers, in one run on one machine.

Models (trained here for a few seconds with torch in the export venv, `.venv-export`, on a
synthetic task with a planted signal, exported by the dynamo exporter at opset 18 with a
dynamic batch axis; `--export DIR` is that step):
  * signal.onnx, input [batch, 1, 128] (the layout of the tool's DNA model): class 1 when a
    Gaussian bump (height 3, sd 2 samples) is planted on N(0, 0.5^2) noise; Conv1d-ReLU-
    MaxPool-Conv1d-ReLU-global max pool-Linear;
  * volume.onnx, input [batch, 1, 16, 16, 16]: class 1 when a bright 3x3x3 cube (+2) is
    planted in the noise; the same pattern in 3-D;
  * volume_dhw.onnx: volume.onnx with the channel axis added inside ([batch, 16, 16, 16]),
    the only volume layout the tool's voxel mode reads (its `Data` takes a 4-axis model shape
    as [batch, D, H, W]); given to the tool only when it refuses volume.onnx.
Inputs: 5 signals and 3 volumes of class 1 (numpy, fixed seeds, `signals` / `volumes`).

For each input, in alternating order:
  * the tool in its torch worker (`tool_worker.py`, op "explain_array", the venv
    `tool_env` builds): `--mode spectral` / `voxel` through its ONNX prediction function
    (onnxruntime CPU, gpu=False), its defaults (CausalArgs()), mask value 0, batch 64;
  * rexjax in this process: `rexjax.models.load(file)` and ReX with the default config,
    mask value 0, compiled once per model before the timed runs (the first call reported
    apart).
Writes README.md (setting, load, table), results.json (every row and fact), provenance.json
and the models into --out. Columns: seconds per input, forward passes (inputs given to the
model, counted as
`benchmarks.compare` does: the tool's prediction function wrapped, rexjax's own count),
explanation size (fraction of elements), and whether the explanation alone (the rest 0)
keeps the target as top-1 under onnxruntime (this process, the same file). A tool error is
recorded with its line as the result.

  .venv/bin/python -m benchmarks.side_by_side_nd --out benchmarks/results/side_by_side_nd/DATE-cpu
  .venv/bin/python -m benchmarks.side_by_side_nd --signals 1 --volumes 1 --tool_iters 1 --rex_iters 1   # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LENGTH, SIZE = 128, 16  # signal samples; volume side
TRAIN_STEPS = 300
MODES = {"signal": "spectral", "volume": "voxel"}


def signals(rng, n: int, planted=None):
    """(x f32[n, 1, LENGTH], y int[n]): noise N(0, 0.5^2), class 1 with a bump of height 3
    (sd 2 samples) at a position uniform in [8, LENGTH - 8); `planted` forces the class."""
    x = rng.standard_normal((n, 1, LENGTH)).astype(np.float32) * 0.5
    y = rng.integers(0, 2, n) if planted is None else np.full(n, planted)
    pos = rng.integers(8, LENGTH - 8, n)
    t = np.arange(LENGTH)
    for i in np.flatnonzero(y == 1):
        x[i, 0] += 3.0 * np.exp(-0.5 * ((t - pos[i]) / 2.0) ** 2)
    return x, y


def volumes(rng, n: int, planted=None):
    """(x f32[n, 1, SIZE, SIZE, SIZE], y int[n]): noise N(0, 0.5^2), class 1 with a 3x3x3
    cube of +2 at a uniform corner."""
    x = rng.standard_normal((n, 1, SIZE, SIZE, SIZE)).astype(np.float32) * 0.5
    y = rng.integers(0, 2, n) if planted is None else np.full(n, planted)
    for i in np.flatnonzero(y == 1):
        d, h, w = rng.integers(0, SIZE - 3, 3)
        x[i, 0, d:d + 3, h:h + 3, w:w + 3] += 2.0
    return x, y


# --- the export step (run in .venv-export: torch, onnx, onnxscript) ------------------------------


def export_models(folder: Path) -> None:
    """Trains the two CNNs (Adam 1e-2, TRAIN_STEPS batches of 64, seed 0) and exports
    signal.onnx, volume.onnx, volume_dhw.onnx into `folder`; prints the held-out accuracy."""
    import onnx
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Net(nn.Module):
        """conv-relu-maxpool(2), conv-relu, global max pool, linear(8 -> 2); `inside`: the
        input has no channel axis (added first)."""

        def __init__(self, c1, c2, pools, inside=False):
            super().__init__()
            self.c1, self.c2, self.fc, self.pools, self.inside = c1, c2, nn.Linear(8, 2), pools, inside

        def forward(self, x):
            x = x.unsqueeze(1) if self.inside else x
            x = self.pools[0](F.relu(self.c1(x)), 2)
            return self.fc(torch.flatten(self.pools[1](F.relu(self.c2(x)), 1), 1))

    torch.manual_seed(0)
    torch.set_num_threads(1)
    folder.mkdir(parents=True, exist_ok=True)
    specs = (("signal", lambda: (nn.Conv1d(1, 8, 7, padding=3), nn.Conv1d(8, 8, 5, padding=2)),
              (F.max_pool1d, F.adaptive_max_pool1d), signals),
             ("volume", lambda: (nn.Conv3d(1, 4, 3, padding=1), nn.Conv3d(4, 8, 3, padding=1)),
              (F.max_pool3d, F.adaptive_max_pool3d), volumes))
    for name, convs, pools, data in specs:
        rng = np.random.default_rng(0)
        net = Net(*convs(), pools)
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        for _ in range(TRAIN_STEPS):
            x, y = data(rng, 64)
            loss = F.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        x, y = data(np.random.default_rng(1), 500)
        with torch.no_grad():
            acc = float((net(torch.from_numpy(x)).argmax(1).numpy() == y).mean())
        print(json.dumps({"model": name, "held_out_accuracy": acc, "final_loss": float(loss.item())}))
        exports = [(name, net, x[:2])]
        if name == "volume":
            inside = Net(*convs(), pools, inside=True)
            inside.load_state_dict(net.state_dict())
            exports.append(("volume_dhw", inside.eval(), x[:2, 0]))
        for file, module, sample in exports:
            path = str(folder / f"{file}.onnx")
            torch.onnx.export(module, (torch.from_numpy(sample),), path, dynamo=True, opset_version=18,
                              dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False,
                              input_names=["input"], output_names=["logits"])
            proto = onnx.load(path)  # without the exporter's stack traces (this machine's paths)
            for item in [proto, *proto.graph.node, *proto.graph.input, *proto.graph.output, *proto.graph.initializer,
                         *proto.graph.value_info]:
                item.ClearField("metadata_props")
            onnx.save(proto, path)


# --- the run (rexjax's environment) ---------------------------------------------------------------


def ort_top1(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0].argmax(-1)


def sufficient(path: Path, x: np.ndarray, mask: np.ndarray, target: int) -> bool:
    """x f32[1, *S] (one example in the file's layout: one channel first), mask bool[*S]: the
    explanation alone (the rest 0) keeps `target` as top-1 under onnxruntime."""
    return bool(mask.any()) and int(ort_top1(path, np.where(mask[None], x, 0.0)[None].astype(np.float32))[0]) == target


def run_tool(worker, mode: str, x_tool: np.ndarray, seed: int, tool_args: dict, tmp: Path) -> dict:
    """The tool on x_tool (its own layout); {"error": line} when it fails."""
    np.save(tmp / "tool_x.npy", x_tool)
    try:
        a = worker.ask({"op": "explain_array", "x": str(tmp / "tool_x.npy"), "mode": mode, "out": str(tmp / "t.npz"),
                        "seed": seed, "args": tool_args})
    except RuntimeError as err:
        return {"error": str(err).splitlines()[0]}
    saved = np.load(tmp / "t.npz")
    return {**a, "mask": saved["mask"]}


def run(args) -> dict:
    from benchmarks import tool_env
    from benchmarks.runs import ToolWorker, source_state
    from rexjax import keys, models
    from rexjax.causal.config import rex_config
    from rexjax.causal.explainer import explainer_for
    from rexjax.classifier import Classifier

    out = Path(args.out)
    folder = out / "models"
    python_export = tool_env.ensure(Path(args.export_venv), tool_env.EXPORT_REQUIREMENTS)
    done = subprocess.run([str(python_export), str(Path(__file__).resolve()), "--export", str(folder)], check=True,
                          capture_output=True, text=True)
    trained = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    worker = ToolWorker(tool_env.ensure(Path(args.venv)), out / "tool_worker.log")
    config = rex_config(None, **({"iters": args.rex_iters} if args.rex_iters else {}))
    tool_args = {"iters": args.tool_iters} if args.tool_iters else {}
    facts = {"tool": worker.ask({"op": "info"}), "trained": trained, "load_start": os.getloadavg(),
             "cpus": os.cpu_count(), "rexjax_source": source_state(), "tool_args": tool_args,
             "rexjax_config": config.to_dict(), "rows": [], "models": {}}
    inputs = {"signal": signals(np.random.default_rng(11), args.signals, planted=1)[0],
              "volume": volumes(np.random.default_rng(12), args.volumes, planted=1)[0]}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for kind, xs in inputs.items():
            path = folder / f"{kind}.onnx"
            model = models.load(str(path))
            explainer = explainer_for(Classifier.of(model), config, 0.0, None)
            tool_file = path
            shape = worker.ask({"op": "onnx", "model": str(path), "norm": None, "means": None, "stds": None})
            probe = run_tool(worker, MODES[kind], xs[0, 0], args.seed, tool_args, tmp)
            if "error" in probe and kind == "volume":
                facts["models"]["volume_tool_error"] = probe["error"]
                tool_file = folder / "volume_dhw.onnx"
                shape = worker.ask({"op": "onnx", "model": str(tool_file), "norm": None, "means": None, "stds": None})
            facts["models"][kind] = {"file": path.name, "sha256": model.sha256, "input_shape": model.input_shape,
                                     "input_layout": model.input_layout, "tool_file": tool_file.name,
                                     "tool_input_shape": shape["input_shape"]}
            t = time.perf_counter()
            explainer(np.moveaxis(xs[0], 0, -1), key=keys.for_image(args.seed, f"{kind}0"))
            facts["models"][kind]["rexjax_first_call_s"] = time.perf_counter() - t
            for i, x in enumerate(xs):
                name = f"{kind}{i}"
                order = ("tool", "rexjax") if i % 2 == 0 else ("rexjax", "tool")
                for who in order:
                    row = {"input": name, "tool": who, "mode": MODES[kind]}
                    if who == "tool":
                        r = run_tool(worker, MODES[kind], x[0], args.seed, tool_args, tmp)
                        if "error" in r:
                            row["error"] = r["error"]
                        else:
                            row.update(target=r["target"], seconds=r["wall_s"], forward=r["forward_images"],
                                       size=float(r["mask"].mean()),
                                       sufficient=sufficient(path, x, r["mask"], r["target"]))
                    else:
                        ex = explainer(np.moveaxis(x, 0, -1), key=keys.for_image(args.seed, name))
                        mask = np.asarray(ex.mask).reshape(x.shape[1:])
                        row.update(target=int(ex.target), seconds=float(ex.wall_time),
                                   forward=int(ex.forward_images), size=float(mask.mean()),
                                   sufficient=sufficient(path, x, mask, int(ex.target)))
                    row["onnxruntime_top1"] = int(ort_top1(path, x[None])[0])
                    facts["rows"].append(row)
                    print(json.dumps(row), flush=True)
    facts["tool_onnx"] = worker.ask({"op": "info"})  # with the onnxruntime version
    worker.close()
    facts["load_end"] = os.getloadavg()
    return facts


def readme(facts: dict) -> str:
    """README.md of a results folder: the setting, the load, the tool's refusals, the table."""
    trained = ", ".join(f"{t['model']} {t['held_out_accuracy']:.3f}" for t in facts["trained"])
    lines = ["# ReX tool vs rexjax on 1-D and 3-D ONNX classifiers (`benchmarks/side_by_side_nd.py`)", "",
             f"rexjax {facts['rexjax_source']}, rex-xai {facts['tool_onnx']['rex_xai']} (torch "
             f"{facts['tool_onnx']['torch']}, onnxruntime {facts['tool_onnx'].get('onnxruntime')}), one run, "
             f"{facts['cpus']} CPUs. The machine is shared with other jobs and loaded (load average "
             f"{facts['load_start'][0]:.1f} at the start, {facts['load_end'][0]:.1f} at the end): the seconds "
             "are indicative only; forward passes, sizes and sufficiency do not depend on the load.", "",
             f"Models (`models/`, trained here; held-out accuracy {trained}): see the script's docstring. "
             "Both tools: mask value 0, their default settings; the tool's spectral / voxel mode through its "
             "ONNX prediction function (gpu=False); rexjax through `rexjax.models.load` on the same file. "
             "Sufficient: the explanation alone (the rest 0) keeps the target as top-1 under onnxruntime.", ""]
    for kind, m in facts["models"].items():
        if isinstance(m, dict):
            lines.append(f"- {kind}: {m['file']} (input {m['input_layout']}, sha256 {m['sha256'][:12]}); the tool "
                         f"ran {m['tool_file']} (input {m['tool_input_shape']}); rexjax's first call (compile + "
                         f"one explanation) {m['rexjax_first_call_s']:.1f} s")
    if "volume_tool_error" in facts["models"]:
        lines.append(f"- the tool's voxel mode on volume.onnx ([batch, 1, 16, 16, 16]) fails: "
                     f"`{facts['models']['volume_tool_error']}` (its `Data` reads a model shape of 4 axes as "
                     "[batch, D, H, W] and no other); it ran volume_dhw.onnx, the same network with the channel "
                     "axis added inside")
    return "\n".join(lines + ["", table(facts), ""])


def table(facts: dict) -> str:
    lines = ["| input | mode | tool | target | seconds | forward passes | size (fraction) | sufficient (onnxruntime) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in facts["rows"]:
        if "error" in r:
            lines.append(f"| {r['input']} | {r['mode']} | {r['tool']} | error: {r['error']} | | | | |")
        else:
            lines.append(f"| {r['input']} | {r['mode']} | {r['tool']} | {r['target']} | {r['seconds']:.2f} | "
                         f"{r['forward']} | {r['size']:.4f} | {r['sufficient']} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--export"]:
        export_models(Path(argv[1]))
        return
    from benchmarks import tool_env
    from benchmarks.runs import write_provenance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "out" / "side_by_side_nd"))
    parser.add_argument("--signals", type=int, default=5)
    parser.add_argument("--volumes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tool_iters", type=int, default=None, help="the tool's iterations (default its own)")
    parser.add_argument("--rex_iters", type=int, default=None, help="rexjax's iterations (default its own)")
    parser.add_argument("--venv", default=str(tool_env.DEFAULT_VENV))
    parser.add_argument("--export_venv", default=str(tool_env.EXPORT_VENV))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    facts = run(args)
    md = readme(facts)
    print(md)
    (out / "results.json").write_text(json.dumps(facts, indent=1, default=str))
    (out / "README.md").write_text(md)
    write_provenance(out, "side_by_side_nd", "side_by_side_nd", load_start=facts["load_start"],
                     load_end=facts["load_end"], tool=facts["tool_onnx"])


if __name__ == "__main__":
    main()
