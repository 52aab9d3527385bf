"""The GPU engine against the numpy reference on the tiny models: identical tokens for every preset, seed,
clip and delay; every traced stage within tolerance; streaming in random chunks identical to offline."""
from __future__ import annotations

import numpy as np
import pytest
import wgpu

from voxtral_desk.gpu import decoder as dec, ops
from voxtral_desk.gpu.engine import GPUEngine
from voxtral_desk.gpu.pipelines import shared_kernels
from voxtral_desk.gpu.program import Ahead
from voxtral_desk.pipeline import open_session
from voxtral_desk.reference import ReferenceEngine

from gpu_testlib import DELAYS, PRESETS, SEEDS, STAGE_REPORT, transcribe

pytestmark = pytest.mark.gpu

STAGE_TOL = 1e-4  # max |gpu - ref| / max |ref| per stage, f32 on both sides


@pytest.fixture(scope="module")
def engines(models, gpu):
    """One engine pair per model, reused through reset() as the app does."""
    return {key: (ReferenceEngine(m, kv_dtype=GPUEngine.kv_dtype), GPUEngine(m, device=gpu))
            for key, m in models.items()}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("seed", SEEDS)
def test_tokens_identical_to_reference(preset, seed, engines, models, clips):
    ref_engine, gpu_engine = engines[preset, seed]
    for clip, audio in clips.items():
        for delay in DELAYS:
            want = transcribe(ref_engine, models[preset, seed], audio, delay)
            got = transcribe(gpu_engine, models[preset, seed], audio, delay)
            assert len(want) > 10
            assert got == want, f"{preset} seed {seed} {clip} {delay} ms"


def relative_error(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    g, w = np.concatenate(got), np.concatenate(want)
    assert g.shape == w.shape
    return float(np.max(np.abs(g - w)) / np.max(np.abs(w)))


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("delay", DELAYS)
def test_stage_errors(preset, delay, models, clips, gpu):
    model = models[preset, 0]
    ref_engine, gpu_engine = (ReferenceEngine(model, trace=True, kv_dtype=GPUEngine.kv_dtype),
                              GPUEngine(model, trace=True, device=gpu))
    speech = clips["speech"]
    assert transcribe(gpu_engine, model, speech, delay) == transcribe(ref_engine, model, speech, delay)
    report = []
    for stage in ("mel", "conv", "encoder", "adapter", "logits"):
        err = relative_error(gpu_engine.trace[stage], ref_engine.trace[stage])
        report.append(f"{stage} {err:.2e}")
        assert err < STAGE_TOL, f"{stage}: max relative error {err:.3g}"
    # The same list structure as the reference: one entry per encode() call / decoder forward.
    assert [len(v) for v in gpu_engine.trace.values()] == [len(v) for v in ref_engine.trace.values()]
    STAGE_REPORT.append(f"{preset} {delay} ms: " + ", ".join(report))


@pytest.mark.parametrize("preset", PRESETS)
def test_streaming_equals_offline(preset, models, clips, engines):
    """Random chunk sizes (a few samples to seconds) give the same tokens as one feed, on both engines;
    small chunks make the session decode one position at a time (live mode)."""
    model = models[preset, 1]
    ref_engine, gpu_engine = engines[preset, 1]
    audio = clips["speech"]
    offline = transcribe(gpu_engine, model, audio, 480)
    rng = np.random.default_rng(3)
    for sizes in (rng.integers(1, 6000, 400), rng.integers(900, 1700, 400)):
        bounds = np.minimum(np.concatenate([[0], np.cumsum(sizes)]), len(audio))
        bounds = np.unique(np.append(bounds, len(audio)))
        assert transcribe(gpu_engine, model, audio, 480, list(bounds)) == offline
        assert transcribe(ref_engine, model, audio, 480, list(bounds)) == offline


def test_live_mode_reuses_its_buffers_and_bind_groups(models, clips, gpu, monkeypatch):
    """decode(1) per token: no pipeline, bind group or buffer is created once the engine is warm, the
    ids come back through the one persistent staging buffer, and every step submits the encoder's and
    the decoder's command buffers recorded during the step before (program.Ahead), their RoPE rows
    written then too: a step's first GPU work is its two submits."""
    model = models["tiny", 2]
    session = open_session(model, "gpu", 480, device=gpu)
    engine = session.engine
    audio = clips["speech"]
    session.feed(audio[:20000])  # warm: prompt decoded, programs prepared,
    session.feed(audio[20000:21280])  # and the kernel variants of a live step met once
    staging = engine.decoder.staging
    created = []
    device_cls = type(gpu.device)
    for method in ("create_bind_group", "create_compute_pipeline", "create_buffer", "create_buffer_with_data"):
        original = getattr(device_cls, method)
        monkeypatch.setattr(device_cls, method,
                            lambda self, *a, _o=original, _m=method, **k: created.append(_m) or _o(self, *a, **k))
    calls = []
    original_decode = engine.decoder.decode
    monkeypatch.setattr(engine.decoder, "decode",
                        lambda n, trace, **kw: calls.append(n) or original_decode(n, trace, **kw))
    taken = []
    original_take = Ahead.take

    def take(self, key):
        buffer = original_take(self, key)
        taken.append(buffer is not None)
        return buffer

    monkeypatch.setattr(Ahead, "take", take)
    events = []
    queue_cls = type(gpu.queue)
    original_submit = queue_cls.submit
    monkeypatch.setattr(queue_cls, "submit",
                        lambda self, buffers: events.append("submit") or original_submit(self, buffers))
    original_rope = ops.write_rope_table
    monkeypatch.setattr(ops, "write_rope_table", lambda *a: events.append("rope") or original_rope(*a))
    for start in range(21280, len(audio), 1280):
        events.append("feed")
        session.feed(audio[start: start + 1280])
    assert calls and set(calls) == {1}, calls
    assert taken == [True] * 2 * len(calls)
    steps = [step.split() for step in " ".join(events).split("feed") if step.strip()]
    assert steps == [["submit", "submit", "rope", "rope"]] * len(calls), steps
    assert engine.decoder.staging is staging
    assert created == [], created
    staging.map_sync(wgpu.MapMode.READ)  # left unmapped by program.map_read
    staging.unmap()
    engine.synchronize()
    assert engine.gpu_memory_bytes > 0


def test_ring_growth_and_wrap(models, clips, gpu, monkeypatch):
    """Tiny initial rings force the audio queue and the decoder KV cache to grow several times, a small
    batch makes the KV ring wrap, and a small id buffer splits decode() into several readbacks: tokens
    stay identical."""
    monkeypatch.setattr(dec, "INITIAL_KV_ROWS", 8)
    monkeypatch.setattr(dec, "INITIAL_AUDIO_ROWS", 4)
    monkeypatch.setattr(dec, "IDS_CAP", 7)
    model = models["tiny-wide", 0]
    engine = GPUEngine(model, device=gpu, max_batch=8, encoder_chunk_tokens=3, steps_per_submit=5)
    want = transcribe(ReferenceEngine(model, kv_dtype=GPUEngine.kv_dtype), model, clips["speech"], 480)
    assert transcribe(engine, model, clips["speech"], 480) == want
    # Live steps (80 ms feeds) while the KV ring grows (64 -> 88 rows at position 65, past the prompt):
    # the step recorded ahead for the old ring is dropped, not run.
    live = GPUEngine(model, device=gpu, max_batch=8, encoder_chunk_tokens=3, steps_per_submit=5)
    audio = clips["speech"]
    assert transcribe(live, model, audio, 480, [*range(0, len(audio), 1280), len(audio)]) == want
    d = engine.decoder
    assert d.kv_cap == d.kv_full == model.config.decoder.sliding_window + 8
    assert len(want) + 39 > d.kv_full  # positions went past the ring: it wrapped
    assert d.audio.cap > 4


def test_split_attention_keeps_tokens(models, clips, gpu, monkeypatch):
    """GPUs split the keys of few-query attention with long windows over workgroups
    (ops.attention_splits); software adapters, where these tests usually run, do not, and the tiny
    models' windows are short. Forced here, in one offline transcription and one of 80 ms live steps,
    the tokens stay the reference's."""
    monkeypatch.setattr(shared_kernels(gpu), "attention_split_from", ops.ATTENTION_SPLIT_FROM)
    monkeypatch.setattr(ops, "ATTENTION_SPLIT_WINDOW", 0)
    model = models["tiny", 0]
    engine = GPUEngine(model, device=gpu)
    audio = clips["speech"]
    want = transcribe(ReferenceEngine(model, kv_dtype=GPUEngine.kv_dtype), model, audio, 480)
    assert transcribe(engine, model, audio, 480) == want
    assert transcribe(engine, model, audio, 480, [*range(0, len(audio), 1280), len(audio)]) == want


def test_without_subgroups(models, clips, gpu):
    model = models["tiny", 1]
    engine = GPUEngine(model, device=gpu, use_subgroups=False)
    assert "no subgroups" in engine.name
    want = transcribe(ReferenceEngine(model, kv_dtype=GPUEngine.kv_dtype), model, clips["noise"], 160)
    assert transcribe(engine, model, clips["noise"], 160) == want


def test_speculative_decoding_keeps_greedy_tokens_and_logits(models, clips, gpu, monkeypatch):
    """File mode decodes generated positions in speculative batches. Some batches must reject a guess
    mid-way (1 < accepted < k) and some at once: tokens stay identical to the reference's one-at-a-time
    decoding, and the trace holds exactly the accepted positions' logits, in order, within tolerance."""
    model = models["tiny", 0]
    engine, ref_engine = (GPUEngine(model, trace=True, device=gpu),
                          ReferenceEngine(model, trace=True, kv_dtype=GPUEngine.kv_dtype))
    rounds = []
    original = engine.decoder._speculate
    monkeypatch.setattr(engine.decoder, "_speculate",
                        lambda k, trace: (ids := original(k, trace), rounds.append((k, len(ids))))[0])
    assert transcribe(engine, model, clips["speech"], 480) == transcribe(ref_engine, model, clips["speech"], 480)
    assert any(1 < m < k for k, m in rounds), rounds
    assert any(m == k for k, m in rounds), rounds
    assert [g.shape for g in engine.trace["logits"]] == [r.shape for r in ref_engine.trace["logits"]]
    err = relative_error(engine.trace["logits"], ref_engine.trace["logits"])
    assert err < STAGE_TOL, f"logits: max relative error {err:.3g}"
