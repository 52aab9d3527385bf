"""Effective weight bandwidth of the Q4_0 matrix kernels on the decoder's real shapes, per kernel
variant (lanes per row TEAM, weight rows per team RT), from GPU timestamps.

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
VARIANTS = [(32, 1), (32, 2), (32, 4), (16, 2), (16, 4), (8, 4), (8, 8)]
DISPATCHES = 64
COPIES_BYTES = 512 << 20  # weights cycled through per timing: far above L2


def time_kernel(gpu, pipeline, bind_groups, grid) -> float:
    """Seconds per dispatch, best of 3."""
    qs = gpu.device.create_query_set(type="timestamp", count=2)
    buf = gpu.device.create_buffer(size=16, usage=wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC)
    best = math.inf
    for _ in range(3):
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
    for name, n, k in SHAPES:
        nb = k // 32
        nbytes = n * nb * 20
        copies = max(1, min(16, COPIES_BYTES // nbytes))
        mats = [(upload(gpu, rng.integers(0, 2**32, (n, nb, 4), dtype=np.uint32)),
                 upload(gpu, (rng.standard_normal((n, nb)) * 0.01).astype(np.float32))) for _ in range(copies)]
        x = upload(gpu, rng.standard_normal(k).astype(np.float32))
        out = empty(gpu, n * 4)
        params = gpu.device.create_buffer_with_data(
            data=np.array([1, n, k, k, n, 0, 0, 0] + [0] * 56, dtype=np.uint32),
            usage=wgpu.BufferUsage.UNIFORM)
        for team, rt in VARIANTS:
            consts = {"TEAM": team, "RT": rt, "ROWS": 1}
            pipe = kernels.pipeline(f"q4_matvec", kernels.source("q4_matvec", consts))
            layout = pipe.get_bind_group_layout(0)
            groups = [gpu.device.create_bind_group(layout=layout, entries=[
                {"binding": 0, "resource": {"buffer": params, "offset": 0, "size": 256}},
                {"binding": 1, "resource": {"buffer": x, "offset": 0, "size": x.size}},
                {"binding": 2, "resource": {"buffer": nib, "offset": 0, "size": nib.size}},
                {"binding": 3, "resource": {"buffer": sc, "offset": 0, "size": sc.size}},
                {"binding": 4, "resource": {"buffer": K.dummy(gpu), "offset": 0, "size": 16}},
                {"binding": 5, "resource": {"buffer": out, "offset": 0, "size": out.size}}]) for nib, sc in mats]
            gx, gy = K.groups_2d(math.ceil(n / (K.WORKGROUP // team * rt)))
            t = time_kernel(gpu, pipe, groups, (gx, gy, 1))
            r = {"shape": name, "n": n, "k": k, "team": team, "rt": rt, "us": round(t * 1e6, 2),
                 "GBps": round(nbytes / t / 1e9, 1)}
            results.append(r)
            if not args.json:
                print(r, flush=True)
    best = {}
    for team, rt in VARIANTS:
        rs = [r for r in results if (r["team"], r["rt"]) == (team, rt)]
        best[f"{team}x{rt}"] = round(sum(r["us"] for r in rs), 2)
    summary = {"device": gpu.name, "results": results, "total_us_per_variant": best}
    print(json.dumps(summary, indent=1) if args.json else summary["total_us_per_variant"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
