"""The model's tensors as the GPU engine reads them, before they are laid out in their format's buffers
(formats.py): Q4_0 blocks for quantised tensors (quantised at load when the source stores floats, as an
original checkpoint does), f32 for the rest."""
from __future__ import annotations

import numpy as np

from ..quant import quantize_q4_0


class WeightReader:
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
