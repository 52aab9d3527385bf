import json
import re

import pytest

from voxtral_desk.session import Token
from voxtral_desk.testmodel import byte_pair_vocab, tekken_json
from voxtral_desk.tokenizer import Tokenizer
from voxtral_desk.transcript import Transcript, export_names


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tekken.json"
    path.write_text(json.dumps(tekken_json(byte_pair_vocab(0))))
    return Tokenizer(path)


def spoken(tokenizer, pieces: list[str | None]) -> Transcript:
    """pieces: text per 80 ms slot (single bytes here), None for a PAD slot."""
    toks = []
    for p in pieces:
        ids = [tokenizer.streaming_pad] if p is None else [tokenizer.n_special + b for b in p.encode()]
        for tid in ids:
            toks.append(Token(tid, 40 + len(toks), len(toks) * 0.08, len(toks) * 0.08 + 0.08))
    return Transcript(toks, tokenizer, {"audio": "x.wav"})


def test_text_drops_specials_and_joins_multibyte_characters(tokenizer):
    t = spoken(tokenizer, [None, " ", "h", "é", None, "!"])
    assert t.text == "hé!"


def test_segments_split_at_pauses_and_sentence_ends(tokenizer):
    t = spoken(tokenizer, list(" Hi there.") + list(" Next one") + [None] * 12 + list(" later"))
    assert [s.text for s in t.segments()] == ["Hi there.", "Next one", "later"]
    later = t.segments()[2]
    assert later.start == pytest.approx((10 + 9 + 12) * 0.08)


def test_srt_vtt_json_are_well_formed(tokenizer):
    t = spoken(tokenizer, list(" One.") + [None] * 20 + list(" Two."))
    srt = t.to_srt()
    assert re.fullmatch(r"(\d+\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n[^\n]+\n\n?)+", srt)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:00,400\nOne.\n")
    vtt = t.to_vtt()
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:00.400\nOne.\n")
    doc = json.loads(t.to_json())
    assert doc["text"] == "One. Two." and doc["audio"] == "x.wav"
    assert [tok["id"] for tok in doc["tokens"]] == [tok.id for tok in t.tokens]
    assert doc["tokens"][5]["piece"] == "[STREAMING_PAD]" and doc["tokens"][5]["start"] == 0.4
    assert len(doc["segments"]) == 2


def test_long_speech_is_cut_into_readable_cues(tokenizer):
    t = spoken(tokenizer, list(" word" * 40))
    segs = t.segments()
    assert len(segs) > 1 and all(len(s.text) <= 84 and s.end - s.start <= 6.0 + 1e-9 for s in segs)


def test_export_names_never_repeat_a_name_in_one_folder():
    assert export_names(["a/memo.ogg", "a/memo.mp3", "talk.wav"], "json") == ["memo.ogg.json", "memo.mp3.json",
                                                                              "talk.json"]
    assert export_names(["x/Memo.wav", "y/memo.wav"], "txt") == ["Memo.wav.txt", "memo.wav (2).txt"]  # case ignored


def test_a_stored_transcript_renders_every_export_as_the_original(tokenizer):
    # Multi-byte characters split across tokens, pauses, specials: what History keeps must render the same.
    t = spoken(tokenizer, [None, " ", "h", "é", "ü", None, "!", " ", "€"] + [None] * 14 + list(" Later. Yes"))
    t.meta["duration"] = 3.5
    stored = Transcript.from_json_record(t.to_json_record())
    for fmt in ("txt", "srt", "vtt", "json"):
        assert stored.render(fmt) == t.render(fmt)
    assert stored.meta == t.meta and [(k.id, k.index) for k in stored.tokens] == [(k.id, k.index) for k in t.tokens]
    assert all(abs(a.start - b.start) < 1e-6 and abs(a.end - b.end) < 1e-6
               for a, b in zip(stored.tokens, t.tokens, strict=True))


@pytest.mark.parametrize("record", ["", "[]", '{"version": 99}',
                                    '{"version": 1, "pieces": {}, "tokens": [[5, 0, 0, 1]]}', "[" * 100000])
def test_a_damaged_stored_transcript_is_refused(record):
    with pytest.raises(ValueError, match="not a stored transcript"):
        Transcript.from_json_record(record)
