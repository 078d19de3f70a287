"""Retrievers by name: each registers a factory in its own module; settings choose which run.

Adding a retriever touches its own file (a factory decorated with ``@register("name")``),
the import list of ``service/retrieve/__init__.py`` and the ``retrievers`` setting; the
hybrid, the index and the server iterate over what is configured.
"""

from __future__ import annotations

from collections.abc import Callable

from service.config import Settings
from service.index import CorpusIndex
from service.retrieve.base import Retriever

__all__ = ["Factory", "build_retrievers", "register", "registered"]

Factory = Callable[[CorpusIndex, Settings], Retriever]
_FACTORIES: dict[str, Factory] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    """Make ``factory`` the maker of retriever ``name``."""

    def decorate(factory: Factory) -> Factory:
        if name in _FACTORIES:
            raise ValueError(f"a retriever named {name!r} is already registered")
        _FACTORIES[name] = factory
        return factory

    return decorate


def registered() -> tuple[str, ...]:
    """Every retriever name a setting may use."""
    return tuple(_FACTORIES)


def build_retrievers(index: CorpusIndex, settings: Settings) -> dict[str, Retriever]:
    """The configured retrievers (``settings.retrievers``), in order, over ``index``."""
    unknown = [name for name in settings.retrievers if name not in _FACTORIES]
    if unknown:
        raise ValueError(
            f"unknown retriever {unknown[0]!r} in CITEQA_RETRIEVERS; "
            f"use some of {', '.join(registered())}"
        )
    return {name: _FACTORIES[name](index, settings) for name in settings.retrievers}
