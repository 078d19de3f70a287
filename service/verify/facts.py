"""Facts: the checkable values of a sentence, in English or Chinese, made comparable.

A claim and an evidence sentence are compared fact by fact:

- ``number``: a value (Arabic digits, English number words, Chinese numerals, with
  million/billion/万/亿 multipliers: "1.5 billion" and "15億" are both 1.5e9), a qualifier
  ("more than", "多", "约") and the unit it counts ("countries", "國家", "次"), mapped to
  a shared concept where the two languages differ;
- ``date``: year, month and day (or a day range), from "December 6 and 8, 2023",
  "2011年10月", "12月6日至8日" or "2024-06-12";
- ``ordinal``: a rank ("the 9th summit", "the ninth", 第九次, 首届), by its value.

Names (people, places, organisations) are not parsed here: they are the typed spans of the
build-time annotations, compared in ``service.verify.slots``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cn2an

from service.records import FactKind

__all__ = [
    "Fact",
    "dates",
    "dates_agree",
    "numbers",
    "ordinals",
    "same_number",
]


@dataclass(frozen=True)
class Fact:
    kind: FactKind
    text: str  # as written
    start: int  # offsets in the sentence
    end: int
    value: tuple[float | int | None, ...] = ()  # number: (value,); date: (year, month, day)
    unit: frozenset[str] = frozenset()  # number: unit concepts; date: the days of a range
    qualifier: str = ""  # number: "more", "less", "about" or ""
    lead: int = 0  # number: characters of its qualifier before ``start`` ("more than ")


# ----------------------------------------------------------------------------- numbers

_EN_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "dozen": 12, "hundred": 100,
}  # fmt: skip
_EN_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_ZH_LARGE = {"万": 1e4, "萬": 1e4, "亿": 1e8, "億": 1e8}

_QUALIFIERS = (
    ("more", r"more than|over|above|at least|upwards of|超过|超過|逾|以上|多"),
    (
        "less",
        r"less than|fewer than|under|below|nearly|almost|up to"
        r"|不到|不足|少于|少於|未满|未滿|近|将近|將近",
    ),
    ("about", r"about|around|approximately|some|roughly|约|約|大约|大約|左右"),
)
_QUALIFIER_BEFORE = re.compile(
    r"(?:" + "|".join(rf"(?P<{name}>{words})" for name, words in _QUALIFIERS) + r")\s*$", re.I
)

_EN_WORD = "|".join(sorted(_EN_UNITS, key=len, reverse=True))
_NUMBER = re.compile(
    r"(?P<arabic>(?<![A-Za-z0-9.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![A-Za-z0-9.])\d+(?:\.\d+)?)"
    rf"|(?P<words>\b(?:{_EN_WORD})(?:[- ](?:{_EN_WORD}))*\b)"
    r"|(?P<zh>(?<![第\d零〇一二两兩三四五六七八九十百千])[零〇一二两兩三四五六七八九十百千]+(?:[万萬亿億][零〇一二两兩三四五六七八九十百千]*)*)",
    re.I,
)
_SCALE_AFTER = re.compile(
    r"^\s*(?P<en>thousand|million|billion|trillion)\b|^(?P<zh>[万萬亿億])", re.I
)
_ORDINAL_AFTER = re.compile(r"^(?:st|nd|rd|th)\b", re.I)
_YEARISH = re.compile(r"^(?:19|20)\d\d$")

# Unit words of both languages, mapped to one concept so "five countries" meets "五國".
_UNIT_CONCEPTS = {
    "country": ("country", "countries", "nation", "nations", "国", "國", "国家", "國家"),
    "region": ("region", "regions", "地区", "地區"),
    "time": ("time", "times", "次", "届", "屆", "round", "rounds", "session", "sessions"),
    "person": ("people", "person", "persons", "participant", "participants", "人", "名", "位"),
    "trip": ("person-trip", "person-trips", "trip", "trips", "visit", "visits", "人次"),
    "delegate": ("delegate", "delegates", "代表"),
    "expert": ("expert", "experts", "scholar", "scholars", "专家", "專家", "学者", "學者"),
    "government": ("government", "governments", "政府", "地方政府"),
    "organization": (
        "organization",
        "organizations",
        "organisation",
        "organisations",
        "组织",
        "組織",
        "机构",
        "機構",
    ),
    "meeting": ("meeting", "meetings", "会议", "會議", "会", "會"),
    "mechanism": ("mechanism", "mechanisms", "机制", "機制"),
    "goal": ("goal", "goals", "target", "targets", "目标", "目標"),
    "project": ("project", "projects", "项目", "項目"),
    "year": ("year", "years", "年", "周年", "週年", "anniversary"),
    "month": ("month", "months", "个月", "個月"),
    "day": ("day", "days", "天", "日"),
    "member": ("member", "members", "成员", "成員", "会员", "會員"),
    "field": ("field", "fields", "area", "areas", "领域", "領域"),
    "percent": ("percent", "per cent", "%", "％"),
    "km": ("km", "kilometre", "kilometres", "kilometer", "kilometers", "公里"),
}
_WORD_TO_CONCEPT = {w: c for c, words in _UNIT_CONCEPTS.items() for w in words}
_UNIT_AFTER_EN = re.compile(r"^\s*(?:[-\w]+\s+){0,2}?(?P<noun>[a-z%][-a-z]*)", re.I)
_UNIT_AFTER_ZH = re.compile(
    r"^(?:多)?(?P<measure>人次|[个個名位次届屆项項国國家年场場种種方部人天月日大%％])"
    r"(?P<noun>[\u4e00-\u9fff]{0,6})"
)


def _zh_value(text: str) -> float | None:
    """The value of a Chinese numeral (五, 二十, 一亿二千万), read by ``cn2an``; None for
    characters that only look like one (百 of 百姓, 万 of 万一)."""
    try:
        return float(cn2an.cn2an(text, "smart"))
    except ValueError:
        return None


def _en_value(text: str) -> float:
    value = 0.0
    for word in re.split(r"[- ]+", text.lower()):
        if word == "hundred":
            value = (value or 1) * 100
        elif word in _EN_UNITS:
            value += _EN_UNITS[word]
    return value


def _units(after: str) -> frozenset[str]:
    """The unit concepts of the words right after a number."""
    concepts = set()
    zh = _UNIT_AFTER_ZH.match(after)
    if zh:
        measure, noun = zh.group("measure"), zh.group("noun")
        # a measure that says what it counts ("五次", "3000万人次") decides; after a mere
        # classifier the noun does ("5個國際組織": organisations)
        if measure in _WORD_TO_CONCEPT and measure not in "个個位名项項种種场場家大":
            return frozenset({_WORD_TO_CONCEPT[measure]})
        for word, concept in _WORD_TO_CONCEPT.items():
            if len(word) > 1 and not word.isascii() and word in noun[:6]:
                concepts.add(concept)
        if not concepts and measure in _WORD_TO_CONCEPT:
            concepts.add(_WORD_TO_CONCEPT[measure])
        elif not concepts and measure not in "个個":
            concepts.add(measure)
        return frozenset(concepts)
    words = re.findall(r"[a-z%][-a-z]*", after[:60].lower())[:3]
    for word in words:
        if word in _WORD_TO_CONCEPT:
            concepts.add(_WORD_TO_CONCEPT[word])
            break
        if word in ("of", "from", "in", "and", "to", "the", "at", "on", "by", "for"):
            break
    return frozenset(concepts)


def numbers(text: str) -> list[Fact]:
    """Every count or amount of ``text`` (years and dates are left to ``dates``)."""
    found = []
    date_spans = [(f.start, f.end) for f in dates(text)]
    for match in _NUMBER.finditer(text):
        start, end = match.span()
        if any(a <= start < b for a, b in date_spans):
            continue
        raw = match.group()
        if raw == "三" and re.match(r"^[国國方](?!家)", text[end:]):
            continue  # 三国, 三方: "the three countries" of every trilateral sentence
        if match.group("arabic"):
            if _YEARISH.match(raw):
                continue
            value = float(raw.replace(",", ""))
            if _ORDINAL_AFTER.match(text[end:]):
                continue  # "the 14th Subcommittee": a rank (``ordinals``)
        elif match.group("words"):
            value = _en_value(raw)
        else:
            if raw in ("一", "两", "兩") and not _UNIT_AFTER_ZH.match(text[end:]):
                continue  # 一 in 一些, 统一: no count
            zh_value = _zh_value(raw)
            if zh_value is None:
                continue
            value = zh_value
        scale = _SCALE_AFTER.match(text[end:])
        if scale:
            value *= (
                _EN_SCALES[scale.group("en").lower()]
                if scale.group("en")
                else _ZH_LARGE[scale.group("zh")]
            )
            end += scale.end()
        window = max(0, start - 14)
        before = _QUALIFIER_BEFORE.search(text[window:start])
        after_qualifier = re.match(r"^\s*(?:多|余|餘|以上|\+)", text[end:])
        qualifier = next(
            (name for name, _ in _QUALIFIERS if before and before.group(name)), ""
        ) or ("more" if after_qualifier else "")
        unit = _units(text[end + (after_qualifier.end() if after_qualifier else 0) :])
        lead = start - window - before.start() if before and qualifier else 0
        found.append(Fact("number", text[start:end], start, end, (value,), unit, qualifier, lead))
    return found


def same_number(claim: Fact, evidence: Fact) -> bool:
    """The evidence's number says what the claim's says ("more than 200" meets "200多")."""
    (a,), (b,) = claim.value, evidence.value
    if a is None or b is None:
        return False
    if abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1):
        return claim.qualifier in ("", evidence.qualifier) or evidence.qualifier in ("", "about")
    if "about" in (claim.qualifier, evidence.qualifier):
        return abs(a - b) <= 0.1 * max(a, b)
    return False


# ----------------------------------------------------------------------------- dates

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1,
    "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
    "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH_NAME = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"  # noqa: E501
_DAYS = (
    r"(?P<day>\d{1,2})(?!\d)(?:st|nd|rd|th)?"
    r"(?:\s*(?:-|–|and|to|至)\s*(?P<day2>\d{1,2})(?!\d)(?:st|nd|rd|th)?)?"
)
_DATE = re.compile(
    r"(?P<iso>(?<!\d)(?P<iy>(?:19|20)\d\d)-(?P<im>\d{1,2})-(?P<id>\d{1,2})(?!\d))"
    rf"|(?P<en1>(?P<m1>{_MONTH_NAME})\s+{_DAYS}(?:,?\s+(?P<y1>(?:19|20)\d\d))?)"
    rf"|(?P<en2>(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<m2>{_MONTH_NAME})(?:\s+(?P<y2>(?:19|20)\d\d))?)"
    rf"|(?P<en3>(?P<m3>{_MONTH_NAME})\s+(?P<y3>(?:19|20)\d\d))"
    r"|(?P<zh>(?:(?P<zy>(?:19|20)\d\d)年)?(?:(?P<zm>\d{1,2})月)?(?:(?P<zd>\d{1,2})日"
    r"(?:\s*[至到-]\s*(?P<zd2>\d{1,2})日)?)?)"
    r"|(?P<year>(?<![\d.])(?:19|20)\d\d(?!\d|\.\d))"
)


def dates(text: str) -> list[Fact]:
    """Every date of ``text`` as (year, month, day), parts it does not state being None."""
    found = []
    for match in _DATE.finditer(text):
        if not match.group():
            continue
        g = match.groupdict()
        days: set[int] = set()
        year: int | None
        month: int | None
        day: int | None
        if g["iso"]:
            year, month, day = int(g["iy"]), int(g["im"]), int(g["id"])
        elif g["en1"]:
            year = int(g["y1"]) if g["y1"] else None
            month, day = _MONTHS[g["m1"].lower().rstrip(".")], int(g["day"])
            if g["day2"]:
                days = set(range(day, int(g["day2"]) + 1))
        elif g["en2"]:
            year = int(g["y2"]) if g["y2"] else None
            month, day = _MONTHS[g["m2"].lower().rstrip(".")], int(g["d2"])
        elif g["en3"]:
            year, month, day = int(g["y3"]), _MONTHS[g["m3"].lower().rstrip(".")], None
        elif g["zh"]:
            if not (g["zy"] or g["zm"]):
                continue  # a bare 日 is no date
            year = int(g["zy"]) if g["zy"] else None
            month = int(g["zm"]) if g["zm"] else None
            day = int(g["zd"]) if g["zd"] else None
            if day is not None and g["zd2"]:
                days = set(range(day, int(g["zd2"]) + 1))
        else:
            if re.match(r"^\s*(?:年|st|nd|rd|th)", text[match.end() :]) is None and re.search(
                r"[\d,]\s*$", text[: match.start()]
            ):
                continue  # part of a larger number
            year, month, day = int(g["year"]), None, None
        if month is not None and not 1 <= month <= 12:
            continue
        days = days or ({day} if day else set())
        found.append(
            Fact(
                "date",
                match.group(),
                match.start(),
                match.end(),
                (year, month, day),
                frozenset(str(d) for d in days),
            )
        )
    return found


def dates_agree(claim: Fact, evidence: Fact) -> bool | None:
    """True if every part both state is the same, False if one differs, None if they share
    no part (a year against a day)."""
    shared = False
    for a, b in zip(claim.value[:2], evidence.value[:2], strict=True):
        if a is not None and b is not None:
            shared = True
            if a != b:
                return False
    if claim.unit and evidence.unit:
        shared = True
        if not claim.unit <= evidence.unit and not evidence.unit <= claim.unit:
            return False
    return True if shared else None


# ----------------------------------------------------------------------------- ordinals

_EN_ORDINALS = {
    "first": 1, "inaugural": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
    "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
    "thirteenth": 13, "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17,
    "eighteenth": 18, "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_ORDINAL = re.compile(
    r"(?P<arabic>(?<![A-Za-z0-9.])\d{1,3})(?:st|nd|rd|th)\b"
    rf"|\b(?P<word>{'|'.join(_EN_ORDINALS)})\b"
    r"|第(?P<zh>[零〇一二两兩三四五六七八九十百\d]+)"
    r"|(?P<first>首)(?=[次届屆个個任位批轮輪期场場])",
    re.I,
)


def ordinals(text: str) -> list[Fact]:
    """Every rank of ``text`` ("the 9th", "ninth", 第九, 首届), its value in ``value``."""
    found = []
    for match in _ORDINAL.finditer(text):
        if match.group("arabic"):
            value = float(match.group("arabic"))
        elif match.group("word"):
            value = float(_EN_ORDINALS[match.group("word").lower()])
        elif match.group("zh"):
            raw = match.group("zh")
            zh_value = float(raw) if raw.isdigit() else _zh_value(raw)
            if zh_value is None:
                continue
            value = zh_value
        else:
            value = 1.0
        found.append(Fact("ordinal", match.group(), match.start(), match.end(), (value,)))
    return found
