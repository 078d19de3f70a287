"""Why the corpus does not answer, in the reader's words and language.

The reader (``Extractor.reason``) finds what the evidence lacks; this module says it in the
question's language (English, Simplified or Traditional Chinese, Japanese, Korean; English
for any other), without similarities or shares: a reader is told what the sources do not
say.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["missing_names", "no_answer", "no_type", "unstated"]

_MISSING = {
    "en": "The sources do not mention {names} in the passages closest to the question.",
    "zh-Hans": "资料中与问题最接近的段落没有提到{names}。",
    "zh-Hant": "資料中與問題最接近的段落沒有提到{names}。",
    "ja": "資料の中で質問に最も近い段落は{names}に触れていません。",
    "ko": "자료에서 질문과 가장 가까운 단락은 {names}을(를) 언급하지 않습니다.",
}
_UNSTATED = {
    "en": "The sources are about what the question asks, but the closest passage says nothing "
    "of {words}.",
    "zh-Hans": "资料谈到了问题涉及的内容，但最接近的段落没有说到{words}。",
    "zh-Hant": "資料談到了問題涉及的內容，但最接近的段落沒有說到{words}。",
    "ja": "資料は質問の話題を扱っていますが、最も近い段落は{words}について述べていません。",
    "ko": "자료가 질문의 주제를 다루지만, 가장 가까운 단락은 {words}에 대해 말하지 않습니다.",
}
_NO_TYPE = {
    "en": "The closest passages are about the question but give no {kind}.",
    "zh-Hans": "最接近的段落与问题相关，但没有给出{kind}。",
    "zh-Hant": "最接近的段落與問題相關，但沒有給出{kind}。",
    "ja": "最も近い段落は質問に関係しますが、{kind}は書かれていません。",
    "ko": "가장 가까운 단락은 질문과 관련이 있지만 {kind}은(는) 나오지 않습니다.",
}
_NO_ANSWER = {
    "en": "The sources do not seem to answer this question.",
    "zh-Hans": "资料似乎没有回答这个问题。",
    "zh-Hant": "資料似乎沒有回答這個問題。",
    "ja": "資料はこの質問に答えていないようです。",
    "ko": "자료가 이 질문에 답하지 않는 것 같습니다.",
}
# What a question asked for, as the reason names it.
_KINDS = {
    "en": {"person": "person's name", "organisation": "organisation", "place": "place",
           "date": "date or time", "number": "number", "frequency": "frequency",
           "duration": "duration", "title": "title or name", "list": "list"},
    "zh-Hans": {"person": "人名", "organisation": "机构", "place": "地点", "date": "日期或时间",
                "number": "数字", "frequency": "频率", "duration": "时长", "title": "名称",
                "list": "清单"},
    "zh-Hant": {"person": "人名", "organisation": "機構", "place": "地點", "date": "日期或時間",
                "number": "數字", "frequency": "頻率", "duration": "時長", "title": "名稱",
                "list": "清單"},
    "ja": {"person": "人名", "organisation": "組織", "place": "場所", "date": "日付や時期",
           "number": "数", "frequency": "頻度", "duration": "期間", "title": "名称",
           "list": "一覧"},
    "ko": {"person": "인물", "organisation": "기관", "place": "장소", "date": "날짜나 시기",
           "number": "숫자", "frequency": "빈도", "duration": "기간", "title": "이름",
           "list": "목록"},
}  # fmt: skip


def _language(language: str) -> str:
    return language if language in _NO_ANSWER else "en"


def _joined(items: Sequence[str], language: str) -> str:
    quoted = [f"«{item}»" for item in items]
    return ("、" if language.startswith("zh") or language == "ja" else ", ").join(quoted)


def missing_names(names: Sequence[str], language: str) -> str:
    """The question names or counts something no close passage states."""
    language = _language(language)
    return _MISSING[language].format(names=_joined(names, language))


def unstated(words: Sequence[str], language: str) -> str:
    """The passages are about the question's subject but do not state what it asks."""
    language = _language(language)
    return _UNSTATED[language].format(words=_joined(words, language))


def no_type(answer_type: str, language: str) -> str:
    """The passages hold nothing of the kind asked for (no date for a "when")."""
    language = _language(language)
    return _NO_TYPE[language].format(kind=_KINDS[language].get(answer_type, answer_type))


def no_answer(language: str) -> str:
    language = _language(language)
    return _NO_ANSWER[language]
