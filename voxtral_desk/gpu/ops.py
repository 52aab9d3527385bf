"""The op catalogue: one helper per kernel, shared by the engine's stages and the kernel checks, each
adding its dispatches to a Program, with the kernel-choice policy that goes with it. Matrix products ask
their weight's format for the kernel (formats.py); attention chooses its block and split of the keys here.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..audio import LogMel
from ..model_math import rope_tables
from .device import GPUDevice
from .formats import Matrix
from .pipelines import WORKGROUP, Kernels
from .program import Program, dummy, groups_2d, ring_runs, upload

# linear_out.wgsl flags
BIAS, GELU, ACCUMULATE, SWIGLU, NORM, ROPE = 1, 2, 4, 8, 16, 32
# Query rows per workgroup of attention.wgsl from ATTENTION_BLOCK_FROM rows on: the rows of a block share
# their key and value reads (docs/SPEED.md, third session).
ATTENTION_BLOCK = 8
ATTENTION_BLOCK_FROM = 16
# Attention with fewer workgroups (heads times query blocks) than ATTENTION_SPLIT_FROM splits its keys into
# runs, up to ATTENTION_MAX_SPLITS, so that the workgroups reach about that number (attention_splits), when
# its window holds ATTENTION_SPLIT_WINDOW keys or more: a long window's few workgroups leave most of a GPU
# idle, a short one (the encoder's) is slower split (docs/SPEED.md, seventh session). Not on software
# adapters, whose workgroups cost tens of microseconds whatever their keys (attention_split_from).
ATTENTION_SPLIT_FROM = 256
ATTENTION_MAX_SPLITS = 8
ATTENTION_SPLIT_WINDOW = 2048
KV_DTYPE = np.float16  # of the KV caches, written by q4_epilogue.wgsl and read by attention.wgsl
KV_BYTES = np.dtype(KV_DTYPE).itemsize
ARGMAX_SLICE = 4096  # argmax_common.wgsl SLICE


def _same(m: int) -> int:
    return m


# --- matrix products ---------------------------------------------------------------------------------

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


def linear(prog: Program, w: Matrix, x, out, *, k: int, x_stride: int | None = None, out_stride: int | None = None,
           out_base: int = 0, bias=None, gelu: bool = False, accumulate: bool = False,
           rows: Callable[[int], int] = _same, swiglu: bool = False, norm: tuple | None = None,
           rope: RopeKV | None = None, tag: str = "") -> None:
    """out[rows(m), w.rows] (+)= act(x . w^T + bias), one dispatch per row chunk of w (formats.Matrix), by
    the kernel w's format chooses for the row count (WeightFormat.kernel).
    swiglu: w is a gate|up pair matrix (WeightFormat.gate_up) and out[rows(m), w.rows/2] = silu(w1.x) * w3.x
    (no bias, activation or accumulation).
    norm: (gain buffer [k], eps): x is RMS-normalised with that gain first.
    rope: w is the fused q|k|v projection (chunks of whole row pairs); its rows (+ bias) are rotated and
    stored as RopeKV says (no activation or accumulation).
    swiglu, norm and rope are epilogues of formats whose kernels carry them (WeightFormat.epilogues).
    tag: the weight's name in profiles."""
    fmt = w.format
    x_stride = k if x_stride is None else x_stride
    out_stride = (w.rows // 2 if swiglu else w.rows) if out_stride is None else out_stride
    flags = (BIAS if bias is not None else 0) | (GELU if gelu else 0) | (ACCUMULATE if accumulate else 0)
    pairs = any(c.row0 % 2 or c.rows % 2 for c in w.chunks)
    if swiglu:
        if flags or not fmt.epilogues or pairs:
            raise ValueError("the SwiGLU epilogue takes a Q4 gate|up matrix of whole row pairs, nothing else")
        flags = SWIGLU
    if rope is not None:
        if flags & (GELU | ACCUMULATE) or swiglu or not fmt.epilogues or pairs or rope.head_dim % 2:
            raise ValueError("the RoPE epilogue takes a Q4 q|k|v matrix of whole row pairs, a bias at most")
        flags |= ROPE
    if fmt.vec4_x and (x_stride % 4 or k % fmt.block):
        raise ValueError(f"{fmt.name} kernels read x as vec4 and whole blocks")
    if norm is not None and not fmt.epilogues:
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
    splittable = fmt.tile_kernel is not None and prog.max_rows is not None and not flags & (NORM | SWIGLU | ROPE)

    def chunk(c):
        """The dispatches of one row chunk of w (a function, so that each chunk's closures see their own c)."""
        def variant(m):
            return fmt.kernel(rows(m), c.rows, k)

        def splits(m):
            return fmt.k_splits(rows(m), c.rows, k) if splittable and variant(m)[0] == fmt.tile_kernel else 1

        def params(m):
            return (rows(m), c.rows, k, x_stride, out_stride, out_base, c.row0, flags, float(eps), *rope_geo,
                    splits(m))

        def grid(m):
            if splits(m) > 1:  # the split product below instead
                return 0, 0, 0
            return fmt.grid(*variant(m), rows(m), c.rows)

        nbytes = c.rows * fmt.stream_bytes(k)  # the weight itself (without padding)
        weights = [*c.buffers, None][:2]  # bindings 2 and 3
        extra = [gain, *rope_bufs] if fmt.epilogues else []  # q4_epilogue.wgsl's bindings
        prog.dispatch(variant, [x, *weights, bias_buf, out, *extra], params, grid, tag, nbytes)
        if splittable:
            # Split: the tile kernel writes each slice of k's partial sums to the scratch, split_sum adds them.
            partials = prog.scratch(fmt.max_splits * rows(prog.max_rows) * c.rows * 4)

            def split_grid(m):
                tiles = fmt.tile_grid(None, rows(m), c.rows)
                return (tiles[0], tiles[1], tiles[2] * splits(m)) if splits(m) > 1 else (0, 0, 0)

            prog.dispatch(fmt.tile_kernel, [x, *weights, bias_buf, partials, *extra], params, split_grid, tag, nbytes)
            prog.dispatch("split_sum", [partials, None, None, bias_buf, out], params,
                          lambda m: (math.ceil(c.rows / WORKGROUP), rows(m), 1) if splits(m) > 1 else (0, 0, 0),
                          f"{tag} split sum")

    for c in w.chunks:
        chunk(c)


# --- norms and attention ---------------------------------------------------------------------------

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

    split_from = attention_split_from(prog.kernels)

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


def attention_split_from(kernels: Kernels) -> int:
    """The workgroups below which attention splits its keys on this device: Kernels.attention_split_from
    where set, else ATTENTION_SPLIT_FROM, or 0 (never) on a software adapter."""
    if kernels.attention_split_from is not None:
        return kernels.attention_split_from
    return 0 if kernels.gpu.is_software else ATTENTION_SPLIT_FROM


def attention_splits(m: int, n_heads: int, window: int, split_from: int = ATTENTION_SPLIT_FROM) -> int:
    """Runs of keys per query block for m queries: with a window of ATTENTION_SPLIT_WINDOW keys or more,
    doubled (up to ATTENTION_MAX_SPLITS) while the blocks and heads give no more than split_from
    workgroups with it (attention_split_from)."""
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


# --- audio front end, embeddings, argmax -----------------------------------------------------------

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


def embed(prog: Program, table: Matrix, tok, audio, x, state, *, d: int, audio_cap: int) -> None:
    """x[m] = audio ring row (pos0 + m) + dequantised table[tok[m]]; one dispatch per table chunk, by the
    table's format's lookup kernel (WeightFormat.embed_kernel)."""
    kernel = table.format.embed_kernel
    if kernel is None:
        raise ValueError(f"no kernel looks up embeddings in a {table.format.name} table")
    for c in table.chunks:
        prog.dispatch(kernel, [tok, audio, *c.buffers, x, state],
                      lambda m, c=c: (m, d, audio_cap, c.row0, c.rows),
                      lambda m: (math.ceil(d // 32 / 64), m, 1))



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


# --- positions: the state word and the RoPE table rows ---------------------------------------------

def rope_table_bytes(head_dim: int, table_rows: int) -> int:
    return table_rows * head_dim // 2 * 8


def write_rope_table(gpu: GPUDevice, table, pos0: int, n: int, head_dim: int, theta: float, table_rows: int) -> None:
    """(cos, sin) pairs [hd/2, 2] of positions pos0 .. pos0+n into rows p % table_rows of `table`, computed
    by the reference's function (model_math.rope_tables) so the GPU rotates by bit-identical angles."""
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
    were not written ahead for it (ensure): they leave the live step's way to its submit (docs/SPEED.md,
    ninth session)."""

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


