"""Load and soak with locust against the real server (the soak is marked slow)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from service.config import Settings
from service.index import CorpusIndex
from service.lab.load import LoadResult, RssSample, load_suite, render, rss_growth

QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"
CLAIMS = QUESTIONS.with_name("claims.jsonl")


def test_rss_growth_is_the_peak_after_warmup_over_its_start() -> None:
    samples = [RssSample(0, 500, 0), RssSample(10, 1000, 0), RssSample(20, 1030, 0)]
    samples += [RssSample(30, 1010, 0)]
    assert rss_growth(samples, warmup_seconds=10) == pytest.approx(0.03)
    assert rss_growth(samples, warmup_seconds=0) == pytest.approx(1.06)  # warm-up counts
    with pytest.raises(ValueError, match="too few memory samples"):
        rss_growth(samples[:2], warmup_seconds=10)


def _rows(out: Path, clients: int) -> dict[str, dict[str, str]]:
    with (out / f"locust-{clients}c_stats.csv").open(newline="") as handle:
        return {row["Name"]: row for row in csv.DictReader(handle)}


def test_mixed_valid_and_hostile_load_has_no_errors(
    corpus_index: CorpusIndex, settings: Settings, tmp_path: Path
) -> None:
    """Half the requests malformed or hostile, each must get its own status; every
    checked citation slices out of its document; memory is sampled."""
    results, growth = load_suite(
        settings,
        clients=[4],
        seconds=8,
        questions=QUESTIONS,
        claims=CLAIMS,
        out_dir=tmp_path,
        workers=1,
        invalid_share=0.5,
        check_share=0.3,
        sample_every=2,
    )
    (result,) = results
    assert growth is None
    assert result.requests > 50
    assert result.failures == 0, result.failure_examples
    rows = _rows(tmp_path, 4)
    kinds = [name for name in rows if name.startswith(("bad:", "hostile:"))]
    assert len(kinds) >= 6, kinds
    assert int(rows["POST /ask"]["Request Count"]) > 0
    assert int(rows["GET /documents/{id}?start&end"]["Request Count"]) > 0
    assert len(result.rss) >= 3 and all(s.rss_bytes > 50 * 2**20 for s in result.rss)
    assert (tmp_path / "load.json").is_file() and "requests/s" in (tmp_path / "load.md").read_text()
    # the saved JSON holds every figure: read back, it is the same result and markdown
    saved = json.loads((tmp_path / "load.json").read_text())
    assert LoadResult.from_json(saved["results"][0]) == result
    markdown = (tmp_path / "load.md").read_text()
    (tmp_path / "load.md").unlink()
    assert render(tmp_path / "load.json").read_text() == markdown


@pytest.mark.slow
def test_soak_has_no_errors_and_flat_memory(
    corpus_index: CorpusIndex, settings: Settings, tmp_path: Path, soak_seconds: float
) -> None:
    """8 clients for --soak-seconds (30 minutes by default), 30% malformed or hostile
    input, RSS every 10 s: zero errors and under 5% RSS growth after warm-up."""
    results, growth = load_suite(
        settings,
        clients=[8],
        seconds=soak_seconds,
        questions=QUESTIONS,
        claims=CLAIMS,
        out_dir=tmp_path,
        workers=settings.workers,
        invalid_share=0.3,
        check_share=0.05,
        sample_every=10,
        warmup_seconds=min(120.0, soak_seconds / 5),
    )
    print((tmp_path / "load.md").read_text())
    assert results[0].failures == 0, results[0].failure_examples
    assert growth is not None and growth < 0.05
