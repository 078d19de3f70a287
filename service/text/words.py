"""Chinese words: jieba's segmentation of Simplified text, loaded once per process.

Chinese is written without spaces between words. Character bigrams find a word without a
dictionary but also pair characters across word boundaries; jieba's dictionary (about
350,000 words with their frequencies, and a hidden Markov model for words it does not
list, such as names) says where the words are.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

import jieba

__all__ = ["cut", "frequency", "segmenter"]

_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def segmenter() -> jieba.Tokenizer:
    """jieba's default segmenter, its dictionary loaded (about a second, from jieba's own
    cache file after the first run); later calls return it at once."""
    jieba.setLogLevel(logging.WARNING)  # not "Building prefix dict ..." on every start
    with _LOCK:
        jieba.dt.initialize()
    return jieba.dt


@lru_cache(maxsize=65536)
def cut(run: str) -> tuple[str, ...]:
    """jieba's words of ``run``, a run of Simplified Han characters, in order.

    Cached: passages repeat headings and names, and a question is cut again by each
    lexical retriever that reads it."""
    return tuple(segmenter().cut(run, HMM=True))


def frequency(word: str) -> int:
    """How often jieba's dictionary saw ``word`` (0 for a word it does not list)."""
    return int(segmenter().FREQ.get(word) or 0)
