"""Whisper's multilingual tokenizer with the code-switching task tokens and per-token language tags.

The decoder input starts with the *task tokens*, named by their language tokens:

* ``zh``: Whisper's own ``<|startoftranscript|><|zh|><|transcribe|><|notimestamps|>``
* ``zh_en``: the two-LID code-switching tokens
  ``<|startoftranscript|><|zh|><|en|><|transcribe|><|notimestamps|>``

Every token also gets a language tag (:class:`Language`, from :mod:`espnet_cs.text`): ``ZH``
if the bytes it covers belong to a CJK ideograph, ``EN`` if they belong to a Latin letter,
``OTHER`` otherwise (spaces, punctuation, digits, special tokens). A byte-level BPE token can
cover part of a character or straddle two; it takes the language covering most of its bytes
(ties go to ``ZH``).
ESPnet's own Whisper tokenizer expects ESPnet's fork of openai-whisper, hence this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from whisper.tokenizer import Tokenizer, get_tokenizer

from espnet_cs.renamed import refuse_renamed_task_tokens
from espnet_cs.text import Language, char_language

TaskTokens = Literal["zh", "zh_en"]
TASK_TOKEN_LANGUAGES: dict[str, tuple[str, ...]] = {"zh": ("zh",), "zh_en": ("zh", "en")}


def _byte_languages(text: str) -> list[Language]:
    """The language of every UTF-8 byte of ``text``."""
    return [char_language(c) for c in text for _ in c.encode("utf-8")]


@dataclass(frozen=True)
class CSTokenizer:
    """Whisper multilingual tokenizer with configurable task tokens (one language or code-switching).

    Args:
        task_tokens: ``"zh"`` (``<|zh|>`` only) or ``"zh_en"`` (``<|zh|><|en|>``).
        num_languages: languages of the Whisper vocabulary (99, or 100 for large-v3).
    """

    task_tokens: TaskTokens = "zh_en"
    num_languages: int = 99
    whisper: Tokenizer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        refuse_renamed_task_tokens(self.task_tokens, "CSTokenizer")
        if self.task_tokens not in TASK_TOKEN_LANGUAGES:
            raise ValueError(f"unknown task_tokens {self.task_tokens!r}: choose from {sorted(TASK_TOKEN_LANGUAGES)}")
        tokenizer = get_tokenizer(multilingual=True, num_languages=self.num_languages, language="zh", task="transcribe")
        object.__setattr__(self, "whisper", tokenizer)

    @classmethod
    def for_vocab(cls, n_vocab: int, task_tokens: TaskTokens = "zh_en") -> CSTokenizer:
        """The tokenizer of a Whisper model with ``n_vocab`` embeddings (as ``Whisper.num_languages``)."""
        if n_vocab < 51865:
            raise ValueError(f"n_vocab={n_vocab} is an English-only Whisper: it has no <|zh|> token")
        return cls(task_tokens, num_languages=n_vocab - 51765 - 1)

    @property
    def eot(self) -> int:
        return self.whisper.eot

    @property
    def sot(self) -> int:
        return self.whisper.sot

    @property
    def vocab_size(self) -> int:
        """Size of Whisper's embedding table for this vocabulary."""
        return self.whisper.encoding.n_vocab

    @cached_property
    def language_token_ids(self) -> dict[str, int]:
        """``{"zh": id of <|zh|>, "en": id of <|en|>}``."""
        return {lang: self.whisper.to_language_token(lang) for lang in ("zh", "en")}

    @cached_property
    def sot_sequence(self) -> tuple[int, ...]:
        """The task tokens: sot, their language token(s), transcribe, notimestamps."""
        languages = [self.language_token_ids[lang] for lang in TASK_TOKEN_LANGUAGES[self.task_tokens]]
        return (self.sot, *languages, self.whisper.transcribe, self.whisper.no_timestamps)

    @cached_property
    def lid_positions(self) -> dict[str, int]:
        """Position of each language token of the task tokens inside :attr:`sot_sequence`."""
        return {
            lang: self.sot_sequence.index(token)
            for lang, token in self.language_token_ids.items()
            if token in self.sot_sequence
        }

    @cached_property
    def suppress_tokens(self) -> tuple[int, ...]:
        """Tokens Whisper never samples by default (its ``suppress_tokens="-1"``)."""
        w = self.whisper
        special = [w.transcribe, w.translate, w.sot, w.sot_prev, w.sot_lm, w.no_speech]
        return tuple(sorted(set(w.non_speech_tokens) | set(special)))

    @cached_property
    def blank_tokens(self) -> tuple[int, ...]:
        """Tokens Whisper suppresses at the first sampled position (blank and end of text)."""
        return (*self.whisper.encode(" "), self.eot)

    def encode(self, text: str) -> list[int]:
        """Text tokens of ``text`` (no task tokens, no end of text)."""
        return self.whisper.encode(text)

    def encode_target(self, transcript: str) -> list[int]:
        """Target tokens of a transcript as Whisper writes it: a leading space before Latin script."""
        transcript = transcript.strip()
        return self.encode(" " + transcript if transcript[:1].isascii() else transcript)

    def decode(self, token_ids: Sequence[int]) -> str:
        """Text of ``token_ids``; special tokens (task tokens, end of text, timestamps) are dropped."""
        return self.whisper.decode([t for t in token_ids if t < self.eot]).strip()

    def language_tags(self, token_ids: Sequence[int]) -> list[Language]:
        """One language tag per token (see the module docstring)."""
        pieces = [b"" if t >= self.eot else self.whisper.encoding.decode_single_token_bytes(t) for t in token_ids]
        text = b"".join(pieces).decode("utf-8", errors="replace")
        byte_langs = _byte_languages(text)
        if len(byte_langs) != sum(map(len, pieces)):  # invalid UTF-8: tag each token on its own
            byte_langs = _token_local_languages(pieces)
        tags, start = [], 0
        for piece in pieces:
            langs = byte_langs[start : start + len(piece)]
            start += len(piece)
            zh, en = langs.count(Language.ZH), langs.count(Language.EN)
            tags.append(Language.OTHER if zh + en == 0 else Language.ZH if zh >= en else Language.EN)
        return tags


def _token_local_languages(pieces: Sequence[bytes]) -> list[Language]:
    """Per-byte languages when the whole byte string is not valid UTF-8 (hypotheses cut mid-character).

    Each token is decoded on its own; a byte that does not decode counts as ``OTHER``.
    """
    langs: list[Language] = []
    for piece in pieces:
        decoded = _byte_languages(piece.decode("utf-8", errors="ignore"))
        langs.extend(decoded + [Language.OTHER] * (len(piece) - len(decoded)))
    return langs
