"""Index generations on disk: build one from the corpus, load the current one checked.

The public face of ``service.index``; code outside the package imports from here. Inside:

- ``layout``: the files of a generation, its manifest and checksums, ``CURRENT``;
- ``build``: ``build_index``, a new generation from the corpus folder, published;
- ``vectors``: the previous generation's vectors reused, new text encoded once;
- ``texts``: what the encoders encode (chunks under their title, sentences);
- ``annotations``: the typed spans of every sentence (``spans.npy``), reused by text;
- ``stores``: each encoder's dense store in a generation (FAISS files or Milvus);
- ``load``: ``check_index`` and ``load_index``, with the last-good fallback;
- ``encoders``: the encoders loaded as the settings say;
- ``steps``: the named steps of a build or a load, for whoever times them;
- ``live``: adding and removing documents while the service answers.
"""

from service.index.build import BuildResult, build_index
from service.index.encoders import load_encoders
from service.index.layout import CURRENT, KEEP_GENERATIONS, MANIFEST, current_generation
from service.index.load import CorpusIndex, check_index, load_index
from service.index.steps import StepObserver
from service.index.texts import IndexTexts, read_texts

__all__ = [
    "CURRENT",
    "KEEP_GENERATIONS",
    "MANIFEST",
    "BuildResult",
    "CorpusIndex",
    "IndexTexts",
    "StepObserver",
    "build_index",
    "check_index",
    "current_generation",
    "load_encoders",
    "load_index",
    "read_texts",
]
