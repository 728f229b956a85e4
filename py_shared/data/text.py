"""Text: GPT-2's byte-level BPE in pure Python, a character tokenizer, and token streams for language modelling.

GPT-2 pre-splits text with a regex using \\p{L} and \\p{N}, which Python's `re` lacks (the `regex` package is
a C extension, unavailable in the browser). Letters here are `[^\\W\\d_]` and numbers `\\d`: identical for
text whose digits are decimal digits; superscripts and Roman-numeral characters split differently.
"""

from __future__ import annotations

import array
import itertools
import json
import re
from dataclasses import dataclass
from functools import lru_cache

from py_shared.data.examples import DataError
from py_shared.task import TextData

GPT2_VOCAB_SIZE = 50257
PRETOKENIZE = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")


@lru_cache(maxsize=1)
def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


class BPETokenizer:
    """GPT-2's tokenizer from its two files: encoder.json (token -> id) and vocab.bpe (the merges, in order)."""

    def __init__(self, encoder_json: str, vocab_bpe: str) -> None:
        self.encoder: dict[str, int] = json.loads(encoder_json)
        self.decoder = {i: t for t, i in self.encoder.items()}
        merges = [tuple(line.split()) for line in vocab_bpe.splitlines()[1:] if line and not line.startswith("#")]
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.byte_encoder = _byte_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self._cache: dict[str, list[str]] = {}

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def _bpe(self, word: str) -> list[str]:
        if word in self._cache:
            return self._cache[word]
        parts = list(word)
        while len(parts) > 1:
            pairs = set(itertools.pairwise(parts))
            best = min(pairs, key=lambda p: self.ranks.get(p, 1 << 30))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self._cache[word] = parts
        return parts

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`."""
        ids: list[int] = []
        for piece in PRETOKENIZE.findall(text):
            word = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(word))
        return ids

    def decode(self, ids: list[int]) -> str:
        """The text of token ids (invalid UTF-8 from partial tokens becomes U+FFFD)."""
        text = "".join(self.decoder[i] for i in ids)
        return bytes(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace")


class CharTokenizer:
    """One token per character of `alphabet`; every other character is the last id, "unknown"."""

    def __init__(self, alphabet: str) -> None:
        self.alphabet = alphabet
        self.index = {c: i for i, c in enumerate(alphabet)}

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + 1

    def encode(self, text: str) -> list[int]:
        unknown = len(self.alphabet)
        return [self.index.get(c, unknown) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.alphabet[i] if i < len(self.alphabet) else "\ufffd" for i in ids)


Tokenizer = BPETokenizer | CharTokenizer


def vocab_size(spec: TextData) -> int:
    """The model's vocabulary size for this text spec (no tokenizer files needed)."""
    return GPT2_VOCAB_SIZE if spec.tokenizer == "gpt2-bpe" else len(spec.alphabet) + 1


def tokenizer_for(spec: TextData, bpe_files: tuple[str, str] | None = None) -> Tokenizer:
    """The spec's tokenizer; GPT-2 BPE needs the contents of (encoder.json, vocab.bpe), read by the platform."""
    if spec.tokenizer == "char":
        return CharTokenizer(spec.alphabet)
    if bpe_files is None:
        raise ValueError("the gpt2-bpe tokenizer needs the contents of encoder.json and vocab.bpe")
    return BPETokenizer(*bpe_files)


@dataclass(frozen=True)
class TokenStream:
    """Token ids packed as little-endian int32."""

    tokens: bytes

    def __len__(self) -> int:
        return len(self.tokens) // 4


def tokenize(text: str, tokenizer: Tokenizer, name: str, context_length: int) -> TokenStream:
    """Tokenize a text file's contents; it must hold more than one window of context_length tokens."""
    if "\x00" in text:
        raise DataError(f"{name}: this is not a text file (it contains binary data)")
    ids = tokenizer.encode(text)
    if len(ids) <= context_length + 1:
        raise DataError(f"{name}: {len(ids)} tokens is too short for windows of {context_length} tokens")
    return TokenStream(array.array("i", ids).tobytes())


def split_stream(
    stream: TokenStream, validation_fraction: float, context_length: int
) -> tuple[TokenStream, TokenStream]:
    """(train, validation): the last fraction of the text is held out, contiguous, so windows never straddle."""
    n = len(stream)
    n_val = int(n * validation_fraction)
    if n_val and n_val <= context_length + 1:
        n_val = context_length + 2
    if n - n_val <= context_length + 1:
        raise DataError(f"{n} tokens cannot be split into training and validation windows of {context_length}")
    cut = (n - n_val) * 4
    return TokenStream(stream.tokens[:cut]), TokenStream(stream.tokens[cut:])
