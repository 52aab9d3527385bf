"""The subgroup probe: whether this device's subgroup reductions (reduce_subgroup.wgsl) give the answers of
the workgroup-memory ones (reduce_workgroup.wgsl). They assume that subgroups are consecutive invocations
of a 1-D workgroup, true of every driver we know; GPUEngine builds the workgroup-memory kernels on a
device where the probe says otherwise."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..quant import quantize_q4_0
from .device import GPUDevice
from .formats import F32, Q4_0
from .ops import KV_DTYPE, attention, linear, rmsnorm
from .pipelines import Kernels
from .program import Program, read, upload

TOLERANCE = 2e-5  # relative to the largest value: the two variants sum in another order


def subgroups_work(gpu: GPUDevice, shaders: Path | None = None) -> bool:
    """The verdict for this device (and folder of WGSL pieces, the package's by default), probed once."""
    return gpu.cached(("subgroups work", shaders), lambda: _agree(gpu, shaders))


def _agree(gpu: GPUDevice, shaders: Path | None) -> bool:
    with_subgroups, without = (_outputs(Kernels(gpu, subgroups, shaders=shaders)) for subgroups in (True, False))
    return all(np.all(np.isfinite(a)) and np.max(np.abs(a - b)) <= TOLERANCE * max(np.max(np.abs(b)), 1e-30)
               for a, b in zip(with_subgroups, without, strict=True))


def _outputs(kernels: Kernels) -> list[np.ndarray]:
    """The outputs of every kernel that reduces, on the same random inputs whichever the variant: teams of
    every width from a subgroup's share to the whole workgroup, and attention's three reductions."""
    gpu = kernels.gpu
    rng = np.random.default_rng(7)
    outputs = []

    def run(label: str, m: int, out_floats: int, add) -> None:
        out = upload(gpu, np.zeros(out_floats, np.float32))
        prog = Program(kernels, f"subgroup probe: {label}")
        add(prog, out)
        prog.build().run(m)
        outputs.append(read(gpu, out, np.float32, out_floats))

    def up(shape, dtype=np.float32):
        return upload(gpu, rng.standard_normal(shape).astype(dtype))

    x, gain = up((5, 70)), up(70)
    run("rmsnorm", 5, 5 * 70, lambda p, out: rmsnorm(p, x, gain, out, d=70, eps=1e-5))  # one team of 256
    # q4_matvec in teams of 32 and 64 lanes (one row) and slices of two rows, q4_direct in teams of 128, all
    # with the folded norm (a sum over the workgroup), and f32_rows.
    for m, n, k in ((1, 37, 96), (1, 37, 4128), (3, 37, 96), (5, 21, 4128)):
        w = Q4_0.matrix(gpu, quantize_q4_0(rng.standard_normal((n, k)).astype(np.float32)), gpu.max_binding_size,
                        "subgroup probe")
        x, gain = up((m, k)), up(k)
        run(f"{m} x {n} x {k}", m, m * n,
            lambda p, out, w=w, x=x, k=k, gain=gain: linear(p, w, x, out, k=k, norm=(gain, 1e-5)))
    w, x = F32.matrix(gpu, rng.standard_normal((19, 165)), gpu.max_binding_size, "subgroup probe"), up((6, 165))
    run("f32 rows", 6, 6 * 19, lambda p, out: linear(p, w, x, out, k=165))
    # One query per workgroup with teams of 4 lanes per key (head dim 32) and one lane per key (head dim 20),
    # blocks of 8 queries.
    heads, kv, cap, window, pos0 = 4, 2, 40, 30, 14
    for m, hd in ((1, 32), (1, 20), (21, 20)):
        q, keys, values = up((m, heads * hd)), up((cap, kv * hd), KV_DTYPE), up((cap, kv * hd), KV_DTYPE)
        state = upload(gpu, np.array([pos0, 0, 0, 0], np.uint32))
        run(f"attention {m} x {hd}", m, m * heads * hd,
            lambda p, out, q=q, keys=keys, values=values, state=state, hd=hd: attention(
                p, q, keys, values, out, state, n_heads=heads, n_kv=kv, head_dim=hd, cap=cap, window=window))
    return outputs
