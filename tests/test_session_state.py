"""Pausing a stream for another one and resuming it exactly (StreamingSession.save_state/restore_state),
on the numpy reference; tests/gpu/test_state.py runs the same scenarios on the GPU engine."""
from __future__ import annotations

import numpy as np
import pytest

from voxtral_desk.loader import load_model
from voxtral_desk.reference import ReferenceEngine
from voxtral_desk.session import StreamingSession
from voxtral_desk.tokenizer import Tokenizer

CHUNK = 3000  # not a whole number of 80 ms tokens: the frame buffer carries a remainder between feeds
# Where a stream is interrupted, in calls made before save_state(): right after reset (only the left
# padding queued), during the prompt, mid-speech, and after flush() (finished).
POINTS = {"after reset": 0, "prompt": 1, "speech": 12, "finished": None}


def calls(audio: np.ndarray, chunk: int = CHUNK) -> list[np.ndarray | None]:
    """A stream as the session calls that transcribe it: feeds of `chunk` samples, then flush (None)."""
    return [audio[i: i + chunk] for i in range(0, len(audio), chunk)] + [None]


def play(session: StreamingSession, steps: list[np.ndarray | None]) -> list[list[tuple]]:
    """Run the calls; the tokens each returned, as (id, index, start, end)."""
    return [[(t.id, t.index, t.start, t.end) for t in (session.flush() if s is None else session.feed(s))]
            for s in steps]


def stream_facts(session: StreamingSession) -> tuple:
    """What a caller sees of a stream besides the tokens calls return."""
    return ([(t.id, t.index, t.start, t.end) for t in session.tokens], session.samples_fed, session.delay_ms,
            session.n_delay, session.prompt, session.finished, session.nonfinite_samples)


def traced(session: StreamingSession) -> dict[str, int]:
    """How many entries each traced stage holds so far (engines made with trace=True; else none)."""
    return {stage: len(v) for stage, v in (session.engine.trace or {}).items()}


def traced_since(session: StreamingSession, counts: dict[str, int]) -> dict[str, np.ndarray]:
    """Every stage's output (mel, conv, encoder, adapter, logits) traced after `counts` was taken. Tokens
    alone would miss much: a tiny random model's argmax rarely changes with one wrong input."""
    return {stage: np.concatenate(v[counts.get(stage, 0):]) for stage, v in (session.engine.trace or {}).items()
            if len(v) > counts.get(stage, 0)}


def assert_same_trace(got: dict[str, np.ndarray], want: dict[str, np.ndarray], where: str) -> None:
    assert got.keys() == want.keys(), where
    for stage in want:
        assert np.array_equal(got[stage], want[stage]), f"{where}: {stage}"


def interruption(session: StreamingSession, audio: np.ndarray, delay_ms: int, chunk: int) -> None:
    """A whole other stream (a dictation) on the same session and engine."""
    session.reset(delay_ms)
    play(session, calls(audio, chunk))


def check_interruptions(session: StreamingSession, clips: dict, chunk: int = CHUNK) -> None:
    """For every point in POINTS: the speech clip at 480 ms, interrupted there by the reversed speech at
    160 ms, then restored, gives exactly the calls' tokens and the stream of an uninterrupted run (and,
    with a traced engine, exactly its computation from there on)."""
    audio, other = clips["speech"], clips["speech"][::-1].copy()
    steps = calls(audio, chunk)
    points = {name: len(steps) if k is None else k for name, k in POINTS.items()}
    session.reset(480)
    want, counts = [], [traced(session)]
    for step in steps:
        want += play(session, [step])
        counts.append(traced(session))
    want_trace = {name: traced_since(session, counts[k]) for name, k in points.items()}
    facts = stream_facts(session)
    assert len(facts[0]) > 20
    for name, k in points.items():
        session.reset(480)
        got = play(session, steps[:k])
        state = session.save_state()
        interruption(session, other, 160, chunk)
        assert session.n_delay == 2
        session.restore_state(state)
        since = traced(session)
        got += play(session, steps[k:])
        assert got == want, name
        assert stream_facts(session) == facts, name
        assert_same_trace(traced_since(session, since), want_trace[name], name)
        if k == len(steps):  # restored finished: further calls give nothing
            assert session.finished and session.feed(audio[:CHUNK]) == [] and session.flush() == []


def check_second_cycle_and_restoring_twice(session: StreamingSession, clips: dict, chunk: int = CHUNK) -> None:
    """A stream paused twice (by streams at two other delays), then its first snapshot restored again after
    all that: each continuation is the uninterrupted run's."""
    audio = clips["speech"]
    steps = calls(audio, chunk)
    session.reset(480)
    want = play(session, steps[:8])
    at_8 = traced(session)
    want += play(session, steps[8:14])
    at_14 = traced(session)
    want += play(session, steps[14:])
    want_from = {8: traced_since(session, at_8), 14: traced_since(session, at_14)}
    facts = stream_facts(session)
    session.reset(480)
    got = play(session, steps[:8])
    first = session.save_state()
    interruption(session, clips["noise"], 160, chunk)
    session.restore_state(first)
    got += play(session, steps[8:14])
    second = session.save_state()
    interruption(session, clips["speech"][::-1].copy(), 2400, chunk)
    session.restore_state(second)
    since = traced(session)
    got += play(session, steps[14:])
    assert got == want
    assert stream_facts(session) == facts
    assert_same_trace(traced_since(session, since), want_from[14], "second cycle")
    since = traced(session)
    session.restore_state(first)  # used once already, and the engine has run three streams since
    assert want[:8] + play(session, steps[8:]) == want
    assert stream_facts(session) == facts
    assert_same_trace(traced_since(session, since), want_from[8], "restored twice")


@pytest.fixture(scope="module")
def session(model_dir):
    model = load_model(model_dir("tiny", 1))
    return StreamingSession(ReferenceEngine(model, trace=True), Tokenizer(model.tokenizer_path))


def test_interrupted_stream_continues_exactly(session, clips):
    check_interruptions(session, clips)


def test_second_cycle_and_restoring_twice(session, clips):
    check_second_cycle_and_restoring_twice(session, clips)


def test_nonfinite_count_is_part_of_the_snapshot(session, clips):
    audio = clips["speech"].copy()
    audio[100:103] = np.nan
    session.reset(480)
    session.feed(audio[:4000])
    state = session.save_state()
    session.reset(160)
    assert session.nonfinite_samples == 0
    session.restore_state(state)
    assert session.nonfinite_samples == 3


def test_snapshot_of_another_engine_is_refused(session, model_dir, clips):
    """A snapshot only means something to the engine that made it; the session it is offered to keeps
    its own stream."""
    model = load_model(model_dir("tiny", 1))
    other = StreamingSession(ReferenceEngine(model), Tokenizer(model.tokenizer_path), 480)
    other.feed(clips["speech"][:20000])
    state = other.save_state()
    session.reset(160)
    session.feed(clips["noise"])
    before = stream_facts(session)
    with pytest.raises(ValueError, match="another engine"):
        session.restore_state(state)
    assert stream_facts(session) == before
