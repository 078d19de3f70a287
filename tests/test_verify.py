"""Claim checks: the facts compared, and verdicts on claims in both languages."""

from __future__ import annotations

import pytest

from service.config import Settings
from service.engine import Engine
from service.errors import InputError
from service.index import CorpusIndex
from service.verify.facts import dates, dates_agree, mentions, names, numbers, same_number
from service.verify.verifier import Verifier


@pytest.mark.parametrize(
    ("text", "value", "unit", "qualifier"),
    [
        ("more than 200 delegates", 200, {"delegate"}, "more"),
        ("from five countries including", 5, {"country"}, ""),
        ("1.5 billion people", 1.5e9, {"person"}, ""),
        ("15億人", 1.5e9, {"person"}, ""),
        ("达3000万人次的目标", 3e7, {"trip"}, ""),
        ("18個國家和地區", 18, {"country", "region"}, ""),
        ("目前已舉行五次", 5, {"time"}, ""),
        ("100多位專家學者", 100, {"expert"}, "more"),
        ("the thirty-one specific goals", 31, {"goal"}, ""),
    ],
)
def test_numbers_carry_value_unit_and_qualifier(
    text: str, value: float, unit: set[str], qualifier: str
) -> None:
    (fact,) = numbers(text)
    assert fact.value == (value,) and fact.unit == unit and fact.qualifier == qualifier


def test_numbers_across_languages_and_scripts() -> None:
    (english,) = numbers("1.5 billion people")
    (chinese,) = numbers("15億人")
    assert same_number(english, chinese)
    (more,) = numbers("more than 200 delegates")
    (exact,) = numbers("200 delegates")
    (other,) = numbers("more than 300 delegates")
    assert same_number(more, numbers("200多名代表")[0])  # "more than" both ways
    assert same_number(exact, more)  # an unqualified figure does not deny "more than"
    assert not same_number(other, more)
    assert numbers("三国合作二十多年")[0].value == (20,)  # 三国: "the three countries"
    assert numbers("In 2011 the forum met") == []  # a year is a date


@pytest.mark.parametrize(
    ("text", "value", "days"),
    [
        ("In September 2011, it opened", (2011, 9, None), set()),
        ("between December 6 and 8.", (None, 12, 6), {"6", "7", "8"}),
        ("2011年10月在北京", (2011, 10, None), set()),
        ("於5月31日在上海", (None, 5, 31), {"31"}),
        ("Source: X | 2024-06-12 10:17", (2024, 6, 12), {"12"}),
        ("signed in 2012.", (2012, None, None), set()),
    ],
)
def test_dates(text: str, value: tuple[int | None, ...], days: set[str]) -> None:
    (fact,) = dates(text)
    assert fact.value == value and fact.unit == days


def test_dates_agree_on_the_parts_both_state() -> None:
    (claim,) = dates("in September 2010")
    (evidence,) = dates("In September 2011,")
    (year,) = dates("in 2011.")
    (day,) = dates("on May 31")
    assert dates_agree(claim, evidence) is False
    assert dates_agree(year, evidence) is True
    assert dates_agree(day, year) is None  # nothing in common to compare


def test_names_and_places_across_scripts() -> None:
    found = {(f.kind, f.text) for f in names("The forum took place in Gyeongju-si, said NEAR.")}
    assert ("place", "Gyeongju-si") in found and ("organization", "NEAR") in found
    assert ("place", "上海") in {(f.kind, f.text) for f in names("論壇於5月31日在上海舉行。")}
    assert mentions("中日韓首次反恐磋商在韓國濟州島舉行", "Jeju Island")
    assert mentions("held in Tokyo", "東京") and not mentions("held in Tokyo", "北京")


@pytest.fixture(scope="module")
def verifier(corpus_index: CorpusIndex, settings: Settings) -> Verifier:
    return Verifier(Engine.from_settings(settings, index=corpus_index))


def test_the_issues_example_is_contradicted_with_the_number(verifier: Verifier) -> None:
    check = verifier.verify("The NEAR forum in Gyeongju drew delegates from seven countries.")
    assert check.verdict == "contradicted"
    mismatches = [
        (m.kind, m.claim_text, m.evidence_text) for e in check.evidence for m in e.mismatches
    ]
    assert ("number", "seven", "five") in mismatches
    assert check.evidence[0].stance == "contradicts"


OPENED = "The China-Japan-Korea Cooperation Secretariat opened in Seoul in September {}."


@pytest.mark.parametrize(
    ("claim", "verdict"),
    [
        (OPENED.format(2011), "supported"),
        (OPENED.format(2013), "contradicted"),
        ("中日韓核安全監管高官會目前已舉行四次。", "supported"),
        ("中日韓核安全監管高官會目前已舉行六次。", "contradicted"),
        ("The Great Barrier Reef lies off the coast of Queensland.", "not_found"),
    ],
)
def test_verdicts(verifier: Verifier, claim: str, verdict: str) -> None:
    check = verifier.verify(claim)
    assert check.verdict == verdict, [(e.stance, e.quote[:60]) for e in check.evidence]
    assert 0.0 <= check.confidence <= 1.0


def test_evidence_quotes_slice_their_documents(verifier: Verifier) -> None:
    check = verifier.verify("中日韓核安全監管高官會目前已舉行六次。", top_k=3)
    assert 1 <= len(check.evidence) <= 3
    for evidence in check.evidence:
        c = evidence.citation
        text = verifier.engine.document(c.doc_id).text
        assert text[c.char_start : c.char_end] == evidence.quote == c.quote
        for m in evidence.mismatches:
            assert m.evidence_text in evidence.quote


@pytest.mark.parametrize(("claim", "top_k"), [("   ", 5), ("x" * 2001, 5), ("ok claim", 0)])
def test_bad_input_names_the_field(verifier: Verifier, claim: str, top_k: int) -> None:
    with pytest.raises(InputError) as raised:
        verifier.verify(claim, top_k=top_k)
    assert raised.value.field in ("claim", "top_k")
