"""A finished or growing transcription as data: text, every token with its 80 ms time slot, caption
segments, and the TXT / SRT / VTT / JSON exports shared by the CLI and the app."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

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


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"
