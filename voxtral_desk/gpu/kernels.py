"""WGSL kernels and how they are dispatched.

Kernels are assembled from the files in `shaders/` (a kernel plus the shared pieces it includes) and
built into pipelines once per device (and once per variant: kernels with constants, such as
q4_matvec's rows of x per slice, are built for each value they are used with). A `Program` is a fixed
sequence of dispatches and copies whose bind groups are created once per pipeline they meet; its
per-dispatch parameters (dimensions, flags) live in one uniform buffer, rewritten with a single write
only when the program's row count changes, which is also when the matrix kernels' variants are chosen.
Programs are recorded into command encoders as often as needed (the decoder records one per generated
token).
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import wgpu
# wgpu-native's C functions, called directly for the three commands of every dispatch (Program.encode),
# for shader modules without runtime checks (shader_module) and for reading results back (map_read).
from wgpu.backends.wgpu_native import _api as native_api
from wgpu.backends.wgpu_native._ffi import ffi as native_ffi, lib as native_lib

from ..audio import LogMel
from ..reference import rope_tables
from . import shaders_dir
from .device import GPUDevice

# Pieces each kernel is assembled from, in order; "reduce" is the subgroup or workgroup-memory variant.
KERNEL_SOURCES = {
    "q4_matvec": ("reduce", "activations", "linear_out", "q4_epilogue", "f16x4", "q4_nibbles", "q4_matvec"),
    "q4_direct": ("reduce", "activations", "linear_out", "q4_epilogue", "f16x4", "q4_nibbles", "q4_direct"),
    "q4_tiles": ("activations", "linear_out", "q4_epilogue", "f16x4", "q4_nibbles", "q4_tiles"),
    "split_sum": ("activations", "linear_out", "split_sum"),
    "f32_rows": ("reduce", "activations", "linear_out", "f32_rows"),
    "rmsnorm": ("reduce", "rmsnorm"),
    "attention": ("reduce", "f16x4", "attention_params", "attention"),
    "attention_combine": ("attention_params", "attention_combine"),
    "embed_q4": ("embed_q4",),
    "argmax_partial": ("argmax_common", "argmax_partial"),
    "argmax": ("argmax_common", "argmax"),
    "advance": ("advance",),
    "log_mel": ("log_mel",),
}
# Geometry of the matrix kernels, substituted into the WGSL (/*NAME*/): ROWS, rows of x per workgroup
# slice (grid z); TEAM, lanes per team of weight rows; TM x TN, q4_tiles' output tile (rows of x by
# weight rows; on an H200, the kernels compiled without runtime checks, the file-mode encoder took for
# 16 s of audio in chunks of 64 tokens 129-133 ms with 64 x 64, 112 with 128 x 64 and 105 with 64 x
# 128; in chunks of 128, 131, 101, 85-88 and 100 with 128 x 128). q4_matvec and q4_direct are built
# per row count (see q4_kernel).
KERNEL_CONSTANTS = {
    "q4_tiles": {"TM": 64, "TN": 128},
    "f32_rows": {"TEAM": 32, "ROWS": 8},
}
# Which kernel takes m rows of x (q4_kernel), from benchmarks/matvec_bench.py and engine runs on an H200:
# - m <= STAGED_MAX_ROWS: q4_matvec, one row or slices of two (grid z). Its staging of x in workgroup
#   memory wins for one row (decoder matrices 11-25 us against q4_direct's 13-98 us) and for the
#   encoder's 4 rows of a live step; slices of two beat one slice of 4 (decode 569 against 509 tokens/s),
#   except on wide matrices (n >= WIDE_RATIO * k), where one slice of 3-4 rows with teams of 16 won:
#   the live step's encoder w13 1.35 -> 1.06 ms of GPU time per step, qkv 0.99 -> 0.91; 4 rows of the
#   decoder's w13 62 -> 57 us, of the head 625 -> 279 us. (On the encoder's wo and w2, n = k and
#   n = k/4, it lost: 0.48 -> 0.70 and 0.70 -> 1.16 ms.) One row takes teams of 32 lanes, or of 64 where
#   teams of 32 would give fewer than MATVEC_LANES lanes in all (matvec_team): the decoder's wo and w2
#   and the adapter's products, whose 3072 weight rows gave 192 workgroups for 132 multiprocessors. The
#   live step's GPU time 4.25 -> 4.17 ms (two runs each, alternating in one process); teams of 64 on
#   every one-row product instead: 4.42 ms.
# - m <= MATVEC_MAX_ROWS: q4_direct, four weight rows per team, in slices of at most 4 rows of x:
#   speculative forwards and prefill. Decode (forwards of 8) 631 tokens/s with q4_matvec's slices of
#   two, 665-736 with q4_direct's 8 rows in one slice, 972-988 in two slices of 4, 784 in slices of 3,
#   788 of 2. Up to 64 rows (one q4_tiles tile of rows, which fewer rows leave partly empty): prefill of
#   39 positions 43-45 ms through q4_tiles, 31-34 ms through q4_direct (file mode 0.425 -> 0.41 s).
# - more: q4_tiles.
STAGED_MAX_ROWS = 4
WIDE_RATIO = 3
MATVEC_MAX_ROWS = 64
DIRECT_SLICE_ROWS = 4
DIRECT_LANES = 24576  # lanes q4_direct's team width aims for in all (measured best on the 8-row shapes)
MATVEC_LANES = 65536  # lanes below which q4_matvec's teams for one row of x are 64 wide (matvec_team)
SUBGROUP_ARG = "/*SUBGROUP_SIZE*/"
ROW_LINE = "// each row j"  # WGSL lines ending so are repeated for j = 0 .. ROWS-1
PARAM_SLOT = 256  # bytes per parameter block: the largest uniform offset alignment a device may require
MAX_GROUPS = 65535  # workgroups per grid dimension (WebGPU's minimum limit)
# Command buffers per Program.submit. On an H200 (full-size model, same job): live step 8.6-9.0 ms with
# 1, 8.0 with 4, 7.8 with 8; decode 646-677 tokens/s with 1, 706-716 with 4 or 8.
SUBMIT_PIECES = 8
# q4_tiles splits k into up to MAX_SPLITS slices (summed by split_sum) while its output tiles alone give
# fewer than SPLIT_BELOW workgroups (4 per multiprocessor of an H200). There, for 16 s of audio: file
# mode 0.49 s without splits, 0.44 with up to 4 below 264, 0.43 with up to 8 below 528 (encoder 11.4 ->
# 10.0 ms per audio second, prefill 55 -> 41 ms), for 14 MiB of scratch.
MAX_SPLITS = 8
SPLIT_BELOW = 528
USAGE = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_DST | wgpu.BufferUsage.COPY_SRC

# linear_out.wgsl flags
BIAS, GELU, ACCUMULATE, SWIGLU, NORM, ROPE = 1, 2, 4, 8, 16, 32
WORKGROUP = 256  # invocations of the matrix kernels' workgroups
# Query rows per workgroup of attention.wgsl from ATTENTION_BLOCK_FROM rows on. On an H200 the file-mode
# encoder's attention (64-token chunks) took 16.3 instead of 42.5 ms for 16 s of audio, speculative
# forwards' 9.0 instead of 24 ms; blocks of 4 or 16, or from 32 rows, measured the same.
ATTENTION_BLOCK = 8
ATTENTION_BLOCK_FROM = 16
# Attention with fewer workgroups (heads times query blocks) than ATTENTION_SPLIT_FROM splits its keys
# into runs, up to ATTENTION_MAX_SPLITS, so that the workgroups reach about that number
# (attention_splits), when its window holds ATTENTION_SPLIT_WINDOW keys or more. On an H200 the
# decoder's attention per live step after 50 s of dictation (~650 keys) took 0.41 ms + 0.22 to combine
# the runs instead of 0.95 ms (GPU time per step 5.12 -> 4.58 ms; it grows with the keys up to the
# 8192 of the window: after 300 s, 0.91 + 0.23 instead of 3.87 ms, and the step 5.96 instead of 9.18 ms
# of wall time), while early steps (~100 keys) took 0.13 ms longer; the encoder (window 750) was
# slower split at any time (0.70 -> 0.84 ms). On a software adapter a workgroup costs tens of
# microseconds whatever its keys, and its few cores are busy with fewer: no splits there (a tiny
# model's live step 9.2 -> 20.7 ms split on lavapipe).
ATTENTION_SPLIT_FROM = 256
ATTENTION_MAX_SPLITS = 8
ATTENTION_SPLIT_WINDOW = 2048
KV_DTYPE = np.float16  # of the KV caches, written by q4_epilogue.wgsl and read by attention.wgsl
KV_BYTES = np.dtype(KV_DTYPE).itemsize
WEIGHT_ROWS_PER_TEAM = {"q4_matvec": 2, "q4_direct": 4}  # (f32_rows: 1)


def shader_module(device, label: str, code: str, runtime_checks: bool):
    """The WGSL compiled with or without the checks naga adds by default: a clamp of every array index
    and a counter bounding every loop. Without them a live step took 4.17 instead of 4.68 ms of GPU time
    on an H200 (the loop counters 0.4 ms of it, the clamps 0.1), and the file-mode encoder 132 instead
    of 148 ms for 16 s of audio. Our kernels keep their indices in bounds themselves, so the engine runs
    them unchecked; the kernel checks run both ways (tests/gpu/test_kernels.py), so a kernel that
    strays differs."""
    if runtime_checks:
        return device.create_shader_module(label=label, code=code)
    text, name = native_ffi.new("char[]", code.encode()), native_ffi.new("char[]", label.encode())
    source = native_ffi.new("WGPUShaderSourceWGSL *")
    source.chain.next = native_ffi.NULL
    source.chain.sType = native_lib.WGPUSType_ShaderSourceWGSL
    source.code.data, source.code.length = text, len(text) - 1  # without the terminating zero
    descriptor = native_ffi.new("WGPUShaderModuleDescriptor *")
    descriptor.nextInChain = native_ffi.cast("WGPUChainedStruct *", source)
    descriptor.label.data, descriptor.label.length = name, len(name) - 1
    # libf raises the device's validation errors (a WGSL error) as Python exceptions, as wgpu-py does.
    handle = native_api.libf.wgpuDeviceCreateShaderModuleTrusted(device._internal, descriptor,
                                                                  native_lib.WGPUShaderRuntimeChecks_None)
    return native_api.GPUShaderModule(label, handle, device)


class Kernels:
    """Pipelines of one device, built on first use and kept. runtime_checks: compile the kernels with
    naga's index clamps and loop bounds (see shader_module). shaders: a folder of WGSL pieces to build
    from instead of the package's `shaders/` (edited kernels, compared by benchmarks/shader_ab.py)."""

    def __init__(self, gpu: GPUDevice, use_subgroups: bool | None = None, runtime_checks: bool = False,
                 shaders: Path | None = None):
        self.gpu = gpu
        self.shaders = shaders
        self.subgroups = gpu.has_subgroups and use_subgroups is not False
        self.runtime_checks = runtime_checks
        self.attention_split_from = 0 if gpu.is_software else ATTENTION_SPLIT_FROM
        self._pipelines: dict[str, object] = {}
        self._variants: dict[tuple, object] = {}  # (name, constants) -> pipeline, without reassembling the WGSL
        self.profiler: Profiler | None = None  # set while profiling (bench --profile)

    def source(self, name: str, constants: dict | None = None) -> str:
        """The kernel's WGSL; `constants` overrides KERNEL_CONSTANTS (kernel variants in benchmarks)."""
        folder = self.shaders or shaders_dir()
        parts = []
        for piece in KERNEL_SOURCES[name]:
            if piece == "reduce":
                piece = "reduce_subgroup" if self.subgroups else "reduce_workgroup"
            parts.append((folder / f"{piece}.wgsl").read_text())
        src = "\n".join(parts)
        constants = constants or KERNEL_CONSTANTS.get(name, {})
        for const, value in constants.items():
            src = src.replace(f"/*{const}*/", f"{value}u")
        if ROW_LINE in src:  # a line per row of x, with the row's number for {j}
            src = "\n".join("\n".join(line.replace("{j}", str(j)) for j in range(constants["ROWS"]))
                            if line.endswith(ROW_LINE) else line for line in src.split("\n"))
        return src.replace(SUBGROUP_ARG, ", @builtin(subgroup_size) sg_size: u32" if self.subgroups else "")

    def pipeline(self, name: str, source: str | None = None):
        """The kernel's pipeline; `source` overrides the assembled WGSL (kernel variants)."""
        key = name if source is None else (name, source)
        if key not in self._pipelines:
            module = shader_module(self.gpu.device, name, source or self.source(name), self.runtime_checks)
            self._pipelines[key] = self.gpu.device.create_compute_pipeline(
                label=name, layout="auto", compute={"module": module, "entry_point": "main"})
        return self._pipelines[key]

    def variant(self, name: str, constants: dict | None):
        """The pipeline of the kernel built with these constants (None: KERNEL_CONSTANTS)."""
        key = (name, tuple(sorted((constants or {}).items())))
        if key not in self._variants:
            self._variants[key] = self.pipeline(name) if constants is None else self.pipeline(name, self.source(name, constants))
        return self._variants[key]


_shared: dict[tuple[int, bool, Path | None], Kernels] = {}


def shared_kernels(gpu: GPUDevice, use_subgroups: bool | None = None, shaders: Path | None = None) -> Kernels:
    """One set of pipelines per device, variant and shader folder, shared by every engine on it."""
    kernels = Kernels(gpu, use_subgroups, shaders=shaders)
    return _shared.setdefault((id(gpu.device), kernels.subgroups, shaders), kernels)


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


SPIN_WAIT_S = 0.004  # map_read's busy wait: a live step's GPU work outlasts its CPU work by ~2 ms


@native_ffi.callback("void(WGPUMapAsyncStatus, WGPUStringView, void *, void *)")
def _mapped(status, message, outcome, _):
    text = native_ffi.string(message.data, message.length).decode(errors="replace") if message.data else ""
    native_ffi.from_handle(outcome).append((status, text))


def map_read(gpu: GPUDevice, buffer, nbytes: int) -> np.ndarray:
    """The first nbytes of a MAP_READ buffer (uint8), once the work submitted before has finished.
    wgpu-py's map_sync waits through a polling thread and an extra empty submit; this maps through
    wgpu-native and polls the device on this thread: busily for up to SPIN_WAIT_S, then blocking.
    On an H200 (live steps interleaved in one process, medians of ~240 steps in two runs) map_sync
    took 5.44 and 5.31 ms, this blocking at once 5.33 and 5.20, spinning first 5.21 and 5.01 (2 ms of
    spin instead of 4: 0.04-0.14 ms slower). No spin on software adapters, whose GPU is the CPU cores
    a spin would take."""
    outcome: list[tuple[int, str]] = []
    handle = native_ffi.new_handle(outcome)
    info = native_ffi.new("WGPUBufferMapCallbackInfo *")
    info.mode = native_lib.WGPUCallbackMode_AllowProcessEvents
    info.callback = _mapped
    info.userdata1 = handle
    native_lib.wgpuBufferMapAsync(buffer._internal, native_lib.WGPUMapMode_Read, 0, nbytes, info[0])
    device = gpu.device._internal
    spin_until = time.perf_counter() + (0.0 if gpu.is_software else SPIN_WAIT_S)
    while not outcome:
        native_lib.wgpuDevicePoll(device, time.perf_counter() >= spin_until, native_ffi.NULL)
    status, text = outcome[0]
    if status != native_lib.WGPUMapAsyncStatus_Success:
        raise RuntimeError(f"could not read back the {buffer.label or 'GPU'} buffer ({text or f'map status {status}'})")
    data = native_lib.wgpuBufferGetConstMappedRange(buffer._internal, 0, nbytes)
    out = np.frombuffer(native_ffi.buffer(data, nbytes), dtype=np.uint8).copy()
    native_lib.wgpuBufferUnmap(buffer._internal)
    return out


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
        self._bound: list[tuple[str, object, object] | None] = []  # per op at the current m: kernel, pipeline, bind group

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
        return name, pipeline, op.bind_groups[pipeline]

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
                for op, g, bound in zip(self.ops, self._grids, self._bound)
                if isinstance(op, _Dispatch) and g[0] * g[1] * g[2]]

    def encode(self, encoder, m: int, around: Callable | None = None, ops: slice = slice(None)) -> None:
        """Record the ops (a slice of them: ops); around(cpass, (tag, weight bytes), before) is called on
        both sides of each dispatch (profiling).
        Each dispatch's pipeline, bind group and grid go straight to wgpu-native: wgpu-py's wrappers took
        3.2 instead of 1.5 us per dispatch (development machine's CPU), and with ~300 dispatches the
        recording of a live step is on its critical path once the GPU's share is short: live step medians
        7.9-8.4 ms through the wrappers, 6.5-6.6 direct (H200, same job). A bad command is still reported,
        by the pass's end() or the encoder's finish(), which go through wgpu-py."""
        cpass = None
        for op, grid, bound in zip(self.ops[ops], self._grids[ops], self._bound[ops]):
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
                native_pass = cpass._internal
            if around:
                what = (f"{bound[0]} {op.tag}".strip(), op.weight_bytes)
                around(cpass, what, True)
            native_lib.wgpuComputePassEncoderSetPipeline(native_pass, bound[1]._internal)
            native_lib.wgpuComputePassEncoderSetBindGroup(native_pass, 0, bound[2]._internal, 0, native_ffi.NULL)
            native_lib.wgpuComputePassEncoderDispatchWorkgroups(native_pass, gx, gy, gz)
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
    dispatches) leaves the critical path: live step medians 5.69-6.29 -> 5.29-5.34 ms on an H200 (same
    job). A mismatched or unused buffer is dropped unsubmitted.
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
    time of their own (a live step on an H200: 6.25 ms of GPU time stamped per dispatch, 4.7 whole)."""

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
            for (tag, nbytes), dt in zip(timed, t[1::2] - t[0::2]):
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


# --- operations: one helper per kernel, shared by the engine and the kernel checks ------------------

def _same(m: int) -> int:
    return m


def q4_kernel(m: int, n: int, k: int) -> tuple[str, dict | None]:
    """The Q4 kernel for m rows of x and an [n, k] weight chunk: up to STAGED_MAX_ROWS go to q4_matvec
    (one row in teams of matvec_team, slices of two, or for 3-4 rows of a wide matrix one slice with
    teams of 16), up to MATVEC_MAX_ROWS to q4_direct (even slices of at most DIRECT_SLICE_ROWS), more to
    q4_tiles."""
    if m <= STAGED_MAX_ROWS:
        if m > 2 and n >= WIDE_RATIO * k:
            return "q4_matvec", {"ROWS": m, "TEAM": 16}
        return "q4_matvec", {"ROWS": min(m, 2), "TEAM": matvec_team(n, k) if m == 1 else 32}
    if m <= MATVEC_MAX_ROWS:
        slices = -(-m // DIRECT_SLICE_ROWS)
        return "q4_direct", {"ROWS": -(-m // slices), "TEAM": direct_team(n, k)}
    return "q4_tiles", None


def matvec_team(n: int, k: int) -> int:
    """Lanes per team of q4_matvec for one row of x and n weight rows (two per team): 64 when teams of 32
    would give fewer than MATVEC_LANES lanes in all and the row fills a trip of 64 lanes (16 groups of
    four blocks), else 32."""
    return 64 if n // 2 * 32 < MATVEC_LANES and k >= 16 * 128 else 32


def direct_team(n: int, k: int) -> int:
    """Lanes per team of q4_direct: the narrowest team (from 16) that gives DIRECT_LANES lanes in all,
    and no wider than the row's groups of four blocks can occupy (4 lanes each)."""
    team = 16
    while team < 128 and team * n // 4 < DIRECT_LANES and team // 2 < -(-k // 128):
        team *= 2
    return team


@dataclass(frozen=True)
class RopeKV:
    """Where the fused q|k|v projection's epilogue (linear(rope=...)) puts its rows: q rotated into
    linear's out [m, n_heads * head_dim], k rotated and v as they are into the KV ring at slot pos % cap,
    for x row m at position state.pos0 + m."""
    table: object  # [table_rows, head_dim/2] (cos, sin), see write_rope_table
    k_cache: object  # [cap, n_kv * head_dim]
    v_cache: object
    state: object  # u32 [pos0, out_idx]
    n_heads: int
    n_kv: int
    head_dim: int
    cap: int
    table_rows: int


def linear(prog: Program, w, x, out, *, k: int, x_stride: int | None = None, out_stride: int | None = None,
           out_base: int = 0, bias=None, gelu: bool = False, accumulate: bool = False,
           rows: Callable[[int], int] = _same, swiglu: bool = False, norm: tuple | None = None,
           rope: RopeKV | None = None, tag: str = "") -> None:
    """out[rows(m), w.rows] (+)= act(x . w^T + bias), one dispatch per row chunk of w (see weights.Matrix);
    the Q4 kernel is chosen by the row count (q4_kernel).
    swiglu: w is a gate|up pair matrix (weights.gate_up_q4) and out[rows(m), w.rows/2] = silu(w1.x) * w3.x
    (no bias, activation or accumulation).
    norm: (gain buffer [k], eps): x is RMS-normalised with that gain first (Q4 weights only).
    rope: w is the fused q|k|v projection (chunks of whole row pairs); its rows (+ bias) are rotated and
    stored as RopeKV says (no activation or accumulation).
    tag: the weight's name in profiles."""
    x_stride = k if x_stride is None else x_stride
    out_stride = (w.rows // 2 if swiglu else w.rows) if out_stride is None else out_stride
    flags = (BIAS if bias is not None else 0) | (GELU if gelu else 0) | (ACCUMULATE if accumulate else 0)
    pairs = any(c.row0 % 2 or c.rows % 2 for c in w.chunks)
    if swiglu:
        if flags or not w.quantized or pairs:
            raise ValueError("the SwiGLU epilogue takes a Q4 gate|up matrix of whole row pairs, nothing else")
        flags = SWIGLU
    if rope is not None:
        if flags & (GELU | ACCUMULATE) or swiglu or not w.quantized or pairs or rope.head_dim % 2:
            raise ValueError("the RoPE epilogue takes a Q4 q|k|v matrix of whole row pairs, a bias at most")
        flags |= ROPE
    if w.quantized and (x_stride % 4 or k % 32):
        raise ValueError("q4 kernels read x as vec4 and whole blocks")
    if norm is not None and not w.quantized:
        raise ValueError("the folded RMSNorm is a feature of the Q4 kernels")
    gain, eps = norm if norm is not None else (dummy(prog.gpu), 0.0)
    flags |= NORM if norm is not None else 0
    bias_buf = bias if bias is not None else dummy(prog.gpu)
    if rope is not None:
        rope_geo = (rope.head_dim, rope.n_heads * rope.head_dim, rope.n_kv * rope.head_dim, rope.cap, rope.table_rows)
        rope_bufs = [rope.table, rope.k_cache, rope.v_cache, rope.state]
    else:
        rope_geo = (0, 0, 0, 1, 1)
        rope_bufs = [dummy(prog.gpu), dummy(prog.gpu, "k"), dummy(prog.gpu, "v"), dummy(prog.gpu)]
    # Products whose epilogue is per element (bias, GELU, accumulation) may split k over workgroups.
    splittable = w.quantized and prog.max_rows is not None and not flags & (NORM | SWIGLU | ROPE)

    def chunk(c):
        """The dispatches of one row chunk of w (a function, so that each chunk's closures see their own c)."""
        def variant(m):
            return q4_kernel(rows(m), c.rows, k) if w.quantized else ("f32_rows", None)

        def splits(m):
            return tile_splits(rows(m), c.rows, k) if splittable and variant(m)[0] == "q4_tiles" else 1

        def params(m):
            return (rows(m), c.rows, k, x_stride, out_stride, out_base, c.row0, flags, float(eps), *rope_geo,
                    splits(m))

        def grid(m):
            if splits(m) > 1:  # the split product below instead
                return 0, 0, 0
            name, constants = variant(m)
            if name == "q4_tiles":
                return tile_grid(rows(m), c.rows)
            geo = constants or KERNEL_CONSTANTS[name]
            # teams of TEAM lanes per WEIGHT_ROWS_PER_TEAM weight rows, slices of ROWS rows of x
            per_team = WEIGHT_ROWS_PER_TEAM.get(name, 1)
            return (*groups_2d(math.ceil(c.rows / (per_team * WORKGROUP // geo["TEAM"]))),
                    math.ceil(rows(m) / geo["ROWS"]))

        nbytes = c.rows * (k // 32 * 18 if w.quantized else k * 4)  # the weight itself (without padding)
        weights = list(c.buffers) if w.quantized else [c.buffers[0], None]  # f32: binding 2 only
        extra = [gain, *rope_bufs] if w.quantized else []  # q4_epilogue.wgsl's bindings
        prog.dispatch(variant, [x, *weights, bias_buf, out, *extra], params, grid, tag, nbytes)
        if splittable:
            # Split: q4_tiles writes each slice of k's partial sums to the scratch, split_sum adds them.
            partials = prog.scratch(MAX_SPLITS * rows(prog.max_rows) * c.rows * 4)

            def split_grid(m):
                tiles = tile_grid(rows(m), c.rows)
                return (tiles[0], tiles[1], tiles[2] * splits(m)) if splits(m) > 1 else (0, 0, 0)

            prog.dispatch("q4_tiles", [x, *weights, bias_buf, partials, *extra], params, split_grid, tag, nbytes)
            prog.dispatch("split_sum", [partials, None, None, bias_buf, out], params,
                          lambda m: (math.ceil(c.rows / WORKGROUP), rows(m), 1) if splits(m) > 1 else (0, 0, 0),
                          f"{tag} split sum")

    for c in w.chunks:
        chunk(c)


def tile_splits(m: int, n: int, k: int) -> int:
    """Slices of k for q4_tiles on m rows of x and n weight rows: doubled (up to MAX_SPLITS) while the
    output tiles alone give fewer than SPLIT_BELOW workgroups and each slice keeps two groups of four
    blocks or more."""
    tiles = math.prod(tile_grid(m, n))
    groups = math.ceil(k / 128)
    splits = 1
    while splits < MAX_SPLITS and tiles * splits < SPLIT_BELOW and groups // (2 * splits) >= 2:
        splits *= 2
    return splits


def tile_grid(m: int, n: int) -> tuple[int, int, int]:
    """q4_tiles' grid: tiles of TN weight rows (over x and y), by tiles of TM rows of x (z)."""
    geo = KERNEL_CONSTANTS["q4_tiles"]
    return *groups_2d(math.ceil(n / geo["TN"])), math.ceil(m / geo["TM"])


def rmsnorm(prog: Program, x, w, out, *, d: int, eps: float) -> None:
    """out = x / sqrt(mean(x^2) + eps) * w, per row (where the norm cannot be folded into the next
    matrix kernel: linear(norm=...))."""
    prog.dispatch("rmsnorm", [x, w, out], lambda m: (m, d, float(eps)), lambda m: (*groups_2d(m), 1))


def attention(prog: Program, q, k_cache, v_cache, out, state, *, n_heads: int, n_kv: int, head_dim: int,
              cap: int, window: int) -> None:
    """out [m, n_heads * head_dim] = attention of the m queries q over the KV ring; with few queries the
    keys are split over workgroups (attention_splits) and their runs combined by a second dispatch."""
    if head_dim > 256 or head_dim % 4:
        raise ValueError("attention.wgsl supports head_dim <= 256, a multiple of 4")
    scale = float(np.float32(1.0 / math.sqrt(head_dim)))

    def variant(m):
        return "attention", attention_block(m, head_dim)

    split_from = prog.kernels.attention_split_from

    def splits(m):
        return attention_splits(m, n_heads, window, split_from)

    def params(m):
        return m, n_heads, n_kv, head_dim, cap, window, scale, splits(m)

    # Split runs of one query row and head: an unnormalised vec4 per 4 of head_dim, and (max, sum). A
    # split attention has at most split_from workgroups (attention_splits), each with a block of at most
    # ATTENTION_BLOCK query rows; one query splits the most (it has the fewest blocks).
    partials = (prog.scratch(split_from * ATTENTION_BLOCK * (head_dim // 4 + 1) * 16) if splits(1) > 1
                else dummy(prog.gpu, "partials"))

    def combine_grid(m):
        return (*groups_2d(math.ceil(m * n_heads * head_dim // 4 / 64)), 1) if splits(m) > 1 else (0, 0, 0)

    prog.dispatch(variant, [q, k_cache, v_cache, out, state, partials], params,
                  lambda m: (n_heads, math.ceil(m / attention_rows(m)), splits(m)))
    prog.dispatch(lambda m: ("attention_combine", {"SPLITS": splits(m)}), [partials, out], params, combine_grid)


def attention_splits(m: int, n_heads: int, window: int, split_from: int = ATTENTION_SPLIT_FROM) -> int:
    """Runs of keys per query block for m queries: with a window of ATTENTION_SPLIT_WINDOW keys or more,
    doubled (up to ATTENTION_MAX_SPLITS) while the blocks and heads give no more than split_from
    workgroups with it (Kernels.attention_split_from)."""
    if window < ATTENTION_SPLIT_WINDOW:
        return 1
    blocks = n_heads * math.ceil(m / attention_rows(m))
    splits = 1
    while splits < ATTENTION_MAX_SPLITS and 2 * splits * blocks <= split_from:
        splits *= 2
    return splits


def attention_rows(m: int) -> int:
    """attention.wgsl's query rows per workgroup for m query rows: blocks of ATTENTION_BLOCK rows once
    there are ATTENTION_BLOCK_FROM (their workgroups share key and value reads), else one row per
    workgroup (enough workgroups for a live step)."""
    return ATTENTION_BLOCK if m >= ATTENTION_BLOCK_FROM else 1


def attention_block(m: int, head_dim: int) -> dict:
    """attention.wgsl's constants for m query rows: rows per workgroup (attention_rows), keys per round,
    and invocations per key, which for one row per workgroup are teams of head_dim / 8 where that is a
    power of two from 4 to 32 (team_sum4's teams)."""
    if attention_rows(m) > 1:
        return {"ROWS": ATTENTION_BLOCK, "KEYS": 256, "KEY_LANES": 1}
    lanes = head_dim // 8
    team = lanes if head_dim % 8 == 0 and 4 <= lanes <= 32 and lanes & (lanes - 1) == 0 else 1
    return {"ROWS": 1, "KEYS": 1024, "KEY_LANES": team}


@dataclass(frozen=True)
class MelTables:
    """What log_mel.wgsl reads besides the samples, from audio.LogMel's float64 tables rounded to f32."""
    window: object  # [n_fft] periodic Hann
    twiddles: object  # [n_fft] (cos, sin)(2 pi j / n_fft)
    filters: object  # [n_fft/2 + 1, n_mels]
    bands: object  # u32 [n_mels, 2]: the first and past-the-last bin where each band's filter is not 0
    n_fft: int
    hop: int
    n_mels: int
    floor: float

    @classmethod
    def upload(cls, gpu: GPUDevice, front: LogMel) -> "MelTables":
        angles = 2 * np.pi * np.arange(front.n_fft) / front.n_fft
        nonzero = [np.flatnonzero(band) for band in front.filters.T]
        bands = np.array([(b[0], b[-1] + 1) if len(b) else (0, 0) for b in nonzero], dtype=np.uint32)
        return cls(upload(gpu, front.window.astype(np.float32), "hann window"),
                   upload(gpu, np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32), "twiddles"),
                   upload(gpu, front.filters.astype(np.float32), "mel filters"), upload(gpu, bands, "mel bands"),
                   front.n_fft, front.hop, front.filters.shape[1], front.floor)


def log_mel(prog: Program, samples, tables: MelTables, out, *, frames: Callable[[int], int], out_row0: int) -> None:
    """out rows out_row0 .. out_row0 + frames(m) = the log-mel features [n_mels] of the frames(m) STFT
    frames in samples (frame i at sample i * hop), as audio.LogMel.log_mel computes them."""
    n_fft = tables.n_fft
    if 4 * (5 * n_fft + n_fft // 2 + 1) > prog.gpu.limits["max-compute-workgroup-storage-size"]:
        raise ValueError(f"log_mel.wgsl holds a frame of {n_fft} samples in workgroup memory: too large here")
    n1 = max(d for d in range(1, math.isqrt(n_fft) + 1) if n_fft % d == 0)  # the DFT's two stages
    prog.dispatch(lambda m: ("log_mel", {"N_FFT": n_fft, "N1": n1, "N2": n_fft // n1}),
                  [samples, tables.window, tables.twiddles, tables.filters, tables.bands, out],
                  lambda m: (frames(m), tables.hop, tables.n_mels, out_row0, float(tables.floor)),
                  lambda m: (*groups_2d(frames(m)), 1), "log-mel")


def embed(prog: Program, table, tok, audio, x, state, *, d: int, audio_cap: int) -> None:
    """x[m] = audio ring row (pos0 + m) + dequantised table[tok[m]]; one dispatch per table chunk."""
    for c in table.chunks:
        prog.dispatch("embed_q4", [tok, audio, *c.buffers, x, state],
                      lambda m, c=c: (m, d, audio_cap, c.row0, c.rows),
                      lambda m: (math.ceil(d // 32 / 64), m, 1))


ARGMAX_SLICE = 4096  # argmax_common.wgsl SLICE


def argmax_parts(vocab: int) -> int:
    """Slice winners per row of logits (argmax's `part` buffer holds rows * this * 8 bytes)."""
    return math.ceil(vocab / ARGMAX_SLICE)


def argmax(prog: Program, logits, part, ids, tok, state, *, vocab: int) -> None:
    """ids[out_idx + m] = argmax(logits[m]); tok[0] = the last row's. Two stages through `part`, so
    that many workgroups share the vocabulary."""
    parts = argmax_parts(vocab)
    prog.dispatch("argmax_partial", [logits, part], lambda m: (m, vocab, parts), lambda m: (parts, m, 1))
    prog.dispatch("argmax", [part, ids, tok, state], lambda m: (m, vocab, parts), lambda m: (m, 1, 1))


def advance(prog: Program, state) -> None:
    prog.dispatch("advance", [state], lambda m: (m,), lambda m: (1, 1, 1))


_dummies: dict[tuple[int, str], object] = {}


def dummy(gpu: GPUDevice, role: str = "input"):
    """A small buffer bound where a kernel's optional binding (bias, norm gain, KV cache) is switched
    off. Inputs share one; each writable binding needs its own ("k", "v"): a buffer cannot be bound
    writable next to another binding of itself."""
    key = (id(gpu.device), role)
    if key not in _dummies:
        _dummies[key] = empty(gpu, 16, f"unused {role}")
    return _dummies[key]


def ring_runs(start: int, stop: int, *caps: int) -> list[tuple[int, int]]:
    """Split positions [start, stop) into runs (first position, length) that are contiguous in every ring
    of the given capacities (position p lives in row p % cap)."""
    runs, p = [], start
    while p < stop:
        n = min([stop - p] + [c - p % c for c in caps])
        runs.append((p, n))
        p += n
    return runs


def rope_table_bytes(head_dim: int, table_rows: int) -> int:
    return table_rows * head_dim // 2 * 8


def write_rope_table(gpu: GPUDevice, table, pos0: int, n: int, head_dim: int, theta: float, table_rows: int) -> None:
    """(cos, sin) pairs [hd/2, 2] of positions pos0 .. pos0+n into rows p % table_rows of `table`, computed
    by the reference's own function so the GPU rotates by bit-identical angles."""
    cos, sin = rope_tables(np.arange(pos0, pos0 + n), head_dim, theta)
    pairs = np.stack([cos, sin], axis=-1)  # [n, hd/2, 2]
    row = head_dim // 2 * 8
    for p, count in ring_runs(pos0, pos0 + n, table_rows):
        i = p - pos0
        gpu.queue.write_buffer(table, (p % table_rows) * row, pairs[i: i + count])


class PositionInputs:
    """What a program reads of its rows' positions: the state word [pos0, 0] (the decoder's `advance`
    kernel moves it on) and the RoPE rows of positions pos0 .. pos0+n. A live step writes its next
    chunk's while the GPU runs the step (write_ahead; queue writes take effect after the work submitted
    before them, so the chunk in flight keeps its own), and the next submit writes them only if they
    were not written ahead for it (ensure): they left the live step's way to its submit, 0.05-0.1 ms
    sooner on an H200 (map_read)."""

    def __init__(self, gpu: GPUDevice, state, rope, head_dim: int, theta: float, table_rows: int):
        self.gpu, self.state, self.rope = gpu, state, rope
        self.head_dim, self.theta, self.table_rows = head_dim, theta, table_rows
        self.forget()

    def forget(self) -> None:
        """After the buffers were written some other way (or a reset): nothing stands written ahead."""
        self._ahead = None  # (pos0, n) written ahead and not submitted yet

    def write_ahead(self, pos0: int, n: int) -> None:
        self._write(pos0, n)
        self._ahead = (pos0, n)

    def ensure(self, pos0: int, n: int) -> None:
        """The inputs of the chunk about to be submitted."""
        if self._ahead != (pos0, n):
            self._write(pos0, n)
        self._ahead = None

    def _write(self, pos0: int, n: int) -> None:
        self.gpu.queue.write_buffer(self.state, 0, np.array([pos0, 0], dtype=np.uint32))
        write_rope_table(self.gpu, self.rope, pos0, n, self.head_dim, self.theta, self.table_rows)


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
