"""Buffers and programs: how dispatches are recorded and submitted.

A `Program` is a fixed sequence of dispatches and copies whose bind groups are created once per pipeline
they meet; its per-dispatch parameters (dimensions, flags) live in one uniform buffer, rewritten with a
single write only when the program's row count changes, which is also when the matrix kernels' variants
are chosen. Programs are recorded into command encoders as often as needed (the decoder records one per
generated token), and a live step records its next one ahead (`Ahead`). `Profiler` times them by kernel
class.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import wgpu

from . import native
from .device import GPUDevice
from .pipelines import Kernels

USAGE = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_DST | wgpu.BufferUsage.COPY_SRC
PARAM_SLOT = 256  # bytes per parameter block: the largest uniform offset alignment a device may require
MAX_GROUPS = 65535  # workgroups per grid dimension (WebGPU's minimum limit)
# Command buffers per Program.submit: the GPU starts on the first while the CPU records the rest
# (docs/SPEED.md, third session).
SUBMIT_PIECES = 8
# map_read's busy wait: a live step's GPU work outlasts its CPU work by ~2 ms (docs/SPEED.md, ninth session).
SPIN_WAIT_S = 0.004


# --- buffers ---------------------------------------------------------------------------------------

def upload(gpu: GPUDevice, array: np.ndarray, label: str = "") -> object:
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    pad = -data.nbytes % 16 if data.nbytes else 16  # sizes stay multiples of 16, never empty
    if pad:
        data = np.concatenate([data, np.zeros(pad, dtype=np.uint8)])
    return gpu.device.create_buffer_with_data(label=label, data=data, usage=USAGE)


def empty(gpu: GPUDevice, nbytes: int, label: str = "") -> object:
    return gpu.device.create_buffer(label=label, size=max(16, -(-nbytes // 16) * 16), usage=USAGE)


def read(gpu: GPUDevice, buffer, dtype, count: int, offset: int = 0) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    raw = gpu.queue.read_buffer(buffer, offset, count * itemsize)
    return np.frombuffer(raw, dtype=dtype, count=count).copy()


def map_read(gpu: GPUDevice, buffer, nbytes: int) -> np.ndarray:
    """The first nbytes of a MAP_READ buffer (uint8), once the work submitted before has finished, polling
    the device on this thread (native.map_read): busily for up to SPIN_WAIT_S, then blocking. No spin on
    software adapters, whose GPU is the CPU cores a spin would take."""
    return native.map_read(gpu.device, buffer, nbytes, 0.0 if gpu.is_software else SPIN_WAIT_S)


def dummy(gpu: GPUDevice, role: str = "input"):
    """A small buffer bound where a kernel's optional binding (bias, norm gain, KV cache) is switched
    off. Inputs share one; each writable binding needs its own ("k", "v"): a buffer cannot be bound
    writable next to another binding of itself."""
    return gpu.cached(("dummy", role), lambda: empty(gpu, 16, f"unused {role}"))


def ring_runs(start: int, stop: int, *caps: int) -> list[tuple[int, int]]:
    """Split positions [start, stop) into runs (first position, length) that are contiguous in every ring
    of the given capacities (position p lives in row p % cap)."""
    runs, p = [], start
    while p < stop:
        n = min([stop - p] + [c - p % c for c in caps])
        runs.append((p, n))
        p += n
    return runs


def read_ring(gpu: GPUDevice, buffer, row: int, cap: int, start: int, stop: int) -> np.ndarray:
    """The rows of positions start..stop of a ring of cap rows of `row` bytes (position p in row p % cap),
    as bytes [(stop - start) * row], for write_ring."""
    parts = [read(gpu, buffer, np.uint8, n * row, p % cap * row) for p, n in ring_runs(start, stop, cap)]
    return np.concatenate(parts) if parts else np.zeros(0, np.uint8)


def write_ring(gpu: GPUDevice, buffer, row: int, cap: int, start: int, data: np.ndarray) -> None:
    """Put rows read by read_ring back at positions start.. of a ring of cap rows (any cap)."""
    for p, n in ring_runs(start, start + len(data) // row, cap):
        gpu.queue.write_buffer(buffer, p % cap * row, data[(p - start) * row: (p - start + n) * row])


def groups_2d(n: int) -> tuple[int, int]:
    """n workgroups as an (x, y) grid within the per-dimension limit; kernels use x + y * nx and
    bound-check the extra ones."""
    x = max(1, min(n, MAX_GROUPS))
    return x, max(1, math.ceil(n / x))


# --- programs --------------------------------------------------------------------------------------

Params = Callable[[int], Sequence[int | float]]
Grid = Callable[[int], tuple[int, int, int]]
Variant = Callable[[int], tuple[str, dict | None]]  # m -> (kernel, constants)


@dataclass
class _Dispatch:
    variant: Variant
    buffers: list
    params: Params
    grid: Grid
    tag: str = ""  # kernel class in profiles, e.g. "qkv"
    weight_bytes: int = 0  # weight bytes the dispatch streams (for bandwidth in profiles)
    bind_groups: dict = None  # pipeline -> its bind group, made on first use


@dataclass
class _Copy:
    regions: Callable[[int], list[tuple]]  # m -> [(src, src_offset, dst, dst_offset, size)]


SCRATCH = object()  # stands for the program's scratch buffer in a dispatch's buffers until build()


class Program:
    """A sequence of dispatches (and copies) built once and recorded many times. Each dispatch's
    parameters are a function of the program's row count m, and so is its grid. max_rows, the most
    rows the program will be prepared for, lets matrix products split k through a scratch buffer."""

    def __init__(self, kernels: Kernels, label: str, max_rows: int | None = None):
        self.kernels = kernels
        self.gpu = kernels.gpu
        self.label = label
        self.max_rows = max_rows
        self.scratch_bytes = 0  # the largest scratch a dispatch asked for (Program.scratch)
        self._scratch = None
        self.ops: list[_Dispatch | _Copy] = []
        self._param_buffer = None
        self._m: int | None = None
        self._grids: list[tuple[int, int, int] | None] = []
        # per op at the current m: kernel name, and the native handles of its pipeline and bind group
        self._bound: list[tuple[str, object, object] | None] = []

    def dispatch(self, kernel: str | Variant, buffers: Sequence, params: Params, grid: Grid, tag: str = "",
                 weight_bytes: int = 0) -> None:
        """kernel: a kernel name, or m -> (name, constants) for kernels whose variant depends on the row
        count. buffers are the storage bindings 1, 2, ... of the kernel, bound whole (binding 0 is its
        parameters); None skips a number. tag names the kernel class in profiles."""
        if self._param_buffer is not None:
            raise RuntimeError("program already built")
        variant = kernel if callable(kernel) else (lambda m, name=kernel: (name, None))
        self.ops.append(_Dispatch(variant, list(buffers), params, grid, tag, weight_bytes, {}))

    def copy(self, regions: Callable[[int], list[tuple]]) -> None:
        self.ops.append(_Copy(regions))

    def scratch(self, nbytes: int) -> object:
        """A buffer of at least nbytes that the dispatches of this program share (each uses it only
        between its own writes and reads), made by build()."""
        self.scratch_bytes = max(self.scratch_bytes, nbytes)
        return SCRATCH

    def build(self) -> "Program":
        if self.scratch_bytes:
            self._scratch = empty(self.gpu, self.scratch_bytes, f"{self.label} scratch")
        dispatches = [op for op in self.ops if isinstance(op, _Dispatch)]
        self._param_buffer = self.gpu.device.create_buffer(
            label=f"{self.label} params", size=max(1, len(dispatches)) * PARAM_SLOT,
            usage=wgpu.BufferUsage.UNIFORM | wgpu.BufferUsage.COPY_DST)
        return self

    def _bind(self, op: _Dispatch, slot: int, m: int) -> tuple[str, object, object]:
        name, constants = op.variant(m)
        pipeline = self.kernels.variant(name, constants)
        if pipeline not in op.bind_groups:
            entries = [{"binding": 0, "resource": {"buffer": self._param_buffer, "offset": slot * PARAM_SLOT,
                                                   "size": PARAM_SLOT}}]
            for b, buf in enumerate(op.buffers, start=1):
                if buf is None:  # a binding number the kernel does not declare
                    continue
                buf = self._scratch if buf is SCRATCH else buf
                entries.append({"binding": b, "resource": {"buffer": buf, "offset": 0, "size": buf.size}})
            op.bind_groups[pipeline] = self.gpu.device.create_bind_group(
                label=f"{self.label} {name}", layout=pipeline.get_bind_group_layout(0), entries=entries)
        return name, native.handle(pipeline), native.handle(op.bind_groups[pipeline])

    def prepare(self, m: int) -> None:
        """Set the row count for the next recordings: one buffer write when it changed. Every recording
        submitted after this sees m (writes are ordered before later submits)."""
        if m == self._m:
            return
        dispatches = [op for op in self.ops if isinstance(op, _Dispatch)]
        words = np.zeros((max(1, len(dispatches)), PARAM_SLOT // 4), dtype=np.uint32)
        for i, op in enumerate(dispatches):
            values = op.params(m)
            for j, v in enumerate(values):
                words[i, j] = np.float32(v).view(np.uint32) if isinstance(v, float) else np.uint32(v)
        self.gpu.queue.write_buffer(self._param_buffer, 0, words)
        self._grids = [op.grid(m) if isinstance(op, _Dispatch) else None for op in self.ops]
        slots = iter(range(len(dispatches)))
        self._bound = [self._bind(op, next(slots), m) if isinstance(op, _Dispatch) else None for op in self.ops]
        self._m = m

    def record(self, encoder, m: int) -> None:
        if m != self._m:
            raise RuntimeError(f"{self.label}: prepare({m}) first")
        prof = self.kernels.profiler
        if prof is not None:
            prof.record(self, encoder, m)
        else:
            self.encode(encoder, m)

    def dispatches(self) -> list[str]:
        """Profile tags ("kernel tag") of the dispatches the current row count actually runs (empty grids
        are skipped), in order."""
        return [tag for tag, _, _ in self.dispatch_shapes()]

    def dispatch_shapes(self) -> list[tuple[str, tuple[int, int, int], int]]:
        """(profile tag, grid, weight bytes) of each dispatch the current row count actually runs, in
        order (benchmarks/dispatch_floor.py replays them)."""
        return [(f"{bound[0]} {op.tag}".strip(), g, op.weight_bytes)
                for op, g, bound in zip(self.ops, self._grids, self._bound, strict=True)
                if isinstance(op, _Dispatch) and g[0] * g[1] * g[2]]

    def encode(self, encoder, m: int, around: Callable | None = None, ops: slice = slice(None)) -> None:
        """Record the ops (a slice of them: ops); around(cpass, (tag, weight bytes), before) is called on
        both sides of each dispatch (profiling).
        Each dispatch's pipeline, bind group and grid go straight to wgpu-native (native.py): with ~300
        dispatches the recording of a live step is on its critical path once the GPU's share is short. A
        bad command is still reported, by the pass's end() or the encoder's finish(), which go through
        wgpu-py."""
        set_pipeline, set_bind_group, dispatch = native.set_pipeline, native.set_bind_group, native.dispatch_workgroups
        cpass = None
        for op, grid, bound in zip(self.ops[ops], self._grids[ops], self._bound[ops], strict=True):
            if isinstance(op, _Copy):
                if cpass is not None:
                    cpass.end()
                    cpass = None
                for src, src_off, dst, dst_off, size in op.regions(m):
                    encoder.copy_buffer_to_buffer(src, src_off, dst, dst_off, size)
                continue
            gx, gy, gz = grid
            if gx * gy * gz == 0:
                continue
            if cpass is None:
                cpass = encoder.begin_compute_pass()
                native_pass = native.handle(cpass)
            if around:
                what = (f"{bound[0]} {op.tag}".strip(), op.weight_bytes)
                around(cpass, what, True)
            set_pipeline(native_pass, bound[1])
            set_bind_group(native_pass, 0, bound[2], 0, native.NULL)
            dispatch(native_pass, gx, gy, gz)
            if around:
                around(cpass, what, False)
        if cpass is not None:
            cpass.end()

    def submit(self, m: int, finish: Callable | None = None, pieces: int = SUBMIT_PIECES) -> None:
        """Record the program (prepared for m) into `pieces` command buffers of about equal numbers of
        ops and submit each as soon as it is recorded, so the GPU starts on the first while the CPU
        records the rest: a full-size model's step takes about half a millisecond to record, which
        would otherwise wait in front of each live step and speculative forward. finish(encoder) adds
        commands after the program, in the last buffer. One buffer while profiling."""
        if m != self._m:
            raise RuntimeError(f"{self.label}: prepare({m}) first")
        pieces = 1 if self.kernels.profiler is not None else max(1, min(pieces, len(self.ops)))
        bounds = [round(i * len(self.ops) / pieces) for i in range(pieces + 1)]
        for i in range(pieces):
            encoder = self.gpu.device.create_command_encoder()
            if pieces == 1:
                self.record(encoder, m)
            else:
                self.encode(encoder, m, ops=slice(bounds[i], bounds[i + 1]))
            if finish is not None and i == pieces - 1:
                finish(encoder)
            self.gpu.queue.submit([encoder.finish()])

    def command_buffer(self, m: int, finish: Callable | None = None) -> object:
        """The program (prepared for m) recorded into one finished command buffer, followed by
        finish(encoder)'s commands."""
        encoder = self.gpu.device.create_command_encoder()
        self.record(encoder, m)
        if finish is not None:
            finish(encoder)
        return encoder.finish()

    def run(self, m: int) -> None:
        """prepare + record + submit, for one-off programs."""
        self.prepare(m)
        self.gpu.queue.submit([self.command_buffer(m)])


class Ahead:
    """A command buffer recorded before it is needed, kept with a key of everything its recording
    depended on (the program, its row count, copy regions), and handed out only for the same key.
    A live step records the next step's buffers while the GPU runs its own, so recording (~300
    dispatches) leaves the critical path (docs/SPEED.md, seventh session). A mismatched or unused buffer
    is dropped unsubmitted.
    Nothing is recorded ahead while profiling: the profiler's timestamps belong to submitted work."""

    def __init__(self, kernels: Kernels):
        self.kernels = kernels
        self._key = None
        self._buffer = None

    def record(self, key, record: Callable[[], object]) -> None:
        self._key, self._buffer = key, (record() if self.kernels.profiler is None else None)

    def take(self, key) -> object | None:
        """The buffer recorded for this key (once), else None."""
        buffer, self._buffer = self._buffer, None
        return buffer if key == self._key else None


class Profiler:
    """GPU time per kernel class, from timestamps written before and after every dispatch (feature
    timestamp-query-inside-passes; a timestamp lands when the work before it has finished, so the
    durations of consecutive dispatches add up to the span of the pass), and CPU time spent recording
    commands per program. Installed as `Kernels.profiler` while profiling; results are read by collect().
    With per_dispatch=False only the first dispatch of each recorded program is preceded and its last
    followed by a timestamp (class "<program>: whole program"): the timestamps between dispatches add GPU
    time of their own (docs/SPEED.md, sixth session)."""

    FEATURES = ("timestamp-query", "timestamp-query-inside-passes")

    def __init__(self, gpu: GPUDevice, per_dispatch: bool = True):
        if not all(f in gpu.device.features for f in self.FEATURES):
            raise RuntimeError(f"{gpu.name} lacks {' and '.join(self.FEATURES)}")
        self.gpu = gpu
        self.per_dispatch = per_dispatch
        self._pending: list[tuple[object, str, list[tuple[str, int]]]] = []  # (resolve buffer, program, [(tag, bytes)])
        self.reset()

    def reset(self) -> None:
        self.gpu_ns: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.bytes: dict[str, int] = defaultdict(int)
        self.record_s: dict[str, float] = defaultdict(float)
        self.records: dict[str, int] = defaultdict(int)

    def record(self, prog: Program, encoder, m: int) -> None:
        from wgpu.backends.wgpu_native.extras import write_timestamp

        t0 = time.perf_counter()
        n = len(prog.dispatches())
        intervals = n if self.per_dispatch else min(n, 1)
        qs = self.gpu.device.create_query_set(type="timestamp", count=max(2, 2 * intervals))
        timed = []  # (tag, weight bytes) per interval
        seen = []  # (tag, weight bytes) of the dispatches recorded so far

        def stamp(cpass, what, before):
            if self.per_dispatch:
                write_timestamp(cpass, qs, 2 * len(timed) + (0 if before else 1))
                if not before:
                    timed.append(what)
                return
            if before and not seen:
                write_timestamp(cpass, qs, 0)
            if not before:
                seen.append(what)
                if len(seen) == n:
                    write_timestamp(cpass, qs, 1)
                    timed.append(("whole program", sum(nbytes for _, nbytes in seen)))

        prog.encode(encoder, m, stamp)
        if n:
            buf = self.gpu.device.create_buffer(size=16 * intervals,
                                                usage=wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC)
            encoder.resolve_query_set(qs, 0, 2 * intervals, buf, 0)
            self._pending.append((buf, prog.label, timed))
        self.record_s[prog.label] += time.perf_counter() - t0
        self.records[prog.label] += 1

    def collect(self) -> None:
        """Read the timestamps of everything recorded so far (call after the work was submitted)."""
        for buf, label, timed in self._pending:
            t = np.frombuffer(self.gpu.queue.read_buffer(buf), dtype=np.uint64).astype(np.int64)
            for (tag, nbytes), dt in zip(timed, t[1::2] - t[0::2], strict=True):
                key = f"{label}: {tag}"
                self.gpu_ns[key] += float(dt)  # Vulkan on NVIDIA and lavapipe: 1 tick = 1 ns
                self.calls[key] += 1
                self.bytes[key] += nbytes
        self._pending.clear()

    def summary(self) -> dict:
        """{kernel class: {ms, calls, weight GB/s}} sorted by time, plus CPU recording time."""
        self.collect()
        classes = {}
        for tag in sorted(self.gpu_ns, key=self.gpu_ns.get, reverse=True):
            ns = self.gpu_ns[tag]
            entry = {"gpu_ms": round(ns / 1e6, 3), "calls": self.calls[tag]}
            if self.bytes[tag] and ns > 0:
                entry["weight_GBps"] = round(self.bytes[tag] / ns, 1)
            classes[tag] = entry
        return {"gpu_ms_total": round(sum(self.gpu_ns.values()) / 1e6, 3), "kernels": classes,
                "cpu_record_ms": {k: round(v * 1000, 3) for k, v in self.record_s.items()},
                "records": dict(self.records)}


def buffer_bytes(*objects) -> int:
    """Total size of the distinct wgpu buffers reachable from the objects' attributes, dicts, lists and
    tuples (for memory reports)."""
    seen: dict[int, int] = {}

    def walk(o, depth=0):
        if isinstance(o, wgpu.GPUBuffer):
            seen[id(o)] = o.size
        elif depth > 6 or isinstance(o, (str, bytes, int, float, np.ndarray)):
            return
        elif isinstance(o, dict):
            for v in o.values():
                walk(v, depth + 1)
        elif isinstance(o, (list, tuple)):
            for v in o:
                walk(v, depth + 1)
        elif isinstance(o, Program):
            walk(o._scratch)
        elif hasattr(o, "__dict__") and not isinstance(o, (Kernels, GPUDevice)):
            for v in vars(o).values():
                walk(v, depth + 1)

    for o in objects:
        walk(o)
    return sum(seen.values())
