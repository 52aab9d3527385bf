"""The model's maths that the numpy reference and the GPU engine share, in plain numpy float32: activations,
RMSNorm, RoPE tables and rotation, sliding-window attention and the delay's time conditioning.

The GPU engine computes its RoPE tables and time conditioning here, so it rotates by bit-identical angles
and conditions on bit-identical inputs; the kernel checks (gpu/checks.py) compare the WGSL with these
functions. Shapes: T rows (frames or positions), S cached keys, H / KV query / key-value heads, hd the
head dimension.
"""
from __future__ import annotations

import math

import numpy as np

SQRT_HALF = 1.0 / math.sqrt(2.0)


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, and the shaders use the same."""
    x64 = x.astype(np.float64)
    s = np.sign(x64)
    a = np.abs(x64)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return (s * (1.0 - poly * np.exp(-a * a))).astype(np.float32)


def gelu(x: np.ndarray) -> np.ndarray:  # exact (erf) GELU, as upstream
    return (0.5 * x * (1.0 + erf(x * SQRT_HALF))).astype(np.float32)


def silu(x: np.ndarray) -> np.ndarray:
    return (x / (1.0 + np.exp(-x))).astype(np.float32)


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + np.float32(eps)) * w).astype(np.float32)


def rope_tables(positions: np.ndarray, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [T, hd/2] in float32, the precision upstream uses for the angles."""
    inv_freq = (1.0 / (np.float32(theta) ** (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim))))
    angles = positions.astype(np.float32)[:, None] * inv_freq.astype(np.float32)[None, :]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def apply_rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Interleaved (GPT-J) rotation of the raw Mistral weights: pairs (2k, 2k+1). x: [T, heads, hd]."""
    even, odd = x[..., 0::2], x[..., 1::2]
    c, s = cos[:, None, :], sin[:, None, :]
    out = np.empty_like(x)
    out[..., 0::2] = even * c - odd * s
    out[..., 1::2] = even * s + odd * c
    return out


def attention(q, k, v, q_pos, k_pos, window: int) -> np.ndarray:
    """Causal sliding-window attention with grouped KV heads.
    q [T, H, hd], k/v [S, KV, hd], q_pos [T], k_pos [S] -> [T, H*hd]."""
    n_heads, n_kv, hd = q.shape[1], k.shape[1], q.shape[2]
    group = n_heads // n_kv
    kq = np.repeat(k, group, axis=1)  # [S, H, hd]
    vq = np.repeat(v, group, axis=1)
    scores = np.einsum("thd,shd->hts", q, kq) * np.float32(1.0 / math.sqrt(hd))  # [H, T, S]
    visible = (k_pos[None, :] <= q_pos[:, None]) & (k_pos[None, :] > q_pos[:, None] - window)
    scores = np.where(visible[None], scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("hts,shd->thd", p.astype(np.float32), vq).reshape(q.shape[0], n_heads * hd)


def time_conditioning(n_delay: int, dim: int) -> np.ndarray:
    """t_cond [D]: cosines then sines of n_delay at frequencies 10000^(-k/(D/2))."""
    half = dim // 2
    inv_freq = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float32) / np.float32(half)).astype(np.float32)
    emb = np.float32(n_delay) * inv_freq
    return np.concatenate([np.cos(emb), np.sin(emb)]).astype(np.float32)
