"""Weights on the GPU. Q4_0 matrices stay 4-bit: repacked at load (quant.split_q4_0) into f32 scales and
16-byte nibble blocks, both 4-byte aligned. Any matrix larger than the binding limit is split by rows
into chunks with buffers of their own; every kernel that reads weights runs once per chunk."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant import BLOCK, quantize_q4_0, split_q4_0
from .device import GPUDevice
from .kernels import upload


@dataclass
class Chunk:
    row0: int
    rows: int
    buffers: tuple  # Q4_0: (nibbles [rows, K/32, 4] u32, scales [rows, K/32] f32); f32: (w [rows, K],)


@dataclass
class Matrix:
    rows: int
    k: int
    quantized: bool
    chunks: list[Chunk]


def _row_ranges(rows: int, row_bytes: int, limit: int) -> list[tuple[int, int]]:
    per_chunk = limit // row_bytes
    if per_chunk < 1:
        raise ValueError(f"binding limit {limit} B is smaller than one weight row ({row_bytes} B)")
    return [(r, min(rows, r + per_chunk)) for r in range(0, rows, per_chunk)]


def q4_matrix(gpu: GPUDevice, blocks: np.ndarray, limit: int, label: str) -> Matrix:
    """blocks: raw Q4_0 [rows, K/32*18] uint8."""
    scales, nibbles = split_q4_0(blocks)  # [rows, K/32] f32, [rows, K/32, 4] u32
    rows, nb = scales.shape
    chunks = [Chunk(r0, r1 - r0, (upload(gpu, nibbles[r0:r1], f"{label} q4[{r0}:{r1}]"),
                                  upload(gpu, scales[r0:r1], f"{label} scales[{r0}:{r1}]")))
              for r0, r1 in _row_ranges(rows, nb * 16, limit)]
    return Matrix(rows, nb * BLOCK, True, chunks)


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
