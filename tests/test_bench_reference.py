"""`voxtral-desk bench` on the reference engine (the GPU's figures are in tests/gpu/test_bench.py)."""
from __future__ import annotations

import numpy as np

from voxtral_desk.audio import FrameStream, frames_in_span, synthetic_speech
from voxtral_desk.bench import run_bench
from voxtral_desk.pipeline import open_session
from voxtral_desk.reference import ReferenceEngine
from voxtral_desk.session import MAX_SPAN_TOKENS


def test_reference_encoder_gets_bounded_spans_of_the_whole_clip(model_dir, monkeypatch):
    """The reference's memory grows with the square of one encode's size: the encoder stage, timed on the
    whole clip, hands it the session's bounded spans (6 s is 75 tokens, over the 64 of one span), and the
    decoder stage still gets every audio token that one span of the whole clip gives."""
    session = open_session(model_dir("tiny", 0), "reference")
    cfg = session.audio_cfg
    clip = np.concatenate([synthetic_speech(6.0, cfg.sampling_rate), np.zeros(cfg.window_size // 2, np.float32)])
    session.engine.encode(FrameStream(cfg).push(clip))  # the whole clip in one span, as the GPU gets it
    whole_clip_ready = session.engine.audio_tokens_ready

    tokens_per_call = []
    real = ReferenceEngine.encode

    def encode(self, audio):
        tokens_per_call.append(frames_in_span(len(audio), self.config.audio) // self.config.audio.mel_frames_per_token)
        return real(self, audio)

    monkeypatch.setattr(ReferenceEngine, "encode", encode)
    result = run_bench(str(model_dir("tiny", 0)), 6.0, "reference", live_steps=3, log=lambda *a: None, late_seconds=0)
    assert max(tokens_per_call) <= MAX_SPAN_TOKENS
    assert result["prefill_positions"] + result["decode_steps"] == whole_clip_ready
    assert whole_clip_ready - cfg.n_left_pad_tokens > MAX_SPAN_TOKENS
    assert result["encoder_ms_per_audio_s"] > 0
