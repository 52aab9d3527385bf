"""Effective weight bandwidth and arithmetic rate of the Q4_0 matrix kernels on the model's real shapes,
per kernel variant, from GPU timestamps: q4_matvec (lanes per team TEAM and rows of x per slice ROWS,
constants) on the decoder's matrices with one row of x, and on the encoder's with 4 rows (a live step)
and the decoder's with 2 and 8, each in one slice and in slices of two; q4_direct (slices of 8, 4 or 2
rows, TEAM 16 to 128; "engine" marks the variant formats.Q4_0Format.kernel picks) on the 8-row shapes and on
the 16 rows of a speculative forward (decoder.SPEC_MAX); q4_tiles (output tiles of TM rows of x by TN
weight rows, constants) on the encoder's, decoder's and adapter's shapes with 32 to 128 rows.

    python benchmarks/matvec_bench.py [--json] [--kernels q4_tiles ...] [--tiles 64x128 ...]
                                      [--shaders FOLDER] [--dispatches N --copies-mb MB]  (small values: a smoke test)

--shaders takes a folder of WGSL pieces instead of the package's shaders/ (an edited kernel, as in
benchmarks/shader_ab.py).

Each timing is 64 back-to-back dispatches in one compute pass (as in a decode step), cycling through
copies of the matrix that together exceed the GPU's L2 cache, so weights come from memory.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import wgpu
from wgpu.backends.wgpu_native.extras import write_timestamp

from voxtral_desk.gpu.device import default_device
from voxtral_desk.gpu.formats import Q4_0
from voxtral_desk.gpu.pipelines import Kernels
from voxtral_desk.gpu.program import dummy, empty, upload

# (name, rows n, inputs k) of the full decoder
SHAPES = [("qkv", 6144, 3072), ("wo", 3072, 4096), ("w13", 18432, 3072), ("w2", 3072, 9216), ("head", 131072, 3072)]
VARIANTS = [16, 32, 64]  # TEAM
# (name, n, k, rows of x) for q4_matvec with several rows (up to 8), and its (ROWS, TEAM) variants that
# hold them in one slice (ROWS = the rows) or in slices of two (Q4_0.kernel says which the engine uses);
# q4_direct's cases are those of more than Q4_0.STAGED_MAX_ROWS rows
ROW_SHAPES = [("enc w13", 10240, 1280, 4), ("enc qkv", 6144, 1280, 4), ("enc w2", 1280, 5120, 4),
              ("enc wo", 1280, 2048, 4), ("dec w13", 18432, 3072, 4), ("head", 131072, 3072, 4),
              ("dec w13", 18432, 3072, 2), ("dec w13", 18432, 3072, 8),
              ("dec qkv", 6144, 3072, 8), ("dec w2", 3072, 9216, 8), ("head", 131072, 3072, 8),
              ("dec w13", 18432, 3072, 16), ("dec qkv", 6144, 3072, 16), ("dec wo", 3072, 4096, 16),
              ("dec w2", 3072, 9216, 16), ("head", 131072, 3072, 16)]
DIRECT_TEAMS = [16, 32, 64, 128]  # q4_direct's TEAM variants
DIRECT_ROWS = [8, 4, 2]  # and its rows of x per slice


def row_variants(m: int) -> list[tuple[int, int]]:
    return sorted({(2, 32), (m, 16), (m, 32), (m, 64)})


def matvec_staged_bytes(rows: int, team: int) -> int:
    """Workgroup memory q4_matvec's staged x takes: ROWS rows of a trip's TEAM/4 groups of 32 vec4s, each
    group padded to 36 (q4_matvec.wgsl)."""
    return rows * team // 4 * 36 * 16


# (name, n, k, rows of x) for q4_tiles, and its (TM, TN) variants per number of rows
TILE_SHAPES = [("enc qkv", 6144, 1280, 128), ("enc w13", 10240, 1280, 128), ("enc w2", 1280, 5120, 128),
               ("dec w13", 18432, 3072, 39), ("dec qkv", 6144, 3072, 39), ("adapter 0", 3072, 5120, 32)]
TILE_VARIANTS = {128: [(128, 128), (64, 128), (128, 64), (64, 64)], 39: [(64, 128), (64, 64)],
                 32: [(64, 64), (64, 128)]}
DISPATCHES = 64
COPIES_BYTES = 512 << 20  # weights cycled through per timing: far above L2


def chain_ms(gpu, chain: list[tuple], runs: int) -> list[float]:
    """GPU milliseconds of each of `runs` recordings of a chain of dispatches [(pipeline, bind group,
    grid)] in one compute pass, from timestamps at the pass's ends (also benchmarks/dispatch_floor.py)."""
    qs = gpu.device.create_query_set(type="timestamp", count=2)
    buf = gpu.device.create_buffer(size=16, usage=wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC)
    times = []
    for _ in range(runs):
        enc = gpu.device.create_command_encoder()
        cp = enc.begin_compute_pass()
        write_timestamp(cp, qs, 0)
        for pipeline, group, grid in chain:
            cp.set_pipeline(pipeline)
            cp.set_bind_group(0, group)
            cp.dispatch_workgroups(*grid)
        write_timestamp(cp, qs, 1)
        cp.end()
        enc.resolve_query_set(qs, 0, 2, buf, 0)
        gpu.queue.submit([enc.finish()])
        t = np.frombuffer(gpu.queue.read_buffer(buf), dtype=np.uint64)
        times.append(float(t[1] - t[0]) / 1e6)  # 1 tick = 1 ns on Vulkan (NVIDIA, lavapipe)
    return times


def time_kernel(gpu, pipeline, bind_groups, grid, dispatches: int = DISPATCHES) -> float:
    """Seconds per dispatch, best of 4 runs (the first also brings the clocks up after the upload pauses)."""
    chain = [(pipeline, bind_groups[i % len(bind_groups)], grid) for i in range(dispatches)]
    return min(chain_ms(gpu, chain, 4)) * 1e-3 / dispatches


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--kernels", nargs="+", default=["q4_matvec", "q4_direct", "q4_tiles"])
    ap.add_argument("--tiles", nargs="+", help="q4_tiles variants TMxTN for every shape, instead of TILE_VARIANTS")
    ap.add_argument("--shaders", type=Path, help="a folder of WGSL pieces instead of the package's shaders/")
    ap.add_argument("--dispatches", type=int, default=DISPATCHES)
    ap.add_argument("--copies-mb", type=int, default=COPIES_BYTES >> 20)
    args = ap.parse_args()
    tiles = [tuple(int(v) for v in t.split("x")) for t in args.tiles] if args.tiles else None
    gpu = default_device()
    kernels = Kernels(gpu, shaders=args.shaders)
    rng = np.random.default_rng(0)
    results = []
    cases = [(name, n, k, 1, "q4_matvec", {"ROWS": 1, "TEAM": t}) for name, n, k in SHAPES for t in VARIANTS]
    cases += [(name, n, k, m, "q4_matvec", {"ROWS": r, "TEAM": t}) for name, n, k, m in ROW_SHAPES
              if m <= 8 for r, t in row_variants(m)]
    cases += [(name, n, k, m, "q4_tiles", {"TM": tm, "TN": tn}) for name, n, k, m in TILE_SHAPES
              for tm, tn in tiles or TILE_VARIANTS[m]]
    cases += [(name, n, k, m, "q4_direct", {"ROWS": r, "TEAM": t}) for name, n, k, m in ROW_SHAPES
              if m > Q4_0.STAGED_MAX_ROWS for r in DIRECT_ROWS for t in DIRECT_TEAMS if t // 4 <= k // 128]
    cases = [c for c in cases if c[4] in args.kernels]
    mats, mats_key = [], None
    for name, n, k, m, kernel, consts in cases:
        nb = k // 32
        nbytes = n * nb * 18
        nib_bytes = n * nb * 16  # the largest binding: the nibbles, one vec4<u32> per group and word
        if nib_bytes > gpu.max_binding_size:  # the engine would split it into row chunks
            print(f"skipped {name} ({kernel}): its {nib_bytes >> 20} MiB of nibbles exceed this device's "
                  f"{gpu.max_binding_size >> 20} MiB binding limit", file=sys.stderr)
            continue
        staged = matvec_staged_bytes(consts["ROWS"], consts["TEAM"]) if kernel == "q4_matvec" else 0
        # wgpu 0.32 does not refuse a kernel over the limit; a job that built one (8 rows in teams of 64,
        # 72 KiB against an H100's 48) never finished.
        if staged > gpu.device.limits["max-compute-workgroup-storage-size"]:
            print(f"skipped {name} ({kernel} {consts}): its {staged} bytes of staged x exceed this device's "
                  f"workgroup memory", file=sys.stderr)
            continue
        if mats_key != (n, k):
            copies = max(1, min(16, (args.copies_mb << 20) // nbytes))
            mats = [(upload(gpu, rng.integers(0, 2**32, (n, nb * 4), dtype=np.uint32)),  # layout: formats.interleave_q4
                     upload(gpu, (rng.standard_normal((n, nb)) * 0.01).astype(np.float16))) for _ in range(copies)]
            mats_key = (n, k)
        x = upload(gpu, rng.standard_normal((m, k)).astype(np.float32))
        out = empty(gpu, m * n * 4)
        # LinearParams: m, n, k, x_stride, out_stride, out_base, col0, flags (none), then unused fields
        words = np.zeros(64, dtype=np.uint32)
        words[:8] = [m, n, k, k, n, 0, 0, 0]
        params = gpu.device.create_buffer_with_data(data=words, usage=wgpu.BufferUsage.UNIFORM)
        source = kernels.source(kernel, consts)
        pipe = kernels.pipeline(kernel, source)
        layout = pipe.get_bind_group_layout(0)
        shared = [(0, params, 256), (1, x, x.size), (4, dummy(gpu), 16), (5, out, out.size)]
        # q4_epilogue.wgsl's bindings (norm gain, RoPE table, K and V caches, state): not read, no flags
        shared += [(b, dummy(gpu, role), 16) for b, role in ((6, "input"), (7, "input"), (8, "k"), (9, "v"),
                                                              (10, "input"))]
        groups = [gpu.device.create_bind_group(layout=layout, entries=[
            {"binding": b, "resource": {"buffer": buf, "offset": 0, "size": size}}
            for b, buf, size in shared + [(2, nib, nib.size), (3, sc, sc.size)]]) for nib, sc in mats]
        grid = Q4_0.grid(kernel, consts, m, n)
        t = time_kernel(gpu, pipe, groups, grid, args.dispatches)
        r = {"kernel": kernel, "shape": name, "n": n, "k": k, "m": m, **consts, "us": round(t * 1e6, 2),
             "GBps": round(nbytes / t / 1e9, 1), "TFLOPs": round(2 * m * n * k / t / 1e12, 2)}
        if kernel == "q4_direct":
            r["engine"] = Q4_0.kernel(m, n, k) == (kernel, consts)
        results.append(r)
        if not args.json:
            print(r, flush=True)
    totals: dict[str, float] = {}
    for r in results:
        if r["kernel"] == "q4_tiles":
            key = f"q4_tiles m={r['m']} {r['TM']}x{r['TN']}"
        else:
            key = f"{r['kernel']} m={r['m']} team {r['TEAM']} ROWS {r['ROWS']}"
        totals[key] = round(totals.get(key, 0.0) + r["us"], 2)
    summary = {"device": gpu.name, "results": results, "total_us_per_variant": totals}
    print(json.dumps(summary, indent=1) if args.json else totals)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
