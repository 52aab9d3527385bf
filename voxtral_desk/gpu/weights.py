"""Weights on the GPU. Q4_0 matrices stay 4-bit: repacked at load (quant.split_q4_0, then interleave_q4) into
their f16 scales and 32-bit nibble words, in groups of four blocks (18 bytes per block, as in the file).
Any matrix larger than the binding limit is split by rows into chunks with buffers of their own; every
kernel that reads weights runs once per chunk."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant import BLOCK, BLOCK_BYTES, quantize_q4_0, split_q4_0
from .device import GPUDevice
from .kernels import upload


@dataclass
class Chunk:
    row0: int
    rows: int
    buffers: tuple  # Q4_0: (nibbles [rows, G, 4, 4] u32, scales [rows, G, 4] f16, see interleave_q4); f32: (w [rows, K],)


@dataclass
class Matrix:
    rows: int
    k: int
    quantized: bool
    chunks: list[Chunk]


def _row_ranges(rows: int, row_bytes: int, limit: int, multiple: int = 1) -> list[tuple[int, int]]:
    """Row ranges of at most `limit` bytes, each a whole number of `multiple` rows."""
    per_chunk = limit // row_bytes // multiple * multiple
    if per_chunk < 1:
        raise ValueError(f"binding limit {limit} B is smaller than {multiple} weight row(s) of {row_bytes} B")
    return [(r, min(rows, r + per_chunk)) for r in range(0, rows, per_chunk)]


def interleave_q4(scales: np.ndarray, nibbles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """split_q4_0's [rows, nb] scales and [rows, nb, 4] words -> rows of G = ceil(nb/4) groups of four
    blocks: scales [rows, G, 4] and words [rows, G, 4 (word c), 4 (block t)], so that one 16-byte load
    brings word c of four consecutive blocks (q4_matvec.wgsl: four lanes share a group, each loading
    16 bytes of each of its weight rows). Rows are padded to whole groups with blocks of scale 0 and q = 8, which are exactly 0."""
    rows, nb = scales.shape
    pad = -nb % 4
    if pad:
        scales = np.concatenate([scales, np.zeros((rows, pad), scales.dtype)], axis=1)
        nibbles = np.concatenate([nibbles, np.full((rows, pad, 4), 0x88888888, np.uint32)], axis=1)
    g = (nb + pad) // 4
    words = nibbles.reshape(rows, g, 4, 4).transpose(0, 1, 3, 2)
    return np.ascontiguousarray(scales.reshape(rows, g, 4)), np.ascontiguousarray(words)


def q4_row_bytes(k: int) -> int:
    """Bytes of one row's nibble words on the GPU (the larger of its two buffers), padding included."""
    return -(-(k // BLOCK) // 4) * 64


def q4_matrix(gpu: GPUDevice, blocks: np.ndarray, limit: int, label: str, row_multiple: int = 1) -> Matrix:
    """blocks: raw Q4_0 [rows, K/32*18] uint8; chunks hold whole multiples of `row_multiple` rows."""
    scales, words = interleave_q4(*split_q4_0(blocks))
    rows, k = scales.shape[0], blocks.shape[1] // BLOCK_BYTES * BLOCK
    chunks = [Chunk(r0, r1 - r0, (upload(gpu, words[r0:r1], f"{label} q4[{r0}:{r1}]"),
                                  upload(gpu, scales[r0:r1], f"{label} scales[{r0}:{r1}]")))
              for r0, r1 in _row_ranges(rows, q4_row_bytes(k), limit, row_multiple)]
    return Matrix(rows, k, True, chunks)


def gate_up_q4(gpu: GPUDevice, w1: np.ndarray, w3: np.ndarray, limit: int, label: str) -> Matrix:
    """The SwiGLU projections as one matrix of row pairs (w1 row j at 2j, w3 row j at 2j + 1) in chunks of
    whole pairs, for the q4 kernels' SwiGLU epilogue (kernels.linear(swiglu=True)), which combines each
    pair inside one workgroup."""
    if w1.shape != w3.shape:
        raise ValueError(f"gate and up projections differ in shape: {w1.shape} vs {w3.shape}")
    pairs = np.stack([w1, w3], axis=1).reshape(2 * w1.shape[0], w1.shape[1])
    return q4_matrix(gpu, pairs, limit, label, row_multiple=2)


def f32_matrix(gpu: GPUDevice, w: np.ndarray, limit: int, label: str) -> Matrix:
    w = np.ascontiguousarray(w, dtype=np.float32)
    rows, k = w.shape
    chunks = [Chunk(r0, r1 - r0, (upload(gpu, w[r0:r1], f"{label}[{r0}:{r1}]"),))
              for r0, r1 in _row_ranges(rows, k * 4, limit)]
    return Matrix(rows, k, False, chunks)


class WeightReader:
    """The model's tensors as the GPU wants them: Q4_0 blocks for quantised tensors (quantised at load
    when the source stores floats, as an original checkpoint does), f32 for the rest."""

    def __init__(self, model):
        self.weights = model.weights

    def q4(self, *names: str) -> np.ndarray:
        """Q4_0 blocks of one tensor, or of several stacked by rows (fused projections)."""
        parts = []
        for name in names:
            blocks = self.weights.q4_0(name)
            if blocks is None:
                w = self.weights.f32(name)
                blocks = quantize_q4_0(w.reshape(w.shape[0], -1))
            parts.append(np.asarray(blocks, dtype=np.uint8))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def f32(self, name: str) -> np.ndarray:
        return np.ascontiguousarray(self.weights.f32(name), dtype=np.float32)
