"""Synthetic chunk texts and held-out queries, made from the seed corpus.

Nothing is downloaded. A synthetic chunk recombines sentences of the seed corpus
(``seeds/``: English, Simplified and Traditional Chinese) in one language, to the length of
a real chunk of that language, with every number, English month and seed person name
varied. The same seed gives the same texts, and the first N texts of a larger corpus are
the corpus of N (so vectors encoded for 100k serve 10k too).

- ``SeedPool`` / ``seed_pool``: the seed sentences per language and the shape (language,
  weighted length) of every real chunk;
- ``synthetic_texts``: the N chunk texts of a seed; ``compose`` is the stream behind them,
  which ``vectors.approximate_vectors`` and ``corpus.write_corpus`` also walk;
- ``synthetic_queries`` / ``held_out``: queries that share words with chunks but are never
  one.

Bump ``GENERATOR_VERSION`` when the texts change: cached vectors are keyed by it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from service.ingest.chunk import ChunkingParams, chunk_document, indexed_text, sentence_spans
from service.ingest.chunk import weighted_length as _weighted_length
from service.ingest.documents import read_corpus

# Bump when synthetic_texts() changes: cached vectors are keyed by it.
GENERATOR_VERSION = 2


# Person names in the seeds, by script; each occurrence is swapped for a made-up name.
_SEED_NAMES_LATIN = (
    "Ou Boqian", "Li Xixie", "Liu Xu", "Liu Jingni", "Liu Xian", "GONG Qian", "LEE Dal-hee",
    "LEE Hee-sup", "LEE Kang-deok", "PARK Jung Sook", "SHIN Bong-seop", "SHIN Bongkil",
    "YU Shenfei", "Ni Yueju", "Osamu Onodera", "Wang Jiayi", "Wang Dongqian", "Yan Liang",
    "Nam Eunyoung",
)  # fmt: skip
_SEED_NAMES_HAN = ("欧渤芊",)
_SURNAMES = ("Zhang", "Wang", "Chen", "Kim", "Park", "Choi", "Sato", "Suzuki", "Tanaka", "Zhao")
_GIVEN = ("Wei", "Min-jun", "Haruto", "Jiayi", "Seo-yeon", "Yui", "Hao", "Ji-ho", "Ren", "Lin")
_HAN_SURNAMES = "张王李赵陈刘杨黄周吴"
_HAN_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超"
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_NUMBER_RE = re.compile(r"\d+")
_MONTH_RE = re.compile(r"\b(?:" + "|".join(_MONTHS) + r")\b")
_NAME_RE = re.compile("|".join(map(re.escape, _SEED_NAMES_LATIN + _SEED_NAMES_HAN)))


@dataclass(frozen=True)
class SeedPool:
    """What synthetic chunks are made of: the seed sentences per language, and the language
    and weighted length of every real chunk (the shape each synthetic chunk copies)."""

    sentences: dict[str, tuple[str, ...]]
    profiles: tuple[tuple[str, int], ...]


def seed_pool(corpus_dir: Path, params: ChunkingParams) -> SeedPool:
    """Sentences and chunk shapes of the corpus in ``corpus_dir``, chunked with ``params``."""
    sentences: dict[str, list[str]] = {}
    profiles = []
    for document in read_corpus(corpus_dir):
        for chunk in chunk_document(document, params):
            profiles.append((chunk.language, _weighted_length(indexed_text(chunk, document))))
            sentences.setdefault(chunk.language, []).extend(
                document.text[start:end]
                for start, end in sentence_spans(chunk.text, chunk.char_start)
            )
    if not profiles:
        raise ValueError(f"no chunks in {corpus_dir}; synthetic corpora recombine its sentences.")
    return SeedPool({k: tuple(v) for k, v in sentences.items()}, tuple(profiles))


def held_out(queries: Sequence[str], texts: Sequence[str]) -> list[str]:
    """``queries`` without those that are, letter for letter, the text of a chunk."""
    corpus = set(texts)
    return [query for query in queries if query not in corpus]


def _made_up_name(rng: random.Random, han: bool) -> str:
    if han:
        return rng.choice(_HAN_SURNAMES) + "".join(rng.choices(_HAN_GIVEN, k=rng.randint(1, 2)))
    return f"{rng.choice(_SURNAMES)} {rng.choice(_GIVEN)}"


def _number_like(rng: random.Random, digits: str) -> str:
    if len(digits) == 4 and digits[:2] in ("19", "20"):
        return str(rng.randint(1990, 2035))
    if len(digits) == 1:
        return str(rng.randint(1, 9))
    return str(rng.randint(10 ** (len(digits) - 1), 10 ** len(digits) - 1))


def vary(sentence: str, rng: random.Random) -> str:
    """The sentence with each number, English month and seed person name replaced."""
    sentence = _NUMBER_RE.sub(lambda m: _number_like(rng, m.group()), sentence)
    sentence = _MONTH_RE.sub(lambda _m: rng.choice(_MONTHS), sentence)
    return _NAME_RE.sub(lambda m: _made_up_name(rng, not m.group().isascii()), sentence)


def compose(pool: SeedPool, n: int, seed: int) -> Iterator[tuple[str, list[int], list[str], str]]:
    """The ``n`` synthetic chunks of ``seed``: language, the seed sentences used (indexes
    into ``pool.sentences[language]``), their varied copies (joined, they are the text) and
    the text. Texts are distinct: a draw that repeats an earlier text (seed sentences
    without a number or name to vary) is drawn again."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < n:
        language, target = rng.choice(pool.profiles)
        sentences = pool.sentences[language]
        joiner = " " if language == "en" else ""
        picks: list[int] = []
        parts: list[str] = []
        length = 0
        while length < target:  # sentences while they bring the length closer to target
            pick = rng.randrange(len(sentences))
            part = vary(sentences[pick], rng)
            grown = length + _weighted_length(part) + (len(joiner) if parts else 0)
            if parts and grown - target > target - length:
                break
            picks.append(pick)
            parts.append(part)
            length = grown
        text = joiner.join(parts)
        if text not in seen:
            seen.add(text)
            yield language, picks, parts, text


def synthetic_texts(pool: SeedPool, n: int, seed: int) -> list[str]:
    """``n`` distinct chunk texts: each copies the language of a random real chunk and comes
    as close to its length as whole varied seed sentences of that language allow. A prefix
    of a longer list made with the same seed."""
    return [text for _, _, _, text in compose(pool, n, seed)]


def synthetic_queries(pool: SeedPool, n: int, seed: int) -> list[str]:
    """``n`` distinct held-out queries from their own random stream: the first two thirds of a
    varied seed sentence of at least 40 (weighted) characters, cut at a word (in Chinese,
    at a character). A chunk is whole sentences, so a query shares words with many chunks
    but is never one."""
    rng = random.Random(f"queries-{seed}")
    candidates = {
        language: [s for s in sentences if _weighted_length(s) >= 40]
        for language, sentences in pool.sentences.items()
    }
    languages = [language for language, _ in pool.profiles if candidates[language]]
    queries: dict[str, None] = {}  # distinct, in order
    while len(queries) < n:
        language = rng.choice(languages)
        sentence = vary(rng.choice(candidates[language]), rng)
        if language == "en":
            words = sentence.split()
            queries[" ".join(words[: max(3, 2 * len(words) // 3)])] = None
        else:
            queries[sentence[: max(8, 2 * len(sentence) // 3)]] = None
    return list(queries)
