"""Named steps of a build or a load, for whoever measures them.

``build_index`` and ``load_index`` run each step inside ``steps.step(name)``. The default
observer does nothing; ``service.lab.scale`` passes one that times each step and samples
the process's memory while it runs. A step may run more than once (once an encoder), and
no step runs inside another.

Build steps: "corpus hash", "read documents", "chunk", "sentence spans", "previous
generation's vectors", "encode <encoder> chunks", "encode <encoder> sentences", "previous
generation's spans", "annotate sentences" (the English model's load included), "bm25
build", "write jsonl", "dense index build", "checksums", "fsync and publish".
Load steps: "checksums", "read documents", "read chunks", "dense load", "bm25 load",
"query encoders".
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

__all__ = ["NO_STEPS", "StepObserver"]


class StepObserver(Protocol):
    """Told when each named step of a build or a load starts and ends."""

    def step(self, name: str) -> AbstractContextManager[None]:
        """A context the step ``name`` runs in."""
        ...


class _NoSteps:
    def step(self, name: str) -> AbstractContextManager[None]:
        return nullcontext()


NO_STEPS: StepObserver = _NoSteps()
