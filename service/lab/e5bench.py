"""e5's speed: a question on one thread, passages on two, and a build from scratch.

    python -m service.lab.e5bench                 # int8 and float, questions and passages
    python -m service.lab.e5bench --build         # and `python -m service build` from scratch

Questions are the train split of ``eval/questions.jsonl`` (each encoded alone, as a
question is served, every text new to the encoder: it keeps no cache); passages are the
chunk texts of the current index generation (title + chunk, as the build encodes them),
encoded ``--batch`` at a time. The build runs in a fresh index folder with no ONNX export
cached, model loading and the exports included. Reported, never asserted: the machine is
shared and the figures move with whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.config import Settings, child_environment, get_settings
from service.encode.e5 import E5Encoder, e5_model_file
from service.encode.e5.encoder import BATCH_SIZE
from service.encode.encoders import set_threads
from service.index import current_generation, read_texts

__all__ = ["main"]

QUESTIONS = Path("eval/questions.jsonl")
TARGETS = {"question_p50_ms": 8.0, "passages_per_second": 60.0, "build_seconds": 60.0}


def _train_questions(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [row["question"] for row in rows if row.get("split") == "train"]


def question_times(encoder: E5Encoder, questions: Sequence[str], rounds: int) -> dict[str, float]:
    """p50 and p99 milliseconds of one question's encode, wall and CPU (the encoder runs on
    the calling thread: its CPU time says what an idle core would take), after a warm-up,
    ``rounds`` passes over ``questions``."""
    encoder.encode(list(questions[:5]))
    wall, cpu = [], []
    for round_ in range(rounds):
        for question in questions:
            text = f"{question} ({round_})" if round_ else question  # new to the encoder
            started, started_cpu = time.perf_counter(), time.thread_time()
            encoder.encode([text])
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - started_cpu) * 1000)
    return {
        "question_p50_ms": round(statistics.median(wall), 2),
        "question_p99_ms": round(_p99(wall), 2),
        "question_cpu_p50_ms": round(statistics.median(cpu), 2),
    }


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def passage_rate(encoder: E5Encoder, passages: Sequence[str], seconds: float) -> dict[str, float]:
    """Passages a second over repeated encodes of ``passages`` (at least ``seconds``), and
    passages a CPU second (every thread's CPU: times the threads, what idle cores give)."""
    encoder.encode(list(passages[:8]))
    done, started, started_cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - started) < seconds or not done:
        encoder.encode(list(passages))
        done += len(passages)
    cpu = time.process_time() - started_cpu
    return {
        "passages_per_second": round(done / elapsed, 1),
        "passages_per_cpu_second": round(done / cpu, 1),
    }


def build_seconds(settings: Settings) -> float:
    """Wall seconds of ``python -m service build`` into an empty index folder."""
    with tempfile.TemporaryDirectory(prefix="citeqa-e5bench-") as scratch:
        environment = child_environment(
            {"CITEQA_INDEX_DIR": scratch, "CITEQA_CORPUS_DIR": str(settings.corpus_dir)}
        )
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "service", "build", "--quiet"],
            env=environment,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return round(time.perf_counter() - started, 1)


def measure(settings: Settings, *, rounds: int, seconds: float, batch: int) -> dict[str, Any]:
    """Each precision's question and passage figures."""
    generation = current_generation(settings.index_dir)
    if generation is None:
        raise SystemExit(f"no index in {settings.index_dir}: run `python -m service build`")
    passages = read_texts(generation).chunks
    questions = _train_questions(QUESTIONS)
    model_file = e5_model_file(settings.e5_model)
    if model_file is None:
        raise SystemExit(f"CITEQA_E5_MODEL={settings.e5_model!r} is not an e5 model")
    cache = settings.index_dir / "onnx"
    figures: dict[str, Any] = {}
    for int8 in (True, False):
        precision = "int8" if int8 else "float"
        set_threads(1)
        asking = E5Encoder(
            settings.e5_model, model_file, query=True, cache_dir=cache, threads=1, int8=int8
        )
        row = question_times(asking, questions, rounds)
        set_threads(2)
        reading = E5Encoder(
            settings.e5_model,
            model_file,
            query=False,
            cache_dir=cache,
            threads=2,
            int8=int8,
            batch_size=batch,
        )
        row |= passage_rate(reading, passages, seconds)
        figures[precision] = row
    return {"questions": len(questions), "passages": len(passages), **figures}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the questions")
    parser.add_argument("--seconds", type=float, default=10.0, help="passage encoding time")
    parser.add_argument("--batch", type=int, default=BATCH_SIZE, help="passages a pass")
    parser.add_argument("--build", action="store_true", help="also time a build from scratch")
    args = parser.parse_args(argv)
    settings = get_settings()
    report = measure(settings, rounds=args.rounds, seconds=args.seconds, batch=args.batch)
    if args.build:
        report["build_seconds"] = build_seconds(settings)
    report["targets"] = TARGETS
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
