"""A document's citable metadata, stated beside it: the sidecar ``NAME.meta.json``.

A corpus file ``NAME.txt`` (or ``.md``) may have ``NAME.meta.json`` beside it, a JSON
object with any of these fields, each a string (or null: not stated)::

    title      the headline
    publisher  who published it ("China News Network")
    author     who wrote it
    published  when: an ISO date (2024-05-25) or date and time (2024-05-25T15:23)
    url        the original article, http or https
    language   its language tag (en, zh-Hans, zh-Hant, ko, ja)

What the sidecar states wins over what ingestion reads from the text; a field neither
states stays unknown. ``check_metadata`` is the one set of rules, for the files and for
``POST /admin/documents`` alike: an unknown key, a wrong type, a bad date or URL is an error
naming the field, never a field quietly dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from service.errors import CorpusError

__all__ = [
    "FIELDS",
    "SIDECAR_SUFFIX",
    "Metadata",
    "MetadataError",
    "check_field",
    "check_metadata",
    "read_sidecar",
    "sidecar_bytes",
    "sidecar_of",
]

SIDECAR_SUFFIX = ".meta.json"
# Each field and the most characters it may hold.
FIELDS: dict[str, int] = {
    "title": 500,
    "publisher": 200,
    "author": 200,
    "published": 40,
    "url": 2000,
    "language": 35,
}
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}")
_DATE_START = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Metadata:
    """What a sidecar states; None where it states nothing."""

    title: str | None = None
    publisher: str | None = None
    author: str | None = None
    published: str | None = None  # ISO date or datetime, as ``check_field`` normalises it
    url: str | None = None
    language: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The fields stated, for writing a sidecar."""
        return {name: value for name, value in asdict(self).items() if value is not None}


class MetadataError(ValueError):
    """A metadata field is invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _published(value: str) -> str:
    """An ISO date, or an ISO date and time; returned in ISO form."""
    example = "write it as YYYY-MM-DD or YYYY-MM-DDTHH:MM, for example 2024-05-25T15:23"
    if not _DATE_START.match(value):
        raise ValueError(f"{value!r} is not a date; {example}")
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value).isoformat()
        return dt.datetime.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a real date and time; {example}") from None


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError(
            f"{value!r} is not a web address; give the original article's full http(s) URL, "
            "for example https://www.example.com/news/2024/05/25/article.html"
        )
    return value


def _language(value: str) -> str:
    if not _LANGUAGE.fullmatch(value):
        raise ValueError(f"{value!r} is not a language tag; use one such as en, zh-Hans, zh-Hant")
    return value


_CHECKS = {"published": _published, "url": _url, "language": _language}


def check_field(name: str, value: object) -> str | None:
    """One field's value, checked and normalised (white space runs become one space).

    Raises:
        ValueError: the value is not a string, is too long, or is not a date, URL or
            language tag where one is asked for; the message says what to write.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a string or null, not {type(value).__name__} {value!r}")
    text = " ".join(value.split())
    if not text:
        return None
    if len(text) > FIELDS[name]:
        raise ValueError(f"is {len(text)} characters long; at most {FIELDS[name]} are allowed")
    check = _CHECKS.get(name)
    return check(text) if check else text


def check_metadata(data: object) -> Metadata:
    """A sidecar's JSON value as ``Metadata``.

    Raises:
        MetadataError: ``data`` is not an object, holds a key that is no field, or a field
            ``check_field`` refuses; ``field`` names it.
    """
    if not isinstance(data, dict):
        raise MetadataError("", f"must be a JSON object with any of {', '.join(FIELDS)}")
    unknown = sorted(str(key) for key in data if key not in FIELDS)
    if unknown:
        raise MetadataError(
            unknown[0],
            f"{unknown[0]!r} is not a metadata field; the fields are {', '.join(FIELDS)}",
        )
    values = {}
    for name, value in data.items():
        try:
            values[name] = check_field(name, value)
        except ValueError as error:
            raise MetadataError(name, f"{name} {error}") from None
    return Metadata(**values)


def sidecar_of(path: Path) -> Path:
    """Where the sidecar of corpus file ``path`` lies: ``NAME.meta.json`` beside ``NAME.txt``."""
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def read_sidecar(path: Path) -> Metadata | None:
    """The metadata beside corpus file ``path``, or None if it has no sidecar.

    Raises:
        CorpusError: the sidecar is not UTF-8 JSON or ``check_metadata`` refuses it; the
            message names the file and the field.
    """
    sidecar = sidecar_of(path)
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorpusError(
            f"{sidecar} is not UTF-8 JSON ({error}); write it as a JSON object such as "
            '{"title": "...", "publisher": "...", "published": "2024-05-25"}.'
        ) from error
    try:
        return check_metadata(data)
    except MetadataError as error:
        where = f"field {error.field!r}" if error.field else "the file"
        raise CorpusError(f"{sidecar}: {where}: {error.message}. Fix it, then rebuild.") from None


def sidecar_bytes(metadata: Metadata) -> bytes:
    """The sidecar file of ``metadata``: pretty JSON, UTF-8, the fields stated only."""
    return (json.dumps(metadata.as_dict(), ensure_ascii=False, indent=2) + "\n").encode("utf-8")
