"""Date and number patterns: the written forms a tagger splits or misses.

jieba cuts 2024年5月27日 into six numerals and 五次 into a numeral and a measure word; these
patterns keep each a single date or count, with its measure word, and the build-time
annotator (``service.ingest.annotate``) prefers them to jieba's pieces.
"""

from __future__ import annotations

import re

__all__ = ["DATE_RE", "MONTH", "NUMBER_ZH_RE", "ZH_MEASURE"]

MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
)
DATE_RE = re.compile(
    r"(?<!\d)(?:19|20)\d\d-\d{1,2}-\d{1,2}(?!\d)(?:\s+\d{1,2}:\d\d(?::\d\d)?)?|"  # 2024-06-12 10:17
    rf"{MONTH}\s+\d{{1,2}}(?!\d)(?:st|nd|rd|th)?"
    rf"(?:\s*(?:-|–|and|to)\s*\d{{1,2}}(?!\d)(?:st|nd|rd|th)?)?"
    rf"(?:,?\s+(?:19|20)\d\d)?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{MONTH}(?:\s+(?:19|20)\d\d)?"
    rf"|{MONTH}\s+(?:19|20)\d\d"
    r"|(?:19|20)\d\d年(?:至(?:19|20)?\d\d年)?(?:\d{1,2}月)?(?:\d{1,2}日)?"
    r"|(?<![\d.])(?:19|20)\d\d(?:\s*(?:-|–|to)\s*(?:19|20)\d\d)?(?:s)?(?![\d.年])"
    r"|\d{1,2}月(?:\d{1,2}日)?|(?:今年|去年|明年|當年|当年)(?:\d{1,2}月)?"
    r"|\b(?:January|February|March|April|June|July|August|September|October|November|"
    r"December)\b"  # a month alone ("In February this year"); not "May", a verb too
)
ZH_MEASURE = r"(?:人次|领域|領域|[个個名位次届屆项項国國家年场場种種方部大倍天周週月人])"
# A classifier (个, 位, 项...) is followed by its noun: "18個國家", "41项具体目标"; any other
# measure ends the count: "五次", "二十多年", "三国" (and no more: not "三国合作"). Digits
# count when a Han character or 万/亿 follows ("3000万。"), not in a Latin run ("G20").
_ZH_CLASSIFIER = r"[个個名位项項种種场場家]"
NUMBER_ZH_RE = re.compile(
    r"(?<!第)(?:[约約近逾超过過提前]+)?"  # 第六屆 is an ordinal, not a count
    r"(?:(?<![A-Za-z\d第])\d+(?:\.\d+)?(?:多)?(?:万|萬|亿|億|(?=[\u4e00-\u9fff]))"
    rf"|(?<!第)[一二三四五六七八九十百千两兩]+(?:多)?(?:万|萬|亿|億)?(?={ZH_MEASURE}))"
    rf"(?:{_ZH_CLASSIFIER}(?:(?![、和与與及的在了于於舉举召,，。])[\u4e00-\u9fff]){{0,2}}"
    rf"|{ZH_MEASURE})?"
)
