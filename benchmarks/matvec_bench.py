"""Effective weight bandwidth of the Q4_0 matrix kernels on the model's real shapes, per kernel variant
(lanes per row TEAM, a parameter; rows of x per slice ROWS, a constant), from GPU timestamps: q4_matvec
(one row of x) on the decoder's matrices, q4_rows on the encoder's and decoder's with 4 rows (a live
step), 39 (the prompt) and 128 (an encoder chunk).

    python benchmarks/matvec_bench.py [--json]

Each timing is 64 back-to-back dispatches in one compute pass (as in a decode step), cycling through
copies of the matrix that together exceed the GPU's L2 cache, so weights come from memory.
"""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
import wgpu
from wgpu.backends.wgpu_native.extras import write_timestamp

from voxtral_desk.gpu import kernels as K
from voxtral_desk.gpu.device import default_device
from voxtral_desk.gpu.kernels import Kernels, empty, upload

# (name, rows n, inputs k) of the full decoder
SHAPES = [("qkv", 6144, 3072), ("wo", 3072, 4096), ("w13", 18432, 3072), ("w2", 3072, 9216), ("head", 131072, 3072)]
VARIANTS = [32, 64, 128]  # TEAM
# (name, n, k, rows of x) for q4_rows, and its variants
ROW_SHAPES = [("enc w13", 10240, 1280, 4), ("enc w13", 10240, 1280, 128), ("dec w13", 18432, 3072, 39)]
ROW_VARIANTS = [(32, 4), (64, 4), (32, 8)]  # (TEAM, ROWS)
DISPATCHES = 64
COPIES_BYTES = 512 << 20  # weights cycled through per timing: far above L2


def time_kernel(gpu, pipeline, bind_groups, grid) -> float:
    """Seconds per dispatch, best of 3."""
    qs = gpu.device.create_query_set(type="timestamp", count=2)
    buf = gpu.device.create_buffer(size=16, usage=wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC)
    best = math.inf
    for _ in range(4):  # the first round also brings the clocks up after the upload pauses
        enc = gpu.device.create_command_encoder()
        cp = enc.begin_compute_pass()
        write_timestamp(cp, qs, 0)
        cp.set_pipeline(pipeline)
        for i in range(DISPATCHES):
            cp.set_bind_group(0, bind_groups[i % len(bind_groups)])
            cp.dispatch_workgroups(*grid)
        write_timestamp(cp, qs, 1)
        cp.end()
        enc.resolve_query_set(qs, 0, 2, buf, 0)
        gpu.queue.submit([enc.finish()])
        t = np.frombuffer(gpu.queue.read_buffer(buf), dtype=np.uint64)
        best = min(best, float(t[1] - t[0]) * 1e-9 / DISPATCHES)
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    gpu = default_device()
    kernels = Kernels(gpu)
    rng = np.random.default_rng(0)
    results = []
    cases = [(name, n, k, 1, "q4_matvec", t, {"ROWS": 1}) for name, n, k in SHAPES for t in VARIANTS]
    cases += [(name, n, k, m, "q4_rows", t, {"ROWS": rows}) for name, n, k, m in ROW_SHAPES for t, rows in ROW_VARIANTS]
    mats, mats_key = [], None
    for name, n, k, m, kernel, team, consts in cases:
        nb = k // 32
        nbytes = n * nb * 20
        if mats_key != (n, k):
            copies = max(1, min(16, COPIES_BYTES // nbytes))
            mats = [(upload(gpu, rng.integers(0, 2**32, (n, nb * 4), dtype=np.uint32)),  # layout: weights.interleave_q4
                     upload(gpu, (rng.standard_normal((n, nb)) * 0.01).astype(np.float32))) for _ in range(copies)]
            mats_key = (n, k)
        x = upload(gpu, rng.standard_normal((m, k)).astype(np.float32))
        out = empty(gpu, m * n * 4)
        params = gpu.device.create_buffer_with_data(
            data=np.array([m, n, k, k, n, 0, 0, 0, team] + [0] * 55, dtype=np.uint32), usage=wgpu.BufferUsage.UNIFORM)
        pipe = kernels.pipeline(kernel, kernels.source(kernel, consts))
        layout = pipe.get_bind_group_layout(0)
        groups = [gpu.device.create_bind_group(layout=layout, entries=[
            {"binding": 0, "resource": {"buffer": params, "offset": 0, "size": 256}},
            {"binding": 1, "resource": {"buffer": x, "offset": 0, "size": x.size}},
            {"binding": 2, "resource": {"buffer": nib, "offset": 0, "size": nib.size}},
            {"binding": 3, "resource": {"buffer": sc, "offset": 0, "size": sc.size}},
            {"binding": 4, "resource": {"buffer": K.dummy(gpu), "offset": 0, "size": 16}},
            {"binding": 5, "resource": {"buffer": out, "offset": 0, "size": out.size}}]) for nib, sc in mats]
        gx, gy = K.groups_2d(math.ceil(n / (K.WORKGROUP // team)))
        t = time_kernel(gpu, pipe, groups, (gx, gy, math.ceil(m / consts["ROWS"])))
        r = {"kernel": kernel, "shape": name, "n": n, "k": k, "m": m, "TEAM": team, **consts, "us": round(t * 1e6, 2),
             "GBps": round(nbytes / t / 1e9, 1), "TFLOPs": round(2 * m * n * k / t / 1e12, 2)}
        results.append(r)
        if not args.json:
            print(r, flush=True)
    totals: dict[str, float] = {}
    for r in results:
        key = f"{r['kernel']} m={r['m']} team {r['TEAM']} ROWS {r['ROWS']}"
        totals[key] = round(totals.get(key, 0.0) + r["us"], 2)
    summary = {"device": gpu.name, "results": results, "total_us_per_variant": totals}
    print(json.dumps(summary, indent=1) if args.json else totals)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
