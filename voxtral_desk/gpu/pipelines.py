"""WGSL assembly and the pipeline cache.

A kernel is assembled from pieces in `shaders/` (KERNEL_SOURCES), with its constants substituted for their
/*NAME*/ markers, the lines that end in ROW_LINE repeated once per row of x, and the subgroup-size argument
added where subgroups run. Pipelines are built once per device and per variant (Kernels): a kernel with
constants, such as q4_matvec's rows of x per slice, is built once for each value it is used with.
"""
from __future__ import annotations

from pathlib import Path

from . import native, shaders_dir
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
# The constants of kernels built with one fixed set: ROWS, rows of x per workgroup slice (grid z); TEAM,
# lanes per team of weight rows; TM x TN, q4_tiles' output tile (rows of x by weight rows), the fastest
# for file mode (docs/SPEED.md, seventh session). Kernels built per row count take theirs from their
# weight format (formats.Q4_0Format.kernel).
KERNEL_CONSTANTS = {
    "q4_tiles": {"TM": 64, "TN": 128},
    "f32_rows": {"TEAM": 32, "ROWS": 8},
}
WORKGROUP = 256  # invocations of the matrix kernels' workgroups
SUBGROUP_ARG = "/*SUBGROUP_SIZE*/"
ROW_LINE = "// each row j"  # WGSL lines ending so are repeated for j = 0 .. ROWS-1


def shader_module(device, label: str, code: str, runtime_checks: bool):
    """The WGSL compiled with or without the checks naga adds by default: a clamp of every array index and
    a counter bounding every loop. The engine runs without them, a tenth of a live step's GPU time
    (docs/SPEED.md, seventh session): our kernels keep their indices in bounds themselves, and the kernel
    checks run both ways (tests/gpu/test_kernels.py), so a kernel that strays differs."""
    if runtime_checks:
        return device.create_shader_module(label=label, code=code)
    return native.unchecked_shader_module(device, label, code)


class Kernels:
    """Pipelines of one device, built on first use and kept. runtime_checks: compile the kernels with
    naga's index clamps and loop bounds (see shader_module). shaders: a folder of WGSL pieces to build
    from instead of the package's `shaders/` (edited kernels, compared by benchmarks/shader_ab.py).
    attention_split_from: None for the kernel-choice policy's choice on this device
    (ops.attention_split_from), or a number that overrides it (tests, kernel checks)."""

    def __init__(self, gpu: GPUDevice, use_subgroups: bool | None = None, runtime_checks: bool = False,
                 shaders: Path | None = None):
        self.gpu = gpu
        self.shaders = shaders
        self.subgroups = gpu.has_subgroups and use_subgroups is not False
        self.runtime_checks = runtime_checks
        self.attention_split_from: int | None = None
        self._pipelines: dict[str, object] = {}
        self._variants: dict[tuple, object] = {}  # (name, constants) -> pipeline, without reassembling the WGSL
        self.profiler = None  # a program.Profiler while profiling (bench --profile)

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
            source = None if constants is None else self.source(name, constants)
            self._variants[key] = self.pipeline(name, source)
        return self._variants[key]


def shared_kernels(gpu: GPUDevice, use_subgroups: bool | None = None, shaders: Path | None = None) -> Kernels:
    """One set of pipelines per device, variant and shader folder, shared by every engine on it."""
    kernels = Kernels(gpu, use_subgroups, shaders=shaders)
    return gpu.cached(("kernels", kernels.subgroups, shaders), lambda: kernels)
