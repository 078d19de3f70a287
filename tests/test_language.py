import pytest

from service.text.language import detect_language, fold


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
