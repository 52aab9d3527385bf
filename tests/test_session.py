"""The streaming session: any chunking gives the offline tokens; padding, flush and reset follow upstream."""
from __future__ import annotations

import numpy as np
import pytest
from mistral_common.protocol.transcription.request import StreamingMode, TranscriptionRequest
from mistral_common.tokens.tokenizers.audio import Audio
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

from voxtral_desk.audio import frames_in_span
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
    assert all(b.start == pytest.approx(a.end) for a, b in zip(session.tokens, session.tokens[1:], strict=False))


def test_delay_must_be_a_multiple_of_80ms(session):
    with pytest.raises(ValueError, match="multiple of 80"):
        session.reset(100)


def test_delay_zero_is_refused_not_taken_for_the_default(session):
    with pytest.raises(ValueError, match="delay"):
        StreamingSession(session.engine, session.tokenizer, delay_ms=0)
    session.reset(480)
    with pytest.raises(ValueError, match="delay"):
        session.reset(0)
    assert (session.delay_ms, session.n_delay) == (480, 6)  # the refused delay changed nothing


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, "mixed"])
def test_nonfinite_samples_are_fed_as_silence(session, clips, bad):
    """One NaN used to poison the reference's caches for the rest of the audio (<unk> from there on)."""
    audio = clips["speech"]
    where = [5000, 5001, 20000, 40000, 40001, 40002]
    poisoned, zeroed = audio.copy(), audio.copy()
    poisoned[where] = [np.nan, np.inf, -np.inf, np.nan, np.nan, np.inf] if bad == "mixed" else bad
    zeroed[where] = 0
    given = poisoned.copy()
    want = offline(session, zeroed)
    assert offline(session, poisoned) == want
    assert session.nonfinite_samples == len(where)
    assert np.array_equal(poisoned, given, equal_nan=True)  # the caller's array is left as it was
    session.reset()
    assert session.nonfinite_samples == 0


class SpanRecorder:
    """An engine that records how many STFT frames each encode() gets, and passes everything on."""

    def __init__(self, engine):
        self.inner = engine
        self.frames: list[int] = []
        self.queued: list[int] = []  # audio tokens waiting for the decoder when encode() is called

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, audio):
        self.frames.append(frames_in_span(len(audio), self.inner.config.audio))
        self.queued.append(self.inner.audio_tokens_ready)
        self.inner.encode(audio)


@pytest.mark.parametrize("bound", [None, 3])  # None: the session's own; 3 tokens also cuts flush()'s padding
def test_long_feeds_reach_the_engine_in_bounded_spans(session, clips, monkeypatch, bound):
    """The reference's memory grows with the square of one encode's size: however much one feed() holds,
    the engine gets spans of a bounded number of tokens, decoded as they come, with unchanged tokens."""
    from voxtral_desk import session as session_module

    if bound is not None:
        monkeypatch.setattr(session_module, "MAX_SPAN_TOKENS", bound)
    limit = session_module.MAX_SPAN_TOKENS * session.audio_cfg.mel_frames_per_token
    audio = np.concatenate([clips["speech"]] * 3)  # ~13 s in one feed: 160 tokens
    recorder = SpanRecorder(session.engine)
    spans = StreamingSession(recorder, session.tokenizer, 480)
    spans.feed(audio)
    spans.flush()
    assert max(recorder.frames) <= limit
    assert sum(recorder.frames) > 2 * limit  # the feed was cut into several spans
    assert max(recorder.queued) <= session.audio_cfg.n_left_pad_tokens  # each span decoded before the next
    monkeypatch.setattr(session_module, "MAX_SPAN_TOKENS", 10**9)  # one encode per feed, as before
    assert [(t.id, t.index) for t in spans.tokens] == offline(session, audio)
