"""Index generations on disk: build one from the corpus, load the current one checked.

The public face of ``service.index``; how a generation is laid out, built and loaded lives
in the modules of this package.
"""

from service.index.generation import (
    CURRENT,
    KEEP_GENERATIONS,
    MANIFEST,
    BuildResult,
    CorpusIndex,
    build_index,
    check_index,
    current_generation,
    load_index,
)

__all__ = [
    "CURRENT",
    "KEEP_GENERATIONS",
    "MANIFEST",
    "BuildResult",
    "CorpusIndex",
    "build_index",
    "check_index",
    "current_generation",
    "load_index",
]
