"""The GPU engine's snapshots: a stream paused for another one and resumed gives exactly the tokens of an
uninterrupted run (the scenarios of tests/test_session_state.py), also when the interruption grew the
engine's rings; and non-finite samples are fed as silence, as on the reference."""
from __future__ import annotations

import numpy as np
import pytest

from voxtral_desk.gpu import decoder as dec
from voxtral_desk.pipeline import open_session

from test_session_state import (CHUNK, assert_same_trace, calls, check_interruptions,
                                check_second_cycle_and_restoring_twice, play, traced, traced_since)

pytestmark = pytest.mark.gpu

LIVE = 1280  # 80 ms feeds: live steps, which record the next step and write its inputs ahead


@pytest.fixture(scope="module")
def sessions(models, gpu):
    """Untraced (live steps run as in the app) and traced (every stage's output compared exactly; the
    decoder then chains its steps through `_round` instead)."""
    return {trace: open_session(models["tiny", 1], "gpu", device=gpu, trace=trace) for trace in (False, True)}


@pytest.mark.parametrize("trace", [False, True])
def test_interrupted_stream_continues_exactly(sessions, clips, trace):
    """80 ms feeds: past the prompt each decodes one position, which reads its input token from the GPU
    (tok[0], left by the step before: the interrupting stream's last, unless restored)."""
    check_interruptions(sessions[trace], clips, LIVE)


def test_second_cycle_and_restoring_twice(sessions, clips):
    """Larger feeds: decoded speculatively, several positions at a time."""
    check_second_cycle_and_restoring_twice(sessions[True], clips, CHUNK)


@pytest.mark.parametrize("k", [0, 12])  # 80 ms feeds before the pause: none (the left padding queued), or 12
def test_rings_grown_during_the_interruption_come_back_at_their_saved_size(models, clips, gpu, monkeypatch, k):
    """Tiny initial rings: the interrupting stream grows the decoder's KV ring and audio queue; restoring
    puts the stream's smaller ones back (the step program rebuilt for them), and it continues exactly,
    from the left padding or past the prompt."""
    monkeypatch.setattr(dec, "INITIAL_KV_ROWS", 8)
    monkeypatch.setattr(dec, "INITIAL_AUDIO_ROWS", 4)
    session = open_session(models["tiny-wide", 0], "gpu", 480, device=gpu, trace=True, max_batch=8,
                           encoder_chunk_tokens=3, steps_per_submit=5)
    d = session.engine.decoder
    steps = calls(clips["speech"], LIVE)
    got = play(session, steps[:k])
    saved = d.kv_cap, d.audio.cap
    state = session.save_state()
    session.reset(160)
    session.feed(clips["speech"])  # one feed: a whole span of audio embeddings queued before decoding
    session.flush()
    assert d.kv_cap > saved[0] and d.audio.cap > saved[1]
    session.restore_state(state)
    assert (d.kv_cap, d.audio.cap) == saved
    since = traced(session)
    got += play(session, steps[k:])
    got_trace = traced_since(session, since)
    session.reset(480)
    want = play(session, steps[:k])
    at_k = traced(session)
    want += play(session, steps[k:])
    assert got == want
    assert_same_trace(got_trace, traced_since(session, at_k), f"after {k} feeds")


def test_nonfinite_samples_are_fed_as_silence(sessions, clips):
    session = sessions[False]
    audio = clips["speech"]
    where = [5000, 20000, 40000, 40001]
    poisoned, zeroed = audio.copy(), audio.copy()
    poisoned[where] = [np.nan, np.inf, -np.inf, np.nan]
    zeroed[where] = 0
    tokens = []
    for samples in (zeroed, poisoned):
        session.reset(480)
        session.feed(samples)
        session.flush()
        tokens.append([t.id for t in session.tokens])
    assert tokens[0] == tokens[1]
    assert session.nonfinite_samples == len(where)
