"""Quotes and sources compared as a reader compares them: case, width, white space, quote
marks and dashes, and the two Chinese scripts do not count.

``normalise`` folds a text character for character and keeps, for each character of the
folding, where it came from, so a match found in the folding is exact offsets into the
original text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import zhconv

__all__ = ["Normalised", "normalise", "tokens"]

_QUOTES = dict.fromkeys('"“”„‟«»「」『』〝〞＂', '"') | dict.fromkeys("'‘’‚‛`´", "'")
_DASHES = dict.fromkeys("‐‑‒–—―−－﹣", "-")


@lru_cache(maxsize=65536)
def _fold(char: str) -> str:
    """One character as compared: its quote mark or dash class, else its NFKC, Simplified,
    lower-case form where that stays one character."""
    if char in _QUOTES:
        return _QUOTES[char]
    if char in _DASHES:
        return _DASHES[char]
    folded = unicodedata.normalize("NFKC", char)
    folded = folded if len(folded) == 1 else char
    simplified = zhconv.convert(folded, "zh-hans")
    folded = simplified if len(simplified) == 1 else folded
    lower = folded.lower()
    return lower if len(lower) == 1 else folded


@dataclass(frozen=True)
class Normalised:
    """A folded text and, for each of its characters, its offset in the original."""

    text: str
    origin: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original offsets of ``text[start:end]`` (``end > start``)."""
        return self.origin[start], self.origin[end - 1] + 1


def normalise(text: str) -> Normalised:
    """``text`` folded (``_fold``), every run of white space one space and kept only between
    two words; with each character's original offset."""
    chars: list[str] = []
    origin: list[int] = []
    for at, char in enumerate(text):
        if char.isspace():
            if chars and chars[-1] != " ":
                chars.append(" ")
                origin.append(at)
            continue
        chars.append(_fold(char))
        origin.append(at)
    kept = [
        (char, at)
        for n, (char, at) in enumerate(zip(chars, origin, strict=True))
        if char != " "
        or _spaced(chars[n - 1] if n else "", chars[n + 1] if n + 1 < len(chars) else "")
    ]
    return Normalised("".join(c for c, _ in kept), tuple(at for _, at in kept))


def _spaced(before: str, after: str) -> bool:
    """A space that separates two words (not one beside punctuation, or in Chinese text,
    which writes none)."""
    return all(c.isalnum() and not _HAN.match(c) for c in (before, after) if c) and bool(
        before and after
    )


_TOKEN = re.compile(r"[^\W_]+(?:['’.,-][^\W_]+)*|[^\s\w]", re.UNICODE)
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PIECE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\u3400-\u9fff\uf900-\ufaff]+")


def tokens(text: str) -> list[tuple[str, int, int]]:
    """The words of ``text`` (each Han character alone; numbers with their separators,
    "3,000" and "1.5"), with their offsets, for listing what differs."""
    found = []
    for match in _TOKEN.finditer(text):
        word, start = match.group(), match.start()
        if _HAN.search(word):
            run = start
            for piece in re.findall(
                r"[\u3400-\u9fff\uf900-\ufaff]|[^\u3400-\u9fff\uf900-\ufaff]+", word
            ):
                found.append((piece, run, run + len(piece)))
                run += len(piece)
        else:
            found.append((word, start, match.end()))
    return found
