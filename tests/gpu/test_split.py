"""Weights larger than the binding limit are split by rows across bindings (the real embedding table is
216 MiB, over the 128 MiB of lavapipe and many integrated GPUs). Forced here with a tiny limit."""
from __future__ import annotations

import pytest

from voxtral_desk.gpu.engine import GPUEngine
from voxtral_desk.reference import ReferenceEngine

from gpu_testlib import DELAYS, transcribe

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("preset, limit", [("tiny", 16 * 1024), ("tiny-wide", 64 * 1024)])
def test_split_bindings_give_identical_tokens(preset, limit, models, clips, gpu):
    model = models[preset, 2]
    engine = GPUEngine(model, max_binding_size=limit, device=gpu)
    table = engine.decoder.table
    assert len(table.chunks) > 1, "the embedding table / head must be split"
    assert sum(c.rows for c in table.chunks) == model.config.decoder.vocab_size
    split = [m for m in (engine.encoder.conv0, engine.encoder.conv1, engine.encoder.proj0) if len(m.chunks) > 1]
    if preset == "tiny":
        assert split, "f32 conv and adapter weights are split too at this limit"
    for chunk in table.chunks:
        for buf in chunk.buffers:
            assert buf.size <= limit
    reference = ReferenceEngine(model, kv_dtype=GPUEngine.kv_dtype)
    for clip in ("speech", "noise"):
        for delay in DELAYS:
            assert transcribe(engine, model, clips[clip], delay) == transcribe(reference, model, clips[clip], delay)
