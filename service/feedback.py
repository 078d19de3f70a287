"""The feedback log: readers' reports of a wrong answer or a wrong claim check.

A folder (``CITEQA_FEEDBACK_DIR``) of JSON lines files, one per UTC day
(``feedback-YYYY-MM-DD.jsonl``), one ``FeedbackRecord`` a line. ``POST /feedback`` appends
to it and ``citeqa feedback`` reads it back, newest first.

Each record is written with one ``write`` on a file opened for appending, under a thread
lock and an exclusive ``flock`` (the server's workers are separate processes), so
concurrent reports never interleave their lines. A day's file stops growing at
``max_day_bytes``: a flood of reports fills at most that much disk a day.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from service.errors import CiteqaError

__all__ = [
    "FeedbackCitation",
    "FeedbackEntry",
    "FeedbackKind",
    "FeedbackLog",
    "FeedbackLogFullError",
    "FeedbackRecord",
]

FeedbackKind = Literal["answer", "claim"]  # a wrong answer to /ask, a wrong /verify verdict
_DAY_FILE = re.compile(r"feedback-(\d{4}-\d{2}-\d{2})\.jsonl")


class FeedbackLogFullError(CiteqaError):
    """Today's feedback file has reached its size limit."""

    def __init__(self, day: dt.date, limit: int, retry_after: int) -> None:
        super().__init__(
            f"the feedback log for {day.isoformat()} (UTC) is full ({limit} bytes, "
            "CITEQA_FEEDBACK_MAX_DAY_BYTES); send the report again tomorrow (UTC)."
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class FeedbackCitation:
    """The cited span the reader says is wrong."""

    doc_id: str
    char_start: int
    char_end: int


@dataclass(frozen=True)
class FeedbackEntry:
    """What a reader reports: the question (or the claim, for ``kind="claim"``), the answer
    shown, its citation, what is wrong (``note``) and the question's language."""

    kind: FeedbackKind
    question: str
    answer: str | None
    citation: FeedbackCitation | None
    note: str
    language: str | None


@dataclass(frozen=True)
class FeedbackRecord:
    """One line of the log: an entry with its id and when it was received (UTC, ISO 8601)."""

    id: str
    received: str
    entry: FeedbackEntry

    def to_json(self) -> dict[str, Any]:
        """The line's object: ``id``, ``received``, then the entry's fields."""
        return {"id": self.id, "received": self.received, **asdict(self.entry)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeedbackRecord:
        """The record a line holds (``KeyError`` or ``TypeError`` if it is not one)."""
        citation = data.get("citation")
        entry = FeedbackEntry(
            kind=data["kind"],
            question=data["question"],
            answer=data.get("answer"),
            citation=FeedbackCitation(**citation) if citation else None,
            note=data["note"],
            language=data.get("language"),
        )
        return cls(id=data["id"], received=data["received"], entry=entry)

    @property
    def received_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.received)


class FeedbackLog:
    """The log in ``folder``; nothing touches the disk until a record is added."""

    def __init__(self, folder: Path, max_day_bytes: int) -> None:
        self.folder = folder
        self.max_day_bytes = max_day_bytes
        self._lock = threading.Lock()

    def day_file(self, day: dt.date) -> Path:
        """The file of one UTC day."""
        return self.folder / f"feedback-{day.isoformat()}.jsonl"

    def add(self, entry: FeedbackEntry, now: dt.datetime | None = None) -> FeedbackRecord:
        """Append ``entry`` with a new id and the time received (``now``, default the
        clock) to its day's file, creating the folder if need be.

        Raises:
            FeedbackLogFullError: the day's file would grow past ``max_day_bytes``.
        """
        received = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        record = FeedbackRecord(
            id=str(uuid.uuid4()), received=received.isoformat(timespec="milliseconds"), entry=entry
        )
        line = (json.dumps(record.to_json(), ensure_ascii=False) + "\n").encode("utf-8")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.day_file(received.date())
        with self._lock:
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                if os.fstat(descriptor).st_size + len(line) > self.max_day_bytes:
                    raise FeedbackLogFullError(
                        received.date(), self.max_day_bytes, _seconds_to_midnight(received)
                    )
                os.write(descriptor, line)
            finally:
                os.close(descriptor)  # closing releases the flock
        return record

    def days(self) -> list[dt.date]:
        """The days that have a file, newest first (none if the folder does not exist)."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.iterdir():
            match = _DAY_FILE.fullmatch(path.name)
            if match and path.is_file():
                try:
                    found.append(dt.date.fromisoformat(match[1]))
                except ValueError:
                    continue  # a name that looks like a day but is not one
        return sorted(found, reverse=True)

    def records(self, since: dt.date | None = None) -> Iterator[FeedbackRecord]:
        """Every record received on ``since`` or later (UTC), newest first. A line that is
        not a record (a torn write after a crash, a hand edit) is skipped."""
        for day in self.days():
            if since is not None and day < since:
                return
            lines = self.day_file(day).read_text(encoding="utf-8", errors="replace")
            day_records = []
            for line in lines.splitlines():
                try:
                    day_records.append(FeedbackRecord.from_json(json.loads(line)))
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
            yield from sorted(day_records, key=lambda r: r.received_at, reverse=True)


def _seconds_to_midnight(moment: dt.datetime) -> int:
    """Seconds from ``moment`` to the next UTC midnight, at least 1."""
    tomorrow = dt.datetime.combine(moment.date() + dt.timedelta(days=1), dt.time(), dt.UTC)
    return max(1, int((tomorrow - moment).total_seconds()))
