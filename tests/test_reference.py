"""The numpy reference model against Hugging Face transformers' VoxtralRealtime on the same random
weights: every stage within tight tolerance and identical greedy tokens."""
from __future__ import annotations

import numpy as np
import pytest

from voxtral_desk.checkpoint import (AUDIO_TENSORS, FINAL_NORM, TOKEN_EMBEDDINGS, decoder_layers, encoder_layers,
                                     tensor_table)
from voxtral_desk.loader import load_model
from voxtral_desk.model_math import time_conditioning
from voxtral_desk.reference import ReferenceEngine
from voxtral_desk.session import StreamingSession
from voxtral_desk.tokenizer import Tokenizer

oracle = pytest.importorskip("oracle", reason="tests/oracle.py needs torch and transformers")

STAGE_TOLERANCE = {"conv": 2e-5, "encoder": 2e-5, "adapter": 2e-5, "logits": 2e-5}  # max |diff| / max |ref|


def padded(audio: np.ndarray, n_delay: int, cfg) -> np.ndarray:
    r = cfg.audio.samples_per_token
    right = (-len(audio)) % r + (n_delay + 11) * r
    return np.concatenate([np.zeros(cfg.audio.n_left_pad_tokens * r, np.float32), audio, np.zeros(right, np.float32)])


def run_reference(model, audio, delay_ms, kv_dtype=np.float32):
    engine = ReferenceEngine(model, trace=True, kv_dtype=kv_dtype)
    session = StreamingSession(engine, Tokenizer(model.tokenizer_path), delay_ms)
    session.feed(audio)
    session.flush()
    return session, {k: np.concatenate(v) for k, v in engine.trace.items()}


@pytest.mark.parametrize("preset", ["tiny", "tiny-wide"])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("delay_ms", [480, 160])
def test_matches_transformers(model_dir, clips, preset, seed, delay_ms):
    model = load_model(model_dir(preset, seed))
    hf = oracle.HFOracle(model)
    for name, audio in clips.items():
        session, ours = run_reference(model, audio, delay_ms)
        theirs = hf.run(padded(audio, session.n_delay, model.config), session.prompt, session.n_delay)
        for stage, tol in STAGE_TOLERANCE.items():
            a, b = ours[stage], theirs[stage]
            assert a.shape == b.shape, (name, stage, a.shape, b.shape)
            err = np.abs(a - b).max() / np.abs(b).max()
            assert err < tol, f"{name}: {stage} differs by {err:.2e}"
        assert [t.id for t in session.tokens] == theirs["generated"].tolist(), name


def test_generated_tokens_depend_on_the_audio(model_dir, clips):
    """Guards the parity test above against a degenerate random model that ignores its input."""
    model = load_model(model_dir("tiny", 0))
    outputs = {name: tuple(t.id for t in run_reference(model, audio, 480)[0].tokens) for name, audio in clips.items()}
    assert len(set(outputs.values())) == len(outputs)
    assert len(set(outputs["speech"])) > 1


def test_f16_kv_cache_changes_only_what_attends(model_dir, clips):
    """kv_dtype=float16 (the GPU engine's cache) rounds keys and values: the conv stem is untouched, the
    attending stages move by about f16 rounding (2^-11 relative), no more."""
    model = load_model(model_dir("tiny", 0))
    exact = run_reference(model, clips["speech"], 480)[1]
    rounded = run_reference(model, clips["speech"], 480, np.float16)[1]
    assert np.array_equal(rounded["conv"], exact["conv"])
    for stage in ("encoder", "adapter", "logits"):
        err = np.abs(rounded[stage] - exact[stage]).max() / np.abs(exact[stage]).max()
        assert 0 < err < 5e-3, f"{stage}: {err:.2e}"


def test_time_conditioning_check_values():
    """MODEL.md §6 check values for the real width (3072) at 480 ms (6 tokens)."""
    t = time_conditioning(6, 3072)
    np.testing.assert_allclose(t[:3], [0.96017, 0.94953, 0.93775], atol=1e-5)
    np.testing.assert_allclose(t[1536:1539], [-0.27942, -0.31367, -0.34732], atol=1e-5)
    np.testing.assert_allclose(t[3071], 0.000604, atol=1e-6)


def test_q4_0_gguf_weights_match_transformers_on_the_same_weights(model_dir, clips, tmp_path):
    """The reference reads the converted GGUF (dequantised Q4_0); transformers gets the same values."""
    from voxtral_desk.convert import convert_checkpoint

    convert_checkpoint(model_dir("tiny-wide", 1), tmp_path, shard_bytes=None)
    model = load_model(tmp_path)
    hf = oracle.HFOracle(model)
    for name in ("speech", "noise"):
        session, _ = run_reference(model, clips[name], 480)
        theirs = hf.run(padded(clips[name], session.n_delay, model.config), session.prompt, session.n_delay)
        assert [t.id for t in session.tokens] == theirs["generated"].tolist(), name


@pytest.mark.parametrize("preset", ["tiny", "tiny-wide"])
def test_typed_tensor_names_are_the_table(model_dir, preset):
    """The names the engines and the oracle read (AUDIO_TENSORS, encoder_layers, decoder_layers, the
    embeddings and the final norm) are exactly tensor_table's, each once, and the reference holds them all."""
    model = load_model(model_dir(preset, 0))
    cfg = model.config
    typed = [TOKEN_EMBEDDINGS, FINAL_NORM, *vars(AUDIO_TENSORS).values()]
    for layer in (*encoder_layers(cfg), *decoder_layers(cfg)):
        typed += vars(layer).values()
    table = [spec.name for spec in tensor_table(cfg)]
    assert len(typed) == len(set(typed)) and sorted(typed) == sorted(table)
    assert encoder_layers(cfg)[1].wq == ("mm_streams_embeddings.embedding_module.whisper_encoder.transformer.layers.1."
                                         "attention.wq.weight")
    assert decoder_layers(cfg)[1].ada_up == "layers.1.ada_rms_norm_t_cond.2.weight"
    assert set(ReferenceEngine(model).w) == set(table)
