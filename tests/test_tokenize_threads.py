"""The tokenizer from many threads at once: every request thread stems words.

A snowballstemmer object keeps the word it is stemming in its own attributes, so one
object shared by threads hands out wrong stems (and ``IndexError``) when a thread switch
falls inside a word, and the stem cache keeps the wrong stem for the life of the worker.
"""

from __future__ import annotations

import random
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.text import tokenize as tokenize_module
from service.text.tokenize import tokenize

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
THREADS = 8
ROUNDS = 3


def _seed_words() -> list[str]:
    """Every distinct Latin-script word of the seed corpus, stop words left out."""
    words: set[str] = set()
    for path in sorted(SEEDS.iterdir()):
        words.update(re.findall(r"[A-Za-z\u00c0-\u024f]+", path.read_text(encoding="utf-8")))
    return sorted(word for word in words if tokenize(word))  # not a stop word


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond, as a busy server does at its worst; the stem
    cache starts and ends empty, so a wrong stem cannot leak into other tests."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    tokenize_module._stem.cache_clear()
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        tokenize_module._stem.cache_clear()


def _tokenize_from_threads(expected: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """Tokenize every word from ``THREADS`` threads at once, each in its own order;
    returns the results that differ from ``expected`` and the errors."""
    words = list(expected)
    wrong: list[str] = []
    errors: list[str] = []
    tokenize_module._stem.cache_clear()  # every thread must stem, not read the cache
    start = threading.Barrier(THREADS)

    def work(seed: int) -> None:
        order = random.Random(seed).sample(words, len(words))
        start.wait()
        for word in order:
            try:
                tokens = tokenize(word)
            except Exception as error:  # a shared stemmer raises IndexError mid-word
                errors.append(f"{word}: {error!r}")
                continue
            if tokens != expected[word]:
                wrong.append(f"{word} -> {tokens} (alone: {expected[word]})")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # what the threads left in the cache is what every later request reads
    wrong.extend(f"cached {w} -> {tokenize(w)}" for w in words if tokenize(w) != expected[w])
    return wrong, errors


@pytest.mark.usefixtures("frequent_thread_switches")
def test_stems_from_many_threads_match_a_single_threaded_run() -> None:
    words = _seed_words()
    assert len(words) > 500
    expected = {word: tokenize(word) for word in words}  # one thread, nothing cached yet
    for _ in range(ROUNDS):
        wrong, errors = _tokenize_from_threads(expected)
        assert not wrong and not errors, (
            f"{len(wrong)} wrong stems, e.g. {wrong[:3]}; {len(errors)} errors, e.g. {errors[:2]}"
        )
