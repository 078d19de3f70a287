"""The processes a measurement runs and watches, shared by the bench, the load suite and the
scale study.

- ``serve``: ``citeqa serve`` in a child process on a free localhost port, until ``/readyz``
  answers; stopped on exit. ``running_server`` is the same, yielding only its URL.
- ``server_processes`` and ``tree_rss``: a server and its uvicorn workers, and their summed
  resident memory (RSS, and PSS with shared pages split);
- ``cpu_seconds``: the CPU time of some processes; ``load_average``: the machine's;
- ``status_bytes``, ``meminfo`` and ``rollup``: this process's memory and the machine's
  available memory, from /proc;
- ``in_fresh_process``: a function in a new interpreter, so its memory and threads are its own.

Everything reads Linux's /proc; where it is missing the figures are zeros or None.
"""

from __future__ import annotations

import http.client
import math
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from service.config import Settings, child_environment

__all__ = [
    "Server",
    "cpu_seconds",
    "free_port",
    "in_fresh_process",
    "load_average",
    "meminfo",
    "rollup",
    "running_server",
    "serve",
    "server_processes",
    "status_bytes",
    "tree_rss",
]

T = TypeVar("T")

# ------------------------------------------------------------------------------ a server


@dataclass(frozen=True)
class Server:
    """A running ``citeqa serve``."""

    url: str  # http://127.0.0.1:PORT
    port: int
    process: subprocess.Popen[bytes]
    ready_seconds: float  # from starting the process to the first 200 from /readyz

    def pids(self) -> list[int]:
        """The server process and its workers (the process alone where /proc cannot tell)."""
        return server_processes(self.process.pid) or [self.process.pid]


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(port: int, timeout: float) -> bool:
    """Whether ``GET /readyz`` answers 200 now."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/readyz")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _wait_ready(process: subprocess.Popen[bytes], port: int, ready_timeout: float) -> None:
    """Poll ``/readyz`` until it answers 200; raise if the server exits or takes too long."""
    deadline = time.monotonic() + ready_timeout
    while True:
        if process.poll() is not None:
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"the server exited before it was ready:\n{error[-2000:]}")
        # A request can wait in the listen queue while the workers load: bound each one.
        if _ready(port, timeout=min(10.0, ready_timeout)):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server was not ready within {ready_timeout:.0f} s")
        time.sleep(0.2)


@contextmanager
def serve(
    settings: Settings,
    workers: int = 1,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 120.0,
) -> Iterator[Server]:
    """``citeqa serve`` over ``settings``' corpus and index in a child process.

    Args:
        settings: whose ``index_dir`` and ``corpus_dir`` the server serves.
        workers: uvicorn worker processes.
        port: where to listen (a free port when None).
        env: more environment variables for the server. The rate limit is off
            (``CITEQA_RATE_LIMIT_PER_MINUTE=0``) unless ``env`` sets it: the bench and the
            load test drive the server from one loopback address, faster than any one
            client may go.
        ready_timeout: seconds to wait for ``/readyz``.

    Yields the ``Server`` once ready; terminates it (and kills it if it lingers) on exit.
    """
    port = port or free_port()
    variables = {
        "CITEQA_INDEX_DIR": str(settings.index_dir.resolve()),
        "CITEQA_CORPUS_DIR": str(settings.corpus_dir.resolve()),
        "CITEQA_RATE_LIMIT_PER_MINUTE": "0",
        **(env or {}),
    }
    command = [sys.executable, "-m", "service", "serve", "--port", str(port)]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=child_environment(variables),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(process, port, ready_timeout)
        ready = time.perf_counter() - started
        yield Server(f"http://127.0.0.1:{port}", port, process, ready)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_server(settings: Settings, workers: int = 1, port: int | None = None) -> Iterator[str]:
    """``serve``, yielding only the base URL."""
    with serve(settings, workers, port=port) as server:
        yield server.url


# ------------------------------------------------------------------------------ process trees


def _children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += _children(current)
    return found


def server_processes(parent: int | None = None) -> list[int]:
    """The ``citeqa serve`` process at or below ``parent`` (this process by default) and
    all its descendants (the uvicorn workers); empty when there is none."""
    for pid in _descendants(parent or os.getpid()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\x00")
        except OSError:
            continue
        if b"serve" in command and b"service" in command:
            return _descendants(pid)
    return []


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in bytes; zeros if it is gone."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0, 0
    values = {}
    for line in lines[1:]:
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            values[name] = int(rest.split()[0]) * 1024
    return values.get("Rss", 0), values.get("Pss", 0)


def tree_rss(pids: Sequence[int]) -> tuple[int, int]:
    """Summed (RSS, PSS) of ``pids``, in bytes."""
    pairs = [_memory(pid) for pid in pids]
    return sum(r for r, _ in pairs), sum(p for _, p in pairs)


def cpu_seconds(pids: Sequence[int]) -> float | None:
    """User + system CPU seconds of ``pids`` (Linux /proc); None where unavailable."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rpartition(")")[2].split()  # the name may hold spaces
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def load_average() -> tuple[float, float, float]:
    """The machine's load average over 1, 5 and 15 minutes (NaN where unknown)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return (math.nan, math.nan, math.nan)
    return (round(one, 2), round(five, 2), round(fifteen, 2))


# ------------------------------------------------------------------------------ this process


def _field(path: str, name: str) -> int:
    """The ``name: N kB`` line of a /proc file, in bytes (0 where missing)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def status_bytes(name: str) -> int:
    """A memory figure of this process (``VmRSS``, ``VmHWM``, ``RssAnon``) in bytes."""
    return _field("/proc/self/status", name)


def meminfo(name: str) -> int:
    """A memory figure of the machine (``MemAvailable``) in bytes."""
    return _field("/proc/meminfo", name)


def rollup() -> dict[str, int]:
    """This process's memory from /proc/self/smaps_rollup in bytes, keyed by lower-cased
    name: rss, pss, shared_clean, shared_dirty, private_clean, private_dirty, anonymous."""
    wanted = {
        "Rss",
        "Pss",
        "Shared_Clean",
        "Shared_Dirty",
        "Private_Clean",
        "Private_Dirty",
        "Anonymous",
    }
    values = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        if name in wanted:
            values[name.lower()] = int(rest.split()[0]) * 1024
    return values


def in_fresh_process(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a new interpreter (spawned), so its memory and threads are its
    own; its result comes back pickled."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()
