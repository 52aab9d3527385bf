"""Tekken tokenizer (tekken.json) through mistral-common. Only decoding and the special ids are needed:
the model reads audio, and its prompt is made of special tokens alone."""
from __future__ import annotations

from pathlib import Path

from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy
from mistral_common.tokens.tokenizers.tekken import Tekkenizer

from .config import ModelFileError


class Tokenizer:
    def __init__(self, path: Path):
        try:
            self._tekken = Tekkenizer.from_file(path)
            self.bos = self._tekken.get_special_token("<s>")
            self.eos = self._tekken.get_special_token("</s>")
            self.streaming_pad = self._tekken.get_special_token("[STREAMING_PAD]")
            self.streaming_word = self._tekken.get_special_token("[STREAMING_WORD]")
        except (AssertionError, OSError, ValueError, KeyError) as e:
            raise ModelFileError(f"{path}: not a usable tekken.json for Voxtral Realtime ({e})") from None
        self.n_special = self._tekken.num_special_tokens
        self.vocab_size = self._tekken.n_words

    def is_text(self, token_id: int) -> bool:
        return token_id >= self.n_special

    def token_bytes(self, token_id: int) -> bytes:
        return self._tekken.id_to_byte_piece(token_id, SpecialTokenPolicy.IGNORE)

    def token_name(self, token_id: int) -> str:
        """Readable form of any id, specials included (for JSON output and debugging)."""
        return self._tekken.id_to_piece(token_id)

    def decode(self, ids) -> str:
        # Specials are dropped before decoding so that a character split across a PAD still joins up.
        text_ids = [int(t) for t in ids if int(t) >= self.n_special]
        return self._tekken.decode(text_ids, SpecialTokenPolicy.IGNORE)
