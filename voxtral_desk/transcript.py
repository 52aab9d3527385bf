"""A finished or growing transcription as data: text, every token with its 80 ms time slot, caption
segments, and the TXT / SRT / VTT / JSON exports shared by the CLI and the app."""
from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .session import Token
from .tokenizer import Tokenizer

FORMATS = ("txt", "json", "srt", "vtt")
MAX_CUE_CHARS = 84  # two subtitle lines of 42
MAX_CUE_SECONDS = 6.0
PAUSE_SECONDS = 0.8  # this much silence (no text token) ends a cue


@dataclass
class Segment:
    start: float
    end: float
    text: str


@dataclass
class Transcript:
    tokens: list[Token]
    tokenizer: Tokenizer
    meta: dict = field(default_factory=dict)  # audio file, model, delay, backend...

    @property
    def text(self) -> str:
        return self.tokenizer.decode(t.id for t in self.tokens).strip()

    def segments(self) -> list[Segment]:
        """Caption cues: cut at sentence ends, pauses, or when a cue grows too long. Pieces are decoded
        per cue, so a character is never split between two cues unless the model split it."""
        cues: list[list[Token]] = []
        current: list[Token] = []
        last_text_end = None
        for tok in self.tokens:
            if not self.tokenizer.is_text(tok.id):
                continue
            piece = self.tokenizer.token_bytes(tok.id).decode("utf-8", "replace")
            if current:
                text_so_far = self.tokenizer.decode(t.id for t in current)
                too_long = len(text_so_far) + len(piece) > MAX_CUE_CHARS or tok.end - current[0].start > MAX_CUE_SECONDS
                paused = tok.start - last_text_end >= PAUSE_SECONDS
                sentence_end = text_so_far.rstrip().endswith((".", "!", "?")) and piece.startswith(" ")
                if too_long or paused or sentence_end:
                    cues.append(current)
                    current = []
            current.append(tok)
            last_text_end = tok.end
        if current:
            cues.append(current)
        out = []
        for cue in cues:
            text = self.tokenizer.decode(t.id for t in cue).strip()
            if text:
                out.append(Segment(cue[0].start, cue[-1].end, text))
        return out

    def to_txt(self) -> str:
        return self.text + "\n"

    def to_json(self) -> str:
        doc = {
            **self.meta,
            "text": self.text,
            "tokens": [{"id": t.id, "index": t.index, "start": round(t.start, 3), "end": round(t.end, 3),
                        "piece": self.tokenizer.token_name(t.id)} for t in self.tokens],
            "segments": [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text} for s in self.segments()],
        }
        return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"

    def to_srt(self) -> str:
        blocks = [f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text}\n"
                  for i, s in enumerate(self.segments(), 1)]
        return "\n".join(blocks)

    def to_vtt(self) -> str:
        blocks = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text}\n" for s in self.segments()]
        return "WEBVTT\n\n" + "\n".join(blocks)

    def render(self, fmt: str) -> str:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        return getattr(self, f"to_{fmt}")()

    def to_json_record(self) -> str:
        """Everything every export needs, the token pieces included, as compact JSON: History keeps it so a
        transcript can be exported again later without the model. from_json_record() reads it back."""
        pieces = {str(i): [base64.b64encode(self.tokenizer.token_bytes(i)).decode("ascii"), self.tokenizer.is_text(i),
                           self.tokenizer.token_name(i)] for i in sorted({t.id for t in self.tokens})}
        doc = {"version": RECORD_VERSION, "meta": self.meta, "pieces": pieces,
               "tokens": [[t.id, t.index, round(t.start, 6), round(t.end, 6)] for t in self.tokens]}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json_record(cls, text: str) -> "Transcript":
        """Raises ValueError for a record that is not one."""
        try:
            doc = json.loads(text)
            if doc.get("version") != RECORD_VERSION:
                raise ValueError(f"version {doc.get('version')!r}")
            pieces = {int(i): (base64.b64decode(b), bool(is_text), str(name))
                      for i, (b, is_text, name) in doc["pieces"].items()}
            tokens = [Token(int(i), int(index), float(start), float(end)) for i, index, start, end in doc["tokens"]]
            if any(t.id not in pieces for t in tokens):
                raise ValueError("a token without its piece")
            return cls(tokens, StoredPieces(pieces), dict(doc.get("meta") or {}))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            raise ValueError(f"not a stored transcript ({e})") from None


RECORD_VERSION = 1


class StoredPieces:
    """What a Transcript asks of its tokenizer, for the ids of one stored transcript only (decoding joins
    the pieces' bytes and reads them as UTF-8, as Tekken does)."""

    def __init__(self, pieces: dict[int, tuple[bytes, bool, str]]):
        self.pieces = pieces  # id -> (bytes, is text, readable name)

    def is_text(self, token_id: int) -> bool:
        return self.pieces[token_id][1]

    def token_bytes(self, token_id: int) -> bytes:
        return self.pieces[token_id][0]

    def token_name(self, token_id: int) -> str:
        return self.pieces[token_id][2]

    def decode(self, ids) -> str:
        return b"".join(self.pieces[int(i)][0] for i in ids if self.pieces[int(i)][1]).decode("utf-8", "replace")


def export_names(sources: list[str | Path], fmt: str) -> list[str]:
    """File names for writing each source's transcript into one folder, never the same name twice:
    `memo.srt`, or `memo.ogg.srt` and `memo.mp3.srt` when two sources share a stem; a name still taken
    (the same file name in two folders) gets ` (2)`, ` (3)`, ... Case is ignored, as on Windows and macOS."""
    stems = Counter(Path(s).stem.lower() for s in sources)
    names: list[str] = []
    used: set[str] = set()
    for source in map(Path, sources):
        base = source.stem if stems[source.stem.lower()] == 1 else source.name
        name, n = f"{base}.{fmt}", 2
        while name.lower() in used:
            name, n = f"{base} ({n}).{fmt}", n + 1
        used.add(name.lower())
        names.append(name)
    return names


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"
