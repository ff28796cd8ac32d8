"""EfficientNet-Lite0 forward speed, XLA:CPU against torch, layer by layer (issue 13 item 4).

Sections (each printed as a Markdown table; the load average is printed with them):
  blocks      per MBConv block, seconds per call at each batch size, XLA (the zoo module,
              real weights, jitted) vs torch (`efficientnet-lite-pytorch`, .venv-bench, via
              `profile_lite0_torch.py`), and both whole models (torch also under bf16 autocast).
  batches     XLA whole-model images/s at several batch sizes.
  flags       XLA whole-model images/s under XLA_FLAGS variants (one subprocess each).
  pointwise   one 1x1 conv (the bulk of Lite0's FLOPs) as `lax.conv` vs `dot_general`,
              f32 vs bf16 inputs with f32 accumulation, under the default flags.
Timings are medians of --reps calls after a warm-up; compare ratios within one run.

  .venv/bin/python tools/profile_lite0.py --sections blocks,batches,flags,pointwise
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

ROOT = Path(__file__).resolve().parents[1]
FLAG_VARIANTS = {
    "default": "",
    "onednn dot,eltwise": "--xla_cpu_experimental_onednn_fusion_type=dot,eltwise",
    "xnn dot,eltwise,reduce": "--xla_cpu_experimental_xnn_fusion_type=dot,eltwise,reduce",
    "ynn dot,eltwise,reduce": "--xla_cpu_experimental_ynn_fusion_type=dot,eltwise,reduce",
    "fast math": "--xla_cpu_enable_fast_math=true",
    "vector width 512": "--xla_cpu_prefer_vector_width=512",
}

FLAGS = flags.FLAGS
flags.DEFINE_list("sections", ["blocks", "batches", "flags", "pointwise"], "What to profile.")
flags.DEFINE_list("batches", ["16", "64"], "Batch sizes for the blocks section.")
flags.DEFINE_list("throughput_batches", ["1", "16", "32", "64"], "Batch sizes for the batches section.")
flags.DEFINE_integer("flags_batch", 16, "Batch size for the flags section.")
flags.DEFINE_integer("reps", 3, "Timed calls per measurement (median).")
flags.DEFINE_string("venv", str(ROOT / ".venv-bench"), "The torch environment (tools/bench_env.py).")
flags.DEFINE_bool("throughput_only", False, "Internal: print whole-model images/s at --flags_batch as JSON.")


def timed(fn, reps: int) -> float:
    """Median seconds of fn() (blocked until ready) over reps calls after one warm-up."""
    import jax

    jax.block_until_ready(fn())
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def lite0():
    from rexjax import models

    return models.load("efficientnet_lite0")


def block_fns(model):
    """[(jitted block i, input shape [H, W, C])] for every MBConv block of Lite0."""
    import jax
    import jax.numpy as jnp

    from rexjax.models.efficientnet_lite import MBConv, block_configs

    out, shape = [], (1, 112, 112, 32)  # the stem's output at 224 px
    for i, cfg in enumerate(block_configs(1.0, 1.0)):
        v = {col: tree[f"blocks_{i}"] for col, tree in model.variables.items() if f"blocks_{i}" in tree}
        fn = jax.jit(lambda x, v=v, cfg=cfg: MBConv(cfg, "same").apply(v, x))
        out.append((fn, shape[1:]))
        shape = jax.eval_shape(fn, jnp.zeros(shape, jnp.float32)).shape
    return out


def torch_blocks(batches: list[int], shapes: list, reps: int) -> dict:
    req = {"batches": batches, "reps": reps, "block_inputs": [list(s) for s in shapes]}
    python = Path(FLAGS.venv) / "bin" / "python"
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.mmap_threshold=2147483647:glibc.malloc.trim_threshold=4294967295")
    out = subprocess.run([str(python), str(ROOT / "tools" / "profile_lite0_torch.py")], input=json.dumps(req),
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


def section_blocks(model, reps: int) -> str:
    import jax
    import jax.numpy as jnp

    batches = [int(b) for b in FLAGS.batches]
    blocks = block_fns(model)
    torch_res = torch_blocks(batches, [s for _, s in blocks], reps)
    lines = [f"torch {torch_res['torch']}, {torch_res['threads']} threads; jax {jax.__version__}", "",
             "| part | " + " | ".join(f"XLA s (b{b}) | torch s (b{b}) | XLA/torch (b{b})" for b in batches) + " |",
             "| --- " * (1 + 3 * len(batches)) + "|"]
    rows: dict[str, list[str]] = {}
    for b in batches:
        t = torch_res["batches"][str(b)]
        key = jax.random.key(0)
        for i, (fn, shape) in enumerate(blocks):
            x = jax.random.normal(key, (b,) + tuple(shape), jnp.float32)
            s = timed(lambda: fn(x), reps)
            rows.setdefault(f"block {i} {tuple(shape)}", []).append(f"{s:.4f} | {t['blocks'][i]:.4f} | {s / t['blocks'][i]:.2f}")
        xb = jax.random.normal(key, (b, 224, 224, 3), jnp.float32)
        s = timed(lambda: model(xb), reps)
        rows.setdefault("whole model f32", []).append(f"{s:.4f} | {t['model_f32']:.4f} | {s / t['model_f32']:.2f}")
        rows.setdefault("whole model, torch bf16 autocast", []).append(
            f"{s:.4f} | {t['model_bf16_autocast']:.4f} | {s / t['model_bf16_autocast']:.2f}")
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows.items()]
    return "\n".join(lines)


def throughput(model, batch: int, reps: int) -> float:
    import jax
    import jax.numpy as jnp

    x = jax.random.normal(jax.random.key(0), (batch, 224, 224, 3), jnp.float32)
    return batch / timed(lambda: model(x), reps)


def section_batches(model, reps: int) -> str:
    lines = ["| batch | XLA images/s |", "| --- | --- |"]
    lines += [f"| {b} | {throughput(model, int(b), reps):.1f} |" for b in FLAGS.throughput_batches]
    return "\n".join(lines)


def section_flags(reps: int) -> str:
    lines = [f"| XLA_FLAGS | images/s (batch {FLAGS.flags_batch}) |", "| --- | --- |"]
    for name, value in FLAG_VARIANTS.items():
        env = dict(os.environ, XLA_FLAGS=value)
        out = subprocess.run([sys.executable, __file__, "--throughput_only", f"--flags_batch={FLAGS.flags_batch}",
                              f"--reps={reps}"], capture_output=True, text=True, env=env)
        if out.returncode != 0:
            cell = "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1][:120]
        else:
            cell = f"{json.loads(out.stdout.strip().splitlines()[-1])['images_per_s']:.1f}"
        lines.append(f"| {name}: `{value}` | {cell} |")
    return "\n".join(lines)


def section_pointwise(reps: int) -> str:
    import jax
    import jax.numpy as jnp
    from jax import lax

    lines = ["| 1x1 conv (batch 16) | f32 conv s | f32 dot s | bf16 conv s | bf16 dot s |", "| --- | --- | --- | --- | --- |"]
    key = jax.random.key(0)
    for h, cin, cout in ((112, 16, 96), (56, 144, 24), (28, 40, 240), (14, 480, 80), (7, 320, 1280)):
        x = jax.random.normal(key, (16, h, h, cin), jnp.float32)
        w = jax.random.normal(key, (1, 1, cin, cout), jnp.float32)

        def conv(x, w):
            return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            preferred_element_type=jnp.float32)

        def dot(x, w):
            return lax.dot_general(x, w[0, 0], (((3,), (0,)), ((), ())), preferred_element_type=jnp.float32)

        cells = []
        for dtype in (jnp.float32, jnp.bfloat16):
            for f in (conv, dot):
                fj = jax.jit(f)
                xa, wa = x.astype(dtype), w.astype(dtype)
                cells.append(f"{timed(lambda: fj(xa, wa), reps):.4f}")
        lines.append(f"| {h}x{h}x{cin} -> {cout} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    if FLAGS.throughput_only:
        print(json.dumps({"images_per_s": throughput(lite0(), FLAGS.flags_batch, FLAGS.reps)}))
        return 0
    reps = FLAGS.reps
    print(f"# Lite0 profile, {os.cpu_count()} CPUs, load average at start {os.getloadavg()}")
    model = lite0()
    sections = {"blocks": lambda: section_blocks(model, reps), "batches": lambda: section_batches(model, reps),
                "flags": lambda: section_flags(reps), "pointwise": lambda: section_pointwise(reps)}
    for name in FLAGS.sections:
        print(f"\n## {name}\n\n{sections[name]()}\n\nload average {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    app.run(main)
