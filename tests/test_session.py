"""The streaming session: any chunking gives the offline tokens; padding, flush and reset follow upstream."""
from __future__ import annotations

import numpy as np
import pytest
from mistral_common.protocol.transcription.request import StreamingMode, TranscriptionRequest
from mistral_common.tokens.tokenizers.audio import Audio
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

from voxtral_desk.loader import load_model
from voxtral_desk.reference import ReferenceEngine
from voxtral_desk.session import StreamingSession
from voxtral_desk.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def session(model_dir):
    model = load_model(model_dir("tiny", 1))
    return StreamingSession(ReferenceEngine(model), Tokenizer(model.tokenizer_path))


def offline(session, audio, delay_ms=480):
    session.reset(delay_ms)
    session.feed(audio)
    session.flush()
    return [(t.id, t.index) for t in session.tokens]


@pytest.mark.parametrize("delay_ms", [80, 480, 2400])
def test_random_chunks_give_offline_tokens(session, clips, delay_ms):
    rng = np.random.default_rng(delay_ms)
    for name, audio in clips.items():
        expected = offline(session, audio, delay_ms)
        session.reset(delay_ms)
        i = 0
        while i < len(audio):
            n = int(rng.choice([1, 7, 160, 1279, 1280, 1281, 4000, 9000]))
            session.feed(audio[i : i + n])
            i += n
        session.flush()
        assert [(t.id, t.index) for t in session.tokens] == expected, name


def test_prompt_and_token_count_follow_mistral_common(session, model_dir, clips):
    """Prompt = BOS + PAD × (32 + delay); tokens generated = audio tokens − prompt (mistral-common padding)."""
    tok = MistralTokenizer.from_file(str(model_dir("tiny", 1) / "tekken.json"))
    audio = clips["speech"]
    for delay_ms in (80, 480, 2400):
        req = TranscriptionRequest(audio=Audio(audio, 16000, format="wav").to_base64("wav"),
                                   streaming=StreamingMode.OFFLINE, language=None, target_streaming_delay_ms=delay_ms)
        encoded = tok.encode_transcription(req)
        offline(session, audio, delay_ms)
        assert session.prompt == encoded.tokens
        n_audio_tokens = len(encoded.audios[0].audio_array) // 1280
        if not any(t.id == session.tokenizer.eos for t in session.tokens):
            assert len(session.tokens) == n_audio_tokens - len(encoded.tokens)


def test_nothing_before_first_step_then_everything_on_flush(session, clips):
    session.reset(480)
    assert session.feed(clips["short"]) == []  # 250 ms < the 562.5 ms the first step needs
    assert len(session.flush()) > 0
    assert session.finished and session.flush() == [] and session.feed(clips["short"]) == []


def test_tokens_stream_while_audio_arrives(session, clips):
    session.reset(480)
    audio = clips["speech"]
    counts = []
    for i in range(0, len(audio), 1280):
        session.feed(audio[i : i + 1280])
        counts.append(len(session.tokens))
    assert counts[-1] > 0 and counts == sorted(counts)
    # after 562.5 ms the first token is out, then one per 80 ms
    assert counts[-1] == len(audio) // 1280 - 6


def test_timestamps_are_80ms_slots_from_the_start_of_the_audio(session, clips):
    offline(session, clips["speech"])
    first = session.tokens[0]
    assert (first.start, first.end) == (0.0, pytest.approx(0.08))
    assert all(b.start == pytest.approx(a.end) for a, b in zip(session.tokens, session.tokens[1:]))


def test_delay_must_be_a_multiple_of_80ms(session):
    with pytest.raises(ValueError, match="multiple of 80"):
        session.reset(100)
