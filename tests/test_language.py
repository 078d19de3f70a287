import pytest

from service.text.language import (
    detect_language,
    fold,
    is_han,
    languages_in,
    scripts_of,
    shares_script,
)


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [("韓", "韩"), ("裡", "里"), ("中國地震局", "中国地震局"), ("氣象廳", "气象厅")],
    ids=["han-korea", "li-inside", "agency", "weather-bureau"],
)
def test_fold_maps_traditional_to_simplified(traditional: str, simplified: str) -> None:
    assert fold(traditional) == fold(simplified) == simplified


def test_fold_folds_case_and_width() -> None:
    assert fold("ＮＥＡＲ Forum") == "near forum"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The forum took place in Gyeongju-si between December 6 and 8.", "en"),
        ("在丰硕的合作成果之外,中日韩三国也面临一系列共同挑战。", "zh-Hans"),
        ("中國地震局、日本氣象廳和韓國氣象廳于2004年至2006年舉行了三次地震減災三邊會議", "zh-Hant"),
        ("核安全", "zh"),
        ("본문 바로가기", "ko"),
        ("日本の首都は東京です", "ja"),
    ],
    ids=["english", "simplified", "traditional", "script-neutral", "korean", "japanese"],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("language", "other", "shared"),
    [
        ("en", "en", True),
        ("zh-Hans", "zh-Hant", True),  # one script, folded for matching
        ("zh", "ja", True),  # Japanese writes Han characters too
        ("en", "zh-Hans", False),
        ("ko", "ko", True),
        ("ko", "zh-Hant", False),
        ("ko", "en", False),
    ],
    ids=["en-en", "hans-hant", "zh-ja", "en-zh", "ko-ko", "ko-zh", "ko-en"],
)
def test_shares_script_is_the_one_script_rule(language: str, other: str, shared: bool) -> None:
    assert shares_script(language, other) is shared
    assert shares_script(other, language) is shared


def test_han_languages_are_chinese_and_japanese() -> None:
    assert [is_han(x) for x in ("zh-Hans", "zh-Hant", "zh", "ja", "ko", "en")] == [
        True, True, True, True, False, False,
    ]  # fmt: skip
    assert scripts_of("ja") == {"han", "kana"} and scripts_of("ko") == {"hangul"}


@pytest.mark.parametrize(
    ("text", "languages"),
    [
        ("Who organized the NEAR forum?", {"en"}),
        ("中日韩三国", {"zh-Hans", "zh"}),
        ("NEAR论坛在哪里举行？", {"zh-Hans", "en", "zh"}),
    ],
    ids=["english", "chinese", "mixed"],
)
def test_languages_in_reads_both_sides_of_a_mixed_question(text: str, languages: set[str]) -> None:
    assert languages_in(text) == languages
