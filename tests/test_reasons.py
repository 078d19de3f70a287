"""The reader's "not found" reasons, in each language a reader asks in."""

from __future__ import annotations

import pytest

from service.answer import reasons


@pytest.mark.parametrize(
    ("language", "start"),
    [("en", "The sources do not mention «tenth»"), ("zh-Hans", "资料中"), ("zh-Hant", "資料中"),
     ("ja", "資料の中で"), ("ko", "자료에서"), ("fr", "The sources")],
)  # fmt: skip
def test_a_missing_name_is_named_in_the_readers_language(language: str, start: str) -> None:
    assert reasons.missing_names(["tenth"], language).startswith(start)


def test_the_kind_asked_for_is_said_in_words_not_codes() -> None:
    assert reasons.no_type("date", "en").endswith("give no date or time.")
    assert "日期或時間" in reasons.no_type("date", "zh-Hant")
    assert "«會議»、«東京»" in reasons.unstated(["會議", "東京"], "zh-Hant")
