"""The tuned constants file: read once, checked, refused with a message saying what to fix."""

import json
from pathlib import Path

import pytest

from service.errors import ConfigError
from service.tuned import FORMAT, PACKAGED, load_tuned


def test_the_packaged_file_loads_with_its_provenance() -> None:
    tuned = load_tuned()
    assert tuned.path == PACKAGED
    reader = tuned.reader
    for model in (reader.sentence, reader.span, reader.abstain, reader.confidence):
        assert model.features and len(model.weights) == len(model.features)
    assert 0 < reader.abstain_threshold < 1 and reader.confidence.features
    assert tuned.claims.sentences_read >= tuned.claims.passages_read > 0
    assert tuned.provenance["how"] and tuned.provenance["data"]


def _write(tmp_path: Path, raw: object) -> Path:
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_a_missing_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.json"):
        load_tuned(tmp_path / "nowhere.json")


def test_a_file_of_another_format_is_refused(tmp_path: Path) -> None:
    raw = json.loads(PACKAGED.read_text(encoding="utf-8")) | {"format": "citeqa-tuned/0"}
    with pytest.raises(ConfigError, match=f"reads '{FORMAT}'"):
        load_tuned(_write(tmp_path, raw))


def test_a_missing_value_is_named(tmp_path: Path) -> None:
    raw = json.loads(PACKAGED.read_text(encoding="utf-8"))
    del raw["claims"]["min_event_support"]
    with pytest.raises(ConfigError, match="min_event_support"):
        load_tuned(_write(tmp_path, raw))


def test_a_changed_value_is_what_the_stage_reads(tmp_path: Path) -> None:
    raw = json.loads(PACKAGED.read_text(encoding="utf-8"))
    raw["reader"]["abstain_threshold"] = 0.123
    raw["reader"]["sentence"]["weights"][0] = 7.5
    reader = load_tuned(_write(tmp_path, raw)).reader
    assert reader.abstain_threshold == 0.123 and reader.sentence.weights[0] == 7.5


def test_a_model_with_mismatched_lengths_is_refused(tmp_path: Path) -> None:
    raw = json.loads(PACKAGED.read_text(encoding="utf-8"))
    raw["reader"]["abstain"]["weights"].pop()
    with pytest.raises(ConfigError, match="one mean, scale and weight per feature"):
        load_tuned(_write(tmp_path, raw))


def test_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tuned.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_tuned(path)
