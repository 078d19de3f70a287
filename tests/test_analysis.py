"""Question analysis: answer types, focus nouns, counts, names, numbers and predicates,
on hand-written questions in English, Chinese (both scripts), Japanese and
Korean (none taken from the evaluation sets)."""

from __future__ import annotations

import pytest

from service.answer.analysis import (
    Analysis,
    analyse_question,
    chinese_kind,
    english_kind,
    numbers_in,
)
from service.encode.query import analyse


def analysed(text: str) -> Analysis:
    return analyse_question(analyse(text))


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Which city hosted the regional water forum last spring?", "place"),
        ("Who leads it?", "person"),
        ("Whom did the council appoint as treasurer?", "person"),
        ("When will the tenth summit be held?", "date"),
        ("In what year did the observatory open?", "date"),
        ("Where did the delegates sign the accord?", "place"),
        ("Why did the ministry delay the harbour project?", "reason"),
        ("How did the committee choose its chair?", "manner"),
        ("How often does the panel meet?", "frequency"),
        ("How long did the drought last?", "duration"),
        ("What is the theme of the autumn poetry festival?", "title"),
        ("What was the keynote lecture called?", "title"),
        ("What is UNESCO?", "definition"),
        ("Which agency regulates coastal fisheries?", "organisation"),
        ("At which university does the chemist teach?", "organisation"),
        ("Which professor chaired the jury?", "person"),
        ("What does the treaty require of the signatories?", "other"),
        ("List the rivers the expedition crossed.", "list"),
        ("In which sectors will the two firms cooperate?", "list"),
    ],
    ids=lambda value: value if len(value) < 30 else value[:30],
)
def test_english_questions_get_the_type_their_interrogative_and_focus_ask_for(
    question: str, kind: str
) -> None:
    assert analysed(question).answer_type == kind


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("哪个机构负责这项调查？", "organisation"),
        ("哪個機構負責這項調查？", "organisation"),
        ("大会在哪个城市举行？", "place"),
        ("峰会在哪里举行？", "place"),
        ("谁主持了开幕式？", "person"),
        ("開幕式由誰主持？", "person"),
        ("博物馆于何时开放？", "date"),
        ("博物館在哪一年開放？", "date"),
        ("工程为什么推迟？", "reason"),
        ("會議以什麼方式舉行？", "manner"),
        ("会议多久举行一次？", "frequency"),
        ("会议每隔多久举行一次？", "frequency"),
        ("工程持续了多长时间？", "duration"),
        ("论坛的主题是什么？", "title"),
        ("什么是碳中和？", "definition"),
        ("三国在哪些领域开展合作？", "list"),
        ("该项目由哪位教授负责？", "person"),
    ],
)
def test_chinese_questions_in_either_script_get_their_type(question: str, kind: str) -> None:
    assert analysed(question).answer_type == kind


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("なぜ会議は延期されたのですか？", "reason"),
        ("式典を主催したのは誰ですか？", "person"),
        ("博物館はいつ開館しましたか？", "date"),
        ("会議はどこで開かれましたか？", "place"),
        ("彼はどの大学の教授ですか？", "organisation"),
        ("フォーラムのテーマは何でしたか？", "title"),
        ("委員会はどのように委員を選びましたか？", "manner"),
        ("会議は何回開かれましたか？", "number"),
    ],
)
def test_japanese_questions_get_their_type(question: str, kind: str) -> None:
    assert analysed(question).answer_type == kind


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("몇 개국이 회의에 참가했습니까?", "number"),
        ("회의는 언제 열렸습니까?", "date"),
        ("누가 개막 연설을 했습니까?", "person"),
        ("회의는 어디에서 열렸습니까?", "place"),
        ("그는 어느 단체의 회장입니까?", "organisation"),
        ("발표의 제목은 무엇입니까?", "title"),
        ("왜 회의가 연기되었습니까?", "reason"),
        ("위원회는 어떻게 위원을 뽑았습니까?", "manner"),
    ],
)
def test_korean_questions_get_their_type(question: str, kind: str) -> None:
    assert analysed(question).answer_type == kind


def test_a_number_question_says_what_it_counts() -> None:
    english = analysed("How many members joined the alliance in its first year?")
    assert (english.answer_type, english.counted) == ("number", "members")
    assert analysed("大会已举行幾次？").counted == "次"
    assert analysed("中日韓拉美政策磋商目前已舉行幾次？").counted == "次"
    assert analysed("有多少国参加？").counted == "国"
    assert analysed("몇 개국이 참가했습니까?").counted == "개국"


def test_a_hyphenated_count_is_kept_whole() -> None:
    assert analysed("How many person-trips did the leaders set as a target?").counted == (
        "person-trips"
    )


def test_the_focus_noun_is_the_head_of_the_phrase_after_which() -> None:
    assert analysed("Which China News Agency column ran the interview?").focus == "column"
    assert analysed("Which deputy secretary-general spoke first?").focus == "secretary-general"
    assert analysed("Which deputy secretary-general spoke first?").answer_type == "person"
    assert analysed("第六届会议将由哪个机构召开？").focus == "机构"
    assert analysed("秘书处将应对哪两大社会治理挑战？").focus == "挑战"
    # a word the tagger split (组织 tagged a verb) is joined where CC-CEDICT lists it whole
    ngo = analysed("哪个非政府组织负责救援？")
    assert (ngo.focus, ngo.answer_type) == ("非政府组织", "organisation")
    assert analysed("哪个研究机构发布了报告？").focus == "研究机构"
    assert analysed("彼はどの大学の教授ですか？").focus == "大学"


def test_plural_questions_want_several_things() -> None:
    assert analysed("Which agencies oversee the port?").plural
    agencies = analysed("Which agencies oversee the port?")
    assert agencies.answer_type == "organisation"
    assert analysed("会议由哪些机构举行？").plural
    assert not analysed("Which agency oversees the port?").plural
    assert analysed("Who were the founding members?").plural


def test_the_tenth_summit_question_keeps_its_ordinal() -> None:
    analysis = analysed("When will the tenth summit be held?")
    assert (analysis.answer_type, analysis.numbers) == ("date", ("tenth",))


def test_numbers_ordinals_and_dates_are_found_as_written() -> None:
    assert numbers_in("The 8th meeting on May 27, 2024 drew forty-one delegates") == (
        "8th",
        "May 27, 2024",
        "forty-one",
    )
    assert numbers_in("第十届会议于2011年10月举行，首次磋商举行了三次") == (
        "第十届",
        "2011年",
        "10月",
        "首次",
        "三次",
    )
    assert numbers_in("제4차 회의") == ("제4차",)
    assert numbers_in("a one-sided view") == ()


def test_english_names_are_capitalised_runs_acronyms_and_quoted_titles() -> None:
    analysis = analysed(
        'Who edited "A Sea of Change" for the Ministry of Foreign Affairs and the WHO in '
        "Gyeongsangbuk-do?"
    )
    assert analysis.entities == (
        "A Sea of Change",
        "Ministry of Foreign Affairs",
        "WHO",
        "Gyeongsangbuk-do",
    )
    # a question word that starts a second sentence is not a name
    assert "What" not in analysed("She spoke in Seoul. What was her talk called?").entities


def test_chinese_names_come_from_jieba_tags_and_latin_runs_with_exact_spelling() -> None:
    analysis = analysed("研究员Ni Yueju在北京來自哪個機構？")
    assert "Ni Yueju" in analysis.entities
    assert "北京" in analysis.entities
    traditional = analysed("第四次會議在東京舉行了嗎？")
    assert "東京" in traditional.entities  # as written, not folded to Simplified


def test_the_predicate_leaves_out_names_numbers_and_the_focus() -> None:
    english = analysed("Which city hosted the 8th China-Japan-ROK Leaders' Meeting in 2019?")
    assert english.predicate == frozenset({"host"})
    chinese = analysed("第六届中日韩地震减灾会议将由哪个机构召开？")
    assert "召开" in chinese.predicate
    assert "机构" not in chinese.predicate
    assert not any("中日" in term for term in chinese.predicate)


def test_focus_nouns_are_typed_through_the_dictionary_in_every_language() -> None:
    assert chinese_kind("机构") == "organisation"
    assert chinese_kind("研究员") == "person"  # by its head character 员
    assert chinese_kind("领域") is None  # a field of activity is no kind of answer
    assert english_kind("secretary-general") == "person"
    assert english_kind("academy") == "organisation"
