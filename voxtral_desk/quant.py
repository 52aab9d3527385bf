"""Q4_0, ggml's 4-bit block format, in plain numpy: the reference the GPU kernels are tested against.

A block holds 32 consecutive weights of one row in 18 bytes: an f16 scale d, then 16 bytes whose low
nibbles are weights 0..15 and high nibbles weights 16..31, each stored as q + 8 with w = d * (q - 8).
"""
from __future__ import annotations

import numpy as np

BLOCK = 32
BLOCK_BYTES = 18


def quantize_q4_0(x: np.ndarray) -> np.ndarray:
    """[rows, K] float -> [rows, K/32*18] uint8, bit-identical to ggml's quantize_row_q4_0_ref."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[-1] % BLOCK:
        raise ValueError(f"Q4_0 needs a row length that is a multiple of {BLOCK}, got {x.shape[-1]}")
    rows = x.reshape(-1, BLOCK)  # [n_blocks, 32]
    # The element of largest magnitude, sign kept (first one on ties, as ggml's strict '<').
    extreme = np.take_along_axis(rows, np.abs(rows).argmax(axis=1)[:, None], axis=1)[:, 0]
    d = extreme / np.float32(-8.0)
    with np.errstate(divide="ignore"):
        inv_d = np.where(d != 0, np.float32(1.0) / d, np.float32(0.0)).astype(np.float32)
    q = np.minimum(15, np.trunc(rows * inv_d[:, None] + np.float32(8.5)).astype(np.int8)).astype(np.uint8)
    out = np.empty((rows.shape[0], BLOCK_BYTES), dtype=np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.reshape(*x.shape[:-1], x.shape[-1] // BLOCK * BLOCK_BYTES)


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """[rows, K/32*18] uint8 -> [rows, K] float32."""
    blocks = np.ascontiguousarray(blocks, dtype=np.uint8)
    if blocks.shape[-1] % BLOCK_BYTES:
        raise ValueError("Q4_0 data length is not a whole number of 18-byte blocks")
    b = blocks.reshape(-1, BLOCK_BYTES)
    d = b[:, :2].copy().view(np.float16).astype(np.float32)  # [n_blocks, 1]
    qs = b[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8  # [n_blocks, 32]
    w = d * q.astype(np.float32)
    return w.reshape(*blocks.shape[:-1], blocks.shape[-1] // BLOCK_BYTES * BLOCK)


def split_q4_0(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Repack [rows, K/32*18] blocks into 4-byte-aligned arrays for the GPU:
    scales [rows, K/32] float16 and nibbles [rows, K/32, 4] uint32 (the 16 quant bytes of each block)."""
    rows = blocks.shape[0]
    b = np.ascontiguousarray(blocks, dtype=np.uint8).reshape(rows, -1, BLOCK_BYTES)
    scales = b[:, :, :2].copy().view(np.float16)[:, :, 0]
    nibbles = b[:, :, 2:].copy().view(np.uint32)
    return scales, nibbles


def dequantize(data: np.ndarray, qtype) -> np.ndarray:
    """Any stored tensor (GGUF type `qtype`: block bytes uint8 [..., bytes], or the float array as stored)
    -> float32 [..., elements]."""
    from gguf import GGMLQuantizationType, quants

    if qtype == GGMLQuantizationType.Q4_0:
        return dequantize_q4_0(data)
    if qtype == GGMLQuantizationType.F32:
        return np.asarray(data, dtype=np.float32)
    return np.asarray(quants.dequantize(np.asarray(data), GGMLQuantizationType(qtype)), dtype=np.float32)
