"""Weight formats on the GPU: how a matrix of each format is laid out in GPU buffers, and which kernel
multiplies it. `ops.linear` asks the weight's format; adding a format (Q8_0, Q4_K, F16, ...) is one new
entry here (a WeightFormat subclass and its instance) plus its WGSL kernels in `shaders/`.

An entry provides:
- `name`; `repack(data)`: the raw tensor (rows first, as the model file stores it) -> k and the host
  arrays of its GPU buffers, each [rows, ...]; `parts`: a label per array;
- `row_bytes(k)`: bytes of one row in its largest buffer, which the binding limit bounds (matrices larger
  than the limit are split by rows into chunks with buffers of their own: `matrix`);
- `stream_bytes(k)`: bytes of one row that a product reads (dispatch accounting in profiles);
- `kernel(m, n, k)`: the kernel and its constants (None: pipelines.KERNEL_CONSTANTS) for m rows of x
  against an [n, k] chunk; `rows_per_team`: weight rows per team of lanes for each team kernel (its
  grid: `grid`); `tile_kernel`, `tile_grid`, `max_splits`, `k_splits(m, n, k)`: its tiled kernel, whose k
  may be split over workgroups, its grid, and into how many slices k is split (summed by split_sum);
- `epilogues`: whether its kernels carry q4_epilogue.wgsl (folded RMSNorm, SwiGLU, RoPE + KV, bindings
  6-10); `vec4_x`, `block`: whether its kernels read x as vec4 in whole blocks of `block` values;
  `embed_kernel`: the embedding lookup of a table in this format, if any.
A chunk's buffers are bound at bindings 2 and 3 of the kernel (None where it has one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..quant import BLOCK, BLOCK_BYTES, split_q4_0
from .device import GPUDevice
from .pipelines import KERNEL_CONSTANTS, WORKGROUP
from .program import groups_2d, upload


@dataclass
class Chunk:
    row0: int
    rows: int
    buffers: tuple  # the format's arrays (WeightFormat.repack) of rows row0 .. row0 + rows


@dataclass
class Matrix:
    rows: int
    k: int
    format: WeightFormat
    chunks: list[Chunk]


def row_ranges(rows: int, row_bytes: int, limit: int, multiple: int = 1) -> list[tuple[int, int]]:
    """Row ranges of at most `limit` bytes, each a whole number of `multiple` rows."""
    per_chunk = limit // row_bytes // multiple * multiple
    if per_chunk < 1:
        raise ValueError(f"binding limit {limit} B is smaller than {multiple} weight row(s) of {row_bytes} B")
    return [(r, min(rows, r + per_chunk)) for r in range(0, rows, per_chunk)]


class WeightFormat:
    """The interface of a format (see the module's docstring) and what every format shares."""

    name = ""
    parts: tuple[str, ...] = ()
    rows_per_team: dict[str, int] = {}
    tile_kernel: str | None = None
    max_splits = 1
    epilogues = False
    vec4_x = False
    block = 1
    embed_kernel: str | None = None

    def repack(self, data: np.ndarray) -> tuple[int, tuple[np.ndarray, ...]]:
        raise NotImplementedError

    def row_bytes(self, k: int) -> int:
        raise NotImplementedError

    def stream_bytes(self, k: int) -> int:
        raise NotImplementedError

    def kernel(self, m: int, n: int, k: int) -> tuple[str, dict | None]:
        raise NotImplementedError

    def tile_grid(self, constants: dict | None, m: int, n: int) -> tuple[int, int, int]:
        raise NotImplementedError

    def k_splits(self, m: int, n: int, k: int) -> int:
        return 1

    def grid(self, kernel: str, constants: dict | None, m: int, n: int) -> tuple[int, int, int]:
        """The kernel's grid for m rows of x and n weight rows: tile_grid for the tile kernel; for a team
        kernel, teams of TEAM lanes per rows_per_team weight rows (x, y), slices of ROWS rows of x (z)."""
        if kernel == self.tile_kernel:
            return self.tile_grid(constants, m, n)
        geo = constants or KERNEL_CONSTANTS[kernel]
        rows_per_group = self.rows_per_team[kernel] * WORKGROUP // geo["TEAM"]
        return *groups_2d(math.ceil(n / rows_per_group)), math.ceil(m / geo["ROWS"])

    def matrix(self, gpu: GPUDevice, data: np.ndarray, limit: int, label: str, row_multiple: int = 1) -> Matrix:
        """data in this format on the GPU, in chunks of at most `limit` bytes per buffer, each a whole
        multiple of `row_multiple` rows."""
        k, arrays = self.repack(data)
        rows = arrays[0].shape[0]
        chunks = []
        for r0, r1 in row_ranges(rows, self.row_bytes(k), limit, row_multiple):
            names = (f"{label} {part}[{r0}:{r1}]" if part else f"{label}[{r0}:{r1}]" for part in self.parts)
            buffers = tuple(upload(gpu, a[r0:r1], name) for name, a in zip(names, arrays, strict=True))
            chunks.append(Chunk(r0, r1 - r0, buffers))
        return Matrix(rows, k, self, chunks)

    def gate_up(self, gpu: GPUDevice, w1: np.ndarray, w3: np.ndarray, limit: int, label: str) -> Matrix:
        """The SwiGLU projections as one matrix of row pairs (w1 row j at 2j, w3 row j at 2j + 1) in chunks of
        whole pairs, for the kernels' SwiGLU epilogue (ops.linear(swiglu=True)), which combines each pair
        inside one workgroup."""
        if w1.shape != w3.shape:
            raise ValueError(f"gate and up projections differ in shape: {w1.shape} vs {w3.shape}")
        pairs = np.stack([w1, w3], axis=1).reshape(2 * w1.shape[0], w1.shape[1])
        return self.matrix(gpu, pairs, limit, label, row_multiple=2)


def interleave_q4(scales: np.ndarray, nibbles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """split_q4_0's [rows, nb] scales and [rows, nb, 4] words -> rows of G = ceil(nb/4) groups of four
    blocks: scales [rows, G, 4] and words [rows, G, 4 (word c), 4 (block t)], so that one 16-byte load
    brings word c of four consecutive blocks (q4_matvec.wgsl: four lanes share a group, each loading
    16 bytes of each of its weight rows). Rows are padded to whole groups with blocks of scale 0 and q = 8,
    which are exactly 0."""
    rows, nb = scales.shape
    pad = -nb % 4
    if pad:
        scales = np.concatenate([scales, np.zeros((rows, pad), scales.dtype)], axis=1)
        nibbles = np.concatenate([nibbles, np.full((rows, pad, 4), 0x88888888, np.uint32)], axis=1)
    g = (nb + pad) // 4
    words = nibbles.reshape(rows, g, 4, 4).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(scales.reshape(rows, g, 4)), np.ascontiguousarray(words)


class Q4_0Format(WeightFormat):
    """ggml's Q4_0 (quant.py), kept 4-bit on the GPU: each row's f16 scales and 32-bit nibble words in
    groups of four blocks (interleave_q4), 18 bytes per block of 32 weights as in the file.

    Its kernel for m rows of x (`kernel`), chosen on benchmarks/matvec_bench.py and engine runs (sessions
    of docs/SPEED.md in brackets):
    - up to STAGED_MAX_ROWS: q4_matvec, which stages x in workgroup memory, so each x value read serves
      every weight row of the workgroup; slices of two rows of x: their repeated weight reads hit
      L2, while a lane's arithmetic grows with its rows (second). On wide matrices (n >= WIDE_RATIO * k)
      3-4 rows take one slice in teams of 16 (fifth). One row takes teams of 32 lanes, or of 64 where teams
      of 32 would give fewer than MATVEC_LANES lanes in all and leave multiprocessors idle (matvec_team,
      tenth);
    - up to MATVEC_MAX_ROWS (speculative forwards, third; prefill, fifth): q4_direct, x read straight from
      memory by teams of four weight rows, in even slices of at most DIRECT_SLICE_ROWS rows (third), its
      team as narrow as gives DIRECT_LANES lanes (direct_team);
    - more: q4_tiles, register tiles of rows of x by weight rows; its k is split into up to max_splits
      slices while its output tiles alone give fewer than SPLIT_BELOW workgroups (k_splits, third).
    """

    name = "Q4_0"
    parts = ("q4", "scales")  # the nibble words [rows, G, 4, 4] u32 and the scales [rows, G, 4] f16
    rows_per_team = {"q4_matvec": 2, "q4_direct": 4}
    tile_kernel = "q4_tiles"
    epilogues = True
    vec4_x = True
    block = BLOCK
    embed_kernel = "embed_q4"
    STAGED_MAX_ROWS = 4
    WIDE_RATIO = 3
    MATVEC_MAX_ROWS = 64  # one q4_tiles tile of rows, which fewer rows leave partly empty
    DIRECT_SLICE_ROWS = 4
    DIRECT_LANES = 24576  # lanes q4_direct's team width aims for in all (best on the 8-row shapes)
    MATVEC_LANES = 65536  # lanes below which q4_matvec's teams for one row of x are 64 wide
    max_splits = 8
    SPLIT_BELOW = 528  # workgroups: 4 per multiprocessor of an H200

    def repack(self, data: np.ndarray) -> tuple[int, tuple[np.ndarray, np.ndarray]]:
        """Raw Q4_0 blocks [rows, K/32*18] uint8 -> K, (words, scales) (interleave_q4)."""
        scales, words = interleave_q4(*split_q4_0(data))
        return data.shape[1] // BLOCK_BYTES * BLOCK, (words, scales)

    def row_bytes(self, k: int) -> int:
        """Bytes of one row's nibble words on the GPU (the larger of its two buffers), padding included."""
        return -(-(k // BLOCK) // 4) * 64

    def stream_bytes(self, k: int) -> int:
        return k // BLOCK * BLOCK_BYTES

    def kernel(self, m: int, n: int, k: int) -> tuple[str, dict | None]:
        if m <= self.STAGED_MAX_ROWS:
            if m > 2 and n >= self.WIDE_RATIO * k:
                return "q4_matvec", {"ROWS": m, "TEAM": 16}
            return "q4_matvec", {"ROWS": min(m, 2), "TEAM": self.matvec_team(n, k) if m == 1 else 32}
        if m <= self.MATVEC_MAX_ROWS:
            slices = -(-m // self.DIRECT_SLICE_ROWS)
            return "q4_direct", {"ROWS": -(-m // slices), "TEAM": self.direct_team(n, k)}
        return "q4_tiles", None

    def matvec_team(self, n: int, k: int) -> int:
        """Lanes per team of q4_matvec for one row of x and n weight rows (two per team): 64 when teams of 32
        would give fewer than MATVEC_LANES lanes in all and the row fills a trip of 64 lanes (16 groups of
        four blocks), else 32."""
        return 64 if n // 2 * 32 < self.MATVEC_LANES and k >= 16 * 128 else 32

    def direct_team(self, n: int, k: int) -> int:
        """Lanes per team of q4_direct: the narrowest team (from 16) that gives DIRECT_LANES lanes in all,
        and no wider than the row's groups of four blocks can occupy (4 lanes each)."""
        team = 16
        while team < 128 and team * n // 4 < self.DIRECT_LANES and team // 2 < -(-k // 128):
            team *= 2
        return team

    def k_splits(self, m: int, n: int, k: int) -> int:
        """Slices of k for q4_tiles on m rows of x and n weight rows: doubled (up to max_splits) while the
        output tiles alone give fewer than SPLIT_BELOW workgroups and each slice keeps two groups of four
        blocks or more."""
        tiles = math.prod(self.tile_grid(None, m, n))
        groups = math.ceil(k / 128)
        splits = 1
        while splits < self.max_splits and tiles * splits < self.SPLIT_BELOW and groups // (2 * splits) >= 2:
            splits *= 2
        return splits

    def tile_grid(self, constants: dict | None, m: int, n: int) -> tuple[int, int, int]:
        """q4_tiles' grid: tiles of TN weight rows (over x and y), by tiles of TM rows of x (z)."""
        geo = constants or KERNEL_CONSTANTS["q4_tiles"]
        return *groups_2d(math.ceil(n / geo["TN"])), math.ceil(m / geo["TM"])


class F32Format(WeightFormat):
    """float32 rows as they are (the conv stem's kernels, as [out, 3 * in] rows), multiplied by f32_rows."""

    name = "F32"
    parts = ("",)
    rows_per_team = {"f32_rows": 1}

    def repack(self, data: np.ndarray) -> tuple[int, tuple[np.ndarray]]:
        w = np.ascontiguousarray(data, dtype=np.float32)
        return w.shape[1], (w,)

    def row_bytes(self, k: int) -> int:
        return k * 4

    def stream_bytes(self, k: int) -> int:
        return k * 4

    def kernel(self, m: int, n: int, k: int) -> tuple[str, dict | None]:
        return "f32_rows", None


Q4_0 = Q4_0Format()
F32 = F32Format()
