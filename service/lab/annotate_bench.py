"""How fast the build annotates sentences: the seeds cold, and a rate on a larger corpus.

``python -m service.lab.annotate_bench [--sentences N] [--json]``

1. **seeds**: a fresh ``Annotator`` annotates every distinct sentence of the seed corpus,
   as ``build_index`` does (the English model's and jieba's load included).
2. **rate**: the seeds' sentences repeated to ``N`` (20,000 by default) are annotated by
   the warm annotator, without the build's de-duplication, so every sentence is tagged:
   sentences per second overall and by script (English through spaCy, Chinese through
   jieba). The 100k-chunk scale corpus (about 3 sentences a chunk) is extrapolated from it.

Threads: spaCy runs in this process only (``n_process=1``); OMP_NUM_THREADS should be 1.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

from service.config import Settings
from service.index.texts import sentence_table, sentence_texts
from service.ingest.annotate import Annotator
from service.ingest.chunk import ChunkingParams, chunk_document
from service.ingest.documents import corpus_files, read_document
from service.text.language import detect_language

__all__ = ["main", "measure"]

_SCALE_CHUNKS = 100_000


def _seed_sentences(settings: Settings) -> tuple[list[str], float]:
    """The distinct sentences of the corpus, as the build annotates them, and the number of
    sentences a chunk."""
    documents = [read_document(path) for path in corpus_files(settings.corpus_dir)]
    params = ChunkingParams(settings.chunk_size, settings.chunk_overlap)
    chunks = [chunk for document in documents for chunk in chunk_document(document, params)]
    table = sentence_table(chunks)
    texts = sentence_texts({d.doc_id: d for d in documents}, chunks, table)
    return list(dict.fromkeys(texts)), len(texts) / max(len(chunks), 1)


def _rate(annotator: Annotator, sentences: Sequence[str]) -> float:
    started = time.perf_counter()
    annotator.annotate_texts(sentences)
    return len(sentences) / (time.perf_counter() - started)


def measure(settings: Settings, total: int) -> dict[str, Any]:
    """The seeds' cold annotation time and the warm rates on ``total`` repeated sentences."""
    seeds, per_chunk = _seed_sentences(settings)
    annotator = Annotator()
    started = time.perf_counter()
    annotator.annotate_texts(seeds)
    cold = time.perf_counter() - started
    repeated = [seeds[i % len(seeds)] for i in range(total)]
    chinese = [s for s in repeated if detect_language(s).startswith(("zh", "ja"))]
    english = [s for s in repeated if not detect_language(s).startswith(("zh", "ja"))]
    rate = _rate(annotator, repeated)
    scale = _SCALE_CHUNKS * per_chunk
    return {
        "seed_sentences": len(seeds),
        "seed_seconds": round(cold, 2),
        "sentences": total,
        "sentences_per_second": round(rate, 1),
        "english_per_second": round(_rate(annotator, english[: total // 4]), 1),
        "chinese_per_second": round(_rate(annotator, chinese[: total // 4]), 1),
        "chinese_share": round(len(chinese) / total, 3),
        "scale_sentences": round(scale),
        "scale_minutes_extrapolated": round(scale / rate / 60, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(Settings(), args.sentences)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
